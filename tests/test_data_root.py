"""One data-root rule: `--data-dir` > `$KEMO_DATA_DIR` > the config's `data.data_dir` > where
the run's training read it (its run.json).

A run trained with `$KEMO_DATA_DIR=A` keeps its config's own (empty) `data.data_dir`, so
once the run is copied to another folder and the data is reachable only through
`$KEMO_DATA_DIR=B`, every command that reads the run's data reads B: `kemo report`,
`kemo predict --split dev`, `kemo evaluate`, `kemo ensemble` and `train --resume` of an
interrupted copy. The data are a few rows of eng copied into tmp folders.
"""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, run_cli
from kemo.data.brighter import DATA_DIR_ENV, resolve_data_dir
from kemo.errors import InputError

TINY = ROOT / "configs" / "tiny.toml"
SETS = ["train.epochs=2", "model.sequence_length=64", "data.length_buckets=[32]"]
TRAIN_ROWS = 300


def copy_data(src: Path, dst: Path, rows: dict) -> Path:
    """`dst/<split>/eng.csv`: the first rows[split] rows of `src`'s (None: all)."""
    for split, n in rows.items():
        (dst / split).mkdir(parents=True)
        df = pd.read_csv(src / split / "eng.csv", dtype=str, keep_default_na=False)
        (df if n is None else df.head(n)).to_csv(dst / split / "eng.csv", index=False)
    return dst


def interrupt(run: Path) -> Path:
    """The run as if killed after its last checkpoint, before the final writes."""
    for name in ("report.json", "thresholds.json", "model.keras", "predictions_dev.csv"):
        (run / name).unlink()
    shutil.rmtree(run / "preprocessor")
    return run


def dev_probs(path: Path) -> np.ndarray:
    df = pd.read_csv(path)
    return df[[c for c in df.columns if c.startswith("p_")]].to_numpy()


@pytest.fixture(scope="module")
def moved(data_dir, tmp_path_factory):
    """(run, A, B): a tiny run trained with $KEMO_DATA_DIR=A (checkpoints kept), then
    copied to machine_b/run, A renamed away and its files under B."""
    root = tmp_path_factory.mktemp("data_root")
    a = copy_data(data_dir, root / "machine_a" / "data", {"train": TRAIN_ROWS, "dev": None})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(DATA_DIR_ENV, str(a))
        code, out, err = run_cli(["train", "--config", TINY, *(x for s in SETS for x in ("--set", s)),
                                  "--run-dir", root / "machine_a" / "run", "--quiet",
                                  "--keep-checkpoints"])
    assert code == 0, err
    assert f"data: {a} " in out
    b = root / "machine_b" / "data"
    shutil.copytree(a, b)
    shutil.copytree(root / "machine_a" / "run", root / "machine_b" / "run")
    (root / "machine_a").rename(root / "gone")  # A is no longer reachable
    return root / "machine_b" / "run", a, b


def test_run_keeps_the_configs_data_dir(moved):
    run, a, _ = moved
    assert re.search(r'^data_dir = ""$', (run / "config.toml").read_text(), re.M)
    assert json.loads((run / "report.json").read_text())["meta"]["data_dir"] == str(a.resolve())


def test_report_of_a_moved_run_reads_the_new_data_root(moved, tmp_path, monkeypatch):
    run, _, b = moved
    monkeypatch.setenv(DATA_DIR_ENV, str(b))
    code, _, err = run_cli(["report", run, "--out", tmp_path / "report"])
    assert code == 0, err
    html = (tmp_path / "report" / "index.html").read_text()
    assert "validation split (carved from train" in html  # re-created from B ...
    assert "checked: same rows and macro-F1" in html  # ... exactly as training split it


def test_predict_and_evaluate_dev_of_a_moved_run(moved, tmp_path, monkeypatch):
    run, _, b = moved
    monkeypatch.setenv(DATA_DIR_ENV, str(b))
    code, _, err = run_cli(["predict", run, "--split", "dev", "--out", tmp_path / "pred"])
    assert code == 0, err
    np.testing.assert_allclose(dev_probs(tmp_path / "pred" / "probs_eng.csv"),
                               dev_probs(run / "predictions_dev.csv"), atol=2e-6)
    code, out, err = run_cli(["evaluate", tmp_path / "pred", "--split", "dev"])
    assert code == 0, err
    assert f"gold: {b / 'dev'}" in out


def test_resume_of_an_interrupted_copy_reads_the_new_data_root(moved, tmp_path, monkeypatch):
    run, _, b = moved
    copy = interrupt(Path(shutil.copytree(run, tmp_path / "run")))
    monkeypatch.setenv(DATA_DIR_ENV, str(b))
    code, out, err = run_cli(["train", "--resume", copy, "--quiet"])
    assert code == 0, err
    assert f"data: {b} " in out and f"resuming {copy} after epoch 2" in out
    np.testing.assert_allclose(dev_probs(copy / "predictions_dev.csv"),
                               dev_probs(run / "predictions_dev.csv"), atol=2e-6)
    report = json.loads((copy / "report.json").read_text())
    assert report["meta"]["data_dir"] == str(b.resolve())
    assert re.search(r'^data_dir = ""$', (copy / "config.toml").read_text(), re.M)


def test_ensemble_of_moved_runs_reads_the_new_data_root(moved, tmp_path, monkeypatch):
    run, _, b = moved
    members = [shutil.copytree(run, tmp_path / f"m{i}") for i in (1, 2)]
    monkeypatch.setenv(DATA_DIR_ENV, str(b))
    code, _, err = run_cli(["ensemble", *members, "--run-dir", tmp_path / "ens"])
    assert code == 0, err
    assert (tmp_path / "ens" / "report.json").is_file()


