"""Config values and CLI numbers that must be refused before anything is written.

Every case runs the real command line as a subprocess (`scripts/<command>.py`, from a
scratch working directory): exit 2, exactly one `error:` line naming the key or the
argument, no traceback, and the directory tree unchanged (no run directory). Config
and argument errors come before the heavy imports, so most cases take well under a
second; the few that need the data and the backbone run concurrently from one fixture.
"""

import dataclasses
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import ROOT, TINY_OVERRIDES, assert_refused

TINY = ROOT / "configs" / "tiny.toml"
INT_MAX = 2**31 - 1

# key -> values outside its range (non-finite floats included); each is one case.
BAD_VALUES = {
    "data.max_intensity": ["0", "101", "2.5"],
    "data.val_fraction": ["-0.1", "1.0", "nan", "inf"],
    "data.max_train_examples": ["-1", str(INT_MAX + 1)],
    "data.max_train_examples_per_language": ["-1", str(INT_MAX + 1)],
    "data.sampling_strength": ["-0.5", "11", "nan", "inf"],
    "data.language_temperature": ["0", "-1", "1001", "nan", "inf"],
    "data.dataset_temperature": ["0", "-1", "1001", "nan", "inf"],
    "data.length_buckets": ["[0]", "[32, -1]"],
    "model.num_layers": ["0", str(INT_MAX + 1)],
    "model.num_heads": ["0", "-2"],
    "model.hidden_dim": ["0"],
    "model.intermediate_dim": ["0"],
    "model.vocabulary_size": ["0", "-5"],
    "model.sequence_length": ["0", "2", str(INT_MAX + 1)],
    "model.dropout": ["-0.1", "1.0", "nan", "inf"],
    "model.freeze_layers": ["-1", "1001", "2.5"],
    "loss.gamma": ["-1", "nan", "inf", "-inf"],
    "loss.alpha": ["[1.0, nan, 1, 1, 1]", "[1, 1, inf, 1, 1]", "[-1, 1, 1, 1, 1]", "[]",
                   "[true, 1, 1, 1, 1]", '"uniform"'],
    "train.epochs": ["0", "-3", str(INT_MAX + 1)],
    "train.batch_size": ["0", str(INT_MAX + 1)],
    "train.learning_rate": ["0", "-1e-3", "inf", "nan"],
    "train.weight_decay": ["-0.01", "inf", "nan"],
    "train.warmup_fraction": ["-0.1", "1.5", "nan", "inf"],
    "train.early_stopping_patience": ["-1", str(INT_MAX + 1)],
    "train.checkpoint_every_steps": ["-1", str(INT_MAX + 1)],
    "train.seed": ["-1", str(2**32), str(2**64)],
    "data.split_seed": ["-2", str(2**32), "1.5"],
    "data.languages": ["[]", '["eng", "eng"]'],
    "name": ['"a/b"'],
}
CONFIG_CASES = {f"{k}={v}": (["--set", f"{k}={v}"], [f"'{k}'"])
                for k, values in BAD_VALUES.items() for v in values}

# Cases that load the data and build the backbone first (a few seconds each).
BACKBONE_CASES = {
    "sequence_length_above_preset": (
        ["--set", 'model.preset="minilm-l6-en"', "--set", "model.sequence_length=1024"],
        ["'model.sequence_length'", "1024", "512"]),
    "vocabulary_below_special_tokens": (["--set", "model.vocabulary_size=5"],
                                        ["'model.vocabulary_size'", "special tokens"]),
    "more_heads_than_width": (["--set", "model.num_heads=8", "--set", "model.hidden_dim=4"],
                              ["'model.num_heads'", "model.hidden_dim"]),
    # each number within its own bound (kemo.config), the whole too big
    "inline_backbone_too_big": (["--set", "model.hidden_dim=16384", "--set",
                                 "model.num_layers=64"],
                                ["'model.hidden_dim'", "parameters"]),
}

# command -> (argv, the argument the error names); every numeric CLI argument.
ARG_CASES = {
    "predict_batch_0": (["predict", "RUN", "--text", "x", "--batch-size", "0"], "--batch-size"),
    "predict_batch_huge": (["predict", "RUN", "--text", "x", "--batch-size", "99999999"],
                           "--batch-size"),
    "predict_batch_word": (["predict", "RUN", "--text", "x", "--batch-size", "ten"],
                           "--batch-size"),
    "explain_batch_0": (["explain", "RUN", "--text", "x", "--batch-size", "0"], "--batch-size"),
    "explain_features_0": (["explain", "RUN", "--text", "x", "--num-features", "0"],
                           "--num-features"),
    "explain_samples_5": (["explain", "RUN", "--text", "x", "--num-samples", "5"],
                          "--num-samples"),
    "explain_samples_huge": (["explain", "RUN", "--text", "x", "--num-samples", "10000000"],
                             "--num-samples"),
    "explain_seed_negative": (["explain", "RUN", "--text", "x", "--seed", "-1"], "--seed"),
    "explain_seed_2_32": (["explain", "RUN", "--text", "x", "--seed", str(2**32)], "--seed"),
    "explain_seed_float": (["explain", "RUN", "--text", "x", "--seed", "1.5"], "--seed"),
    "export_batch_0": (["export", "RUN", "--batch-size", "0"], "--batch-size"),
    "export_repeats_0": (["export", "RUN", "--repeats", "0"], "--repeats"),
    "export_both_0": (["export", "RUN", "--batch-size", "0", "--repeats", "0"], "--batch-size"),
    "train_backend_unknown": (["train", "--config", str(TINY), "--backend", "mxnet"],
                              "--backend"),
    "ensemble_weight_negative": (["ensemble", "RUN", "RUN", "--run-dir", "E", "--weights",
                                  "-1", "1"], "--weights"),
    "ensemble_weight_nan": (["ensemble", "RUN", "RUN", "--run-dir", "E", "--weights", "nan",
                             "1"], "--weights"),
    "ensemble_weight_inf": (["ensemble", "RUN", "RUN", "--run-dir", "E", "--weights", "inf",
                             "1"], "--weights"),
    "ensemble_batch_0": (["ensemble", "RUN", "RUN", "--run-dir", "E", "--batch-size", "0"],
                         "--batch-size"),
}


def _env(data_dir):
    env = {k: v for k, v in os.environ.items() if k != "KEMO_DATA_DIR"}
    env.update(KEMO_DATA_DIR=str(data_dir), TF_CPP_MIN_LOG_LEVEL="2")
    return env


def _tree(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


def _run_cli(argv, cwd: Path, env, timeout=300):
    command, rest = argv[0], argv[1:]
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / f"{command}.py"), *rest],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def _train_argv(extra, run_dir):
    sets = [a for o in TINY_OVERRIDES for a in ("--set", o)]
    return ["train", "--backend", "jax", "--config", str(TINY), "--run-dir", str(run_dir),
            "--quiet", *sets, *extra]


def _check_train_case(extra, needles, work: Path, env):
    run_dir = work / "run"
    before = _tree(work)
    rc, out, err = _run_cli(_train_argv(extra, run_dir), work, env)
    assert_refused(rc, out, err, needles)
    assert not run_dir.exists(), "a run directory was written"
    assert _tree(work) == before


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_bad_config_value(case, data_dir, tmp_path):
    extra, needles = CONFIG_CASES[case]
    _check_train_case(extra, needles, tmp_path, _env(data_dir))


@pytest.fixture(scope="module")
def backbone_results(data_dir, tmp_path_factory):
    """The backbone cases, two at a time (each reads the data, some load a preset)."""
    env = _env(data_dir)

    def run(name):
        work = tmp_path_factory.mktemp(name)
        before = _tree(work)
        rc, out, err = _run_cli(_train_argv(BACKBONE_CASES[name][0], work / "run"), work, env)
        return rc, out, err, work, before

    with ThreadPoolExecutor(2) as pool:
        return dict(zip(BACKBONE_CASES, pool.map(run, BACKBONE_CASES)))