def _three_roots(data_dir, tmp_path) -> dict:
    """Data roots named config, env and flag whose dev/eng.csv hold 5, 7 and 9 rows."""
    return {name: copy_data(data_dir, tmp_path / name, {"dev": n})
            for name, n in (("config", 5), ("env", 7), ("flag", 9))}


def test_predict_split_follows_the_rule_over_a_runs_config(moved, data_dir, tmp_path,
                                                            monkeypatch):
    run, _, _ = moved
    roots = _three_roots(data_dir, tmp_path)
    copy = Path(shutil.copytree(run, tmp_path / "run"))
    config = (copy / "config.toml").read_text()
    (copy / "config.toml").write_text(
        config.replace('data_dir = ""', f'data_dir = "{roots["config"]}"'))
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)

    def predicted_rows(*extra) -> int:
        out = tmp_path / f"pred{len(list(tmp_path.glob('pred*')))}"
        code, _, err = run_cli(["predict", copy, "--split", "dev", "--out", out, *extra])
        assert code == 0, err
        return len(pd.read_csv(out / "pred_eng.csv"))

    assert predicted_rows() == 5  # the run's config
    monkeypatch.setenv(DATA_DIR_ENV, str(roots["env"]))
    assert predicted_rows() == 7  # $KEMO_DATA_DIR beats the config
    assert predicted_rows("--data-dir", roots["flag"]) == 9  # the flag beats both


def test_load_data_follows_the_rule_over_data_data_dir(data_dir, tmp_path, monkeypatch):
    """Training's data: a config with data.data_dir set is overridden by the env var,
    and --data-dir beats both (told apart by their train row counts)."""
    from kemo.config import load_config
    from kemo.data.splits import load_data

    roots = {name: copy_data(data_dir, tmp_path / name, {"train": n})
             for name, n in (("config", 100), ("env", 120), ("flag", 140))}
    cfg = load_config(TINY, [f'data.data_dir="{roots["config"]}"'])

    def rows(flag=None) -> int:
        splits = load_data(cfg, flag)
        return len(splits.train) + len(splits.val)

    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    assert rows() == 100
    monkeypatch.setenv(DATA_DIR_ENV, str(roots["env"]))
    assert rows() == 120
    assert rows(roots["flag"]) == 140
    assert cfg.data.data_dir == str(roots["config"])  # untouched


def test_resolve_data_dir_names_where_a_missing_root_came_from(tmp_path, monkeypatch):
    ok = tmp_path / "ok"
    (ok / "dev").mkdir(parents=True)
    missing = tmp_path / "missing"
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    with pytest.raises(InputError, match=r"^no data directory: pass --data-dir or set "
                                         r"\$KEMO_DATA_DIR \(or the config key data.data_dir\)"):
        resolve_data_dir(None, "")
    assert resolve_data_dir(None, ok) == ok
    with pytest.raises(InputError, match=r"missing: not found \(from config key "
                                         r"'data.data_dir'\)"):
        resolve_data_dir(None, missing)
    monkeypatch.setenv(DATA_DIR_ENV, str(missing))
    with pytest.raises(InputError, match=r"missing: not found \(from \$KEMO_DATA_DIR\)"):
        resolve_data_dir(None, ok)  # the env var is used, not the config's good root
    assert resolve_data_dir(ok, missing) == ok
    with pytest.raises(InputError, match=r"missing: not found \(from --data-dir\)"):
        resolve_data_dir(missing, ok)


@pytest.fixture(scope="module")
def flagged(data_dir, tmp_path_factory):
    """(run, A): a tiny run trained with `--data-dir A` and no $KEMO_DATA_DIR."""
    root = tmp_path_factory.mktemp("flagged")
    a = copy_data(data_dir, root / "data", {"train": TRAIN_ROWS, "dev": None})
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(DATA_DIR_ENV, raising=False)
        code, out, err = run_cli(["train", "--config", TINY, *(x for s in SETS for x in ("--set", s)),
                                  "--data-dir", a, "--run-dir", root / "run", "--quiet"])
    assert code == 0, err
    return root / "run", a


def test_commands_given_a_run_read_the_data_root_its_training_read(flagged, tmp_path,
                                                                    monkeypatch):
    """Told nothing (no flag, no $KEMO_DATA_DIR, the config's data_dir empty), predict,
    evaluate --config RUN, report and ensemble read the root the run's run.json records,
    as `train --resume` does; a run without the record says how to give one."""
    run, a = flagged
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    assert json.loads((run / "run.json").read_text())["data_dir"] == str(a.resolve())
    code, _, err = run_cli(["predict", run, "--split", "dev", "--out", tmp_path / "pred"])
    assert code == 0, err
    np.testing.assert_allclose(dev_probs(tmp_path / "pred" / "probs_eng.csv"),
                               dev_probs(run / "predictions_dev.csv"), atol=2e-6)
    code, out, err = run_cli(["evaluate", tmp_path / "pred" / "pred_eng.csv", "--config", run,
                              "--split", "dev"])
    assert code == 0, err
    code, _, err = run_cli(["report", run, "--out", tmp_path / "report"])
    assert code == 0, err
    assert "checked: same rows and macro-F1" in (tmp_path / "report" / "index.html").read_text()
    other = shutil.copytree(run, tmp_path / "other")
    code, _, err = run_cli(["ensemble", run, other, "--run-dir", tmp_path / "ens"])
    assert code == 0, err

    bare = shutil.copytree(run, tmp_path / "bare")
    manifest = json.loads((bare / "run.json").read_text())
    del manifest["data_dir"]
    (bare / "run.json").write_text(json.dumps(manifest))
    code, _, err = run_cli(["predict", bare, "--split", "dev", "--out", tmp_path / "p2"])
    assert code == 2 and err.count("error:") == 1 and "no data directory" in err