@pytest.mark.parametrize("case", sorted(BACKBONE_CASES))
def test_config_beyond_backbone_limits(case, backbone_results):
    rc, out, err, work, before = backbone_results[case]
    assert_refused(rc, out, err, BACKBONE_CASES[case][1])
    assert not (work / "run").exists(), "a run directory was written"
    assert _tree(work) == before


def test_config_is_a_directory(data_dir, tmp_path):
    (tmp_path / "configs").mkdir()
    before = _tree(tmp_path)
    rc, out, err = _run_cli(["train", "--config", str(tmp_path / "configs"),
                             "--run-dir", str(tmp_path / "run")], tmp_path, _env(data_dir))
    assert_refused(rc, out, err, [str(tmp_path / "configs"), "is a directory"])
    assert _tree(tmp_path) == before


def test_nan_in_config_file(data_dir, tmp_path):
    path = tmp_path / "nan.toml"
    path.write_text(TINY.read_text().replace('alpha = "inverse_frequency"',
                                             "alpha = [1.0, nan, 1.0, 1.0, 1.0]"))
    before = _tree(tmp_path)
    rc, out, err = _run_cli(["train", "--config", str(path), "--run-dir",
                             str(tmp_path / "run")], tmp_path, _env(data_dir))
    assert_refused(rc, out, err, ["'loss.alpha'", "nan"])
    assert _tree(tmp_path) == before


def test_resume_with_run_dir_is_refused(data_dir, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.toml").write_text(TINY.read_text())
    before = _tree(tmp_path)
    rc, out, err = _run_cli(["train", "--resume", str(run), "--run-dir", str(tmp_path / "x")],
                            tmp_path, _env(data_dir))
    assert_refused(rc, out, err, ["--resume", "--run-dir"])
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("case", sorted(ARG_CASES))
def test_bad_cli_number(case, data_dir, tmp_path):
    argv, argument = ARG_CASES[case]
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.toml").write_text("")
    argv = [str(run) if a == "RUN" else a for a in argv]
    before = _tree(tmp_path)
    rc, out, err = _run_cli(argv, tmp_path, _env(data_dir))
    assert_refused(rc, out, err, [f"argument {argument}"])
    assert _tree(tmp_path) == before


# Every number in the config has a range ------------------------------------------

def test_every_numeric_config_key_has_a_range():
    from kemo.config import _RANGES, Config

    numeric = {f"{section.name}.{f.name}" for section in dataclasses.fields(Config)
               if dataclasses.is_dataclass(section.default_factory)
               for f in dataclasses.fields(section.default_factory)
               if str(f.type) in ("int", "float", "list[int]")}
    assert numeric and numeric <= set(_RANGES), numeric - set(_RANGES)
    assert {k.split("=")[0] for k in CONFIG_CASES} >= numeric


def test_corpus_size():
    n = len(CONFIG_CASES) + len(BACKBONE_CASES) + len(ARG_CASES) + 3
    assert n >= 80, n


# Accepted by design --------------------------------------------------------------

def test_config_with_bom_loads_the_same(tmp_path):
    from kemo.config import load_config

    plain, bom = tmp_path / "tiny.toml", tmp_path / "bom" / "tiny.toml"
    bom.parent.mkdir()
    plain.write_text(TINY.read_text(), encoding="utf-8")
    bom.write_bytes(b"\xef\xbb\xbf" + TINY.read_bytes())
    assert load_config(bom) == load_config(plain) == load_config(TINY)
    assert load_config(bom, ["train.epochs=3"]) == load_config(TINY, ["train.epochs=3"])


@pytest.mark.parametrize("override", ["train.warmup_fraction=1.0", "train.seed=4294967295",
                                      "data.sampling_strength=10", "train.seed=0",
                                      "model.dropout=0.0", "data.split_seed=-1",
                                      "data.split_seed=4294967295"])
def test_range_edges_are_accepted(override):
    from kemo.config import load_config

    key, value = override.split("=")
    section, name = key.split(".")
    cfg = load_config(TINY, [override])
    assert getattr(getattr(cfg, section), name) == float(value)
