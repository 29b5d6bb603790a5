"""`scripts/train.py` on bad input: exit 2, one `error:` line, no traceback, no run dir.

Every case runs in-process through `kemo.cli.main` (cheap); three of them also run as
real subprocesses (each ~10 s of imports), concurrently from one module fixture.
"""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.toml"
BAD_ROW, BAD_COL = 7, "joy"


def _corrupt_data_dir(data_dir: Path, dest: Path) -> Path:
    """A Track A root with eng train/dev copied, train row BAD_ROW column BAD_COL = '2'."""
    for split in ("train", "dev"):
        (dest / split).mkdir(parents=True)
        (dest / split / "eng.csv").write_bytes((data_dir / split / "eng.csv").read_bytes())
    path = dest / "train" / "eng.csv"
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[BAD_ROW - 1, BAD_COL] = "2"
    df.to_csv(path, index=False)
    return path


SUBPROCESS_CASES = ("unknown_key", "bad_label", "missing_data_dir")
ALL_CASES = ("unknown_key", "bad_value", "unknown_language", "bad_label", "missing_data_dir")


def _cases(data_dir, tmp):
    bad_csv = _corrupt_data_dir(data_dir, tmp / "corrupt")
    bad_id = pd.read_csv(bad_csv, dtype=str, keep_default_na=False)["id"].iat[BAD_ROW - 1]
    cases = {
        "unknown_key": (["--set", "train.epoch=3"], str(data_dir), ["'train.epoch'"]),
        "bad_value": (["--set", "model.pooling=max"], str(data_dir), ["'model.pooling'", "max"]),
        "unknown_language": (["--set", 'data.languages=["xxx"]'], str(data_dir),
                             ["data.languages", "'xxx'"]),
        "bad_label": ([], str(tmp / "corrupt"),
                      [str(bad_csv), f"row {BAD_ROW} ", f"id {bad_id!r}", f"column '{BAD_COL}'",
                       "'2'"]),
        "missing_data_dir": ([], str(tmp / "no_such_dir"), [str(tmp / "no_such_dir"), "not found"]),
    }
    return cases


def _argv(extra, ddir, run_dir):
    return ["--backend", "jax", "--config", str(TINY), "--data-dir", ddir,
            "--run-dir", str(run_dir), "--quiet", *extra]


@pytest.fixture(scope="module")
def runs(data_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    cases = _cases(data_dir, tmp)
    env = {k: v for k, v in os.environ.items() if k != "KEMO_DATA_DIR"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    procs = {}
    for name in SUBPROCESS_CASES:
        extra, ddir, _ = cases[name]
        run_dir = tmp / f"run_{name}"
        cmd = [sys.executable, "scripts/train.py", *_argv(extra, ddir, run_dir)]
        procs[name] = (subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True), run_dir)
    results = {}
    for name, (proc, run_dir) in procs.items():
        try:
            out, err = proc.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        results[name] = (proc.returncode, out, err, run_dir, cases[name][2])
    return results


def _check(rc, out, err, run_dir, needles):
    assert rc == 2, f"rc={rc}\nstdout:\n{out}\nstderr:\n{err}"
    assert "Traceback" not in err and "Traceback" not in out
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    assert not run_dir.exists()


@pytest.mark.parametrize("case", SUBPROCESS_CASES)
def test_subprocess_bad_input_exits_2_with_one_error_line(runs, case):
    _check(*runs[case])


@pytest.mark.parametrize("case", ALL_CASES)
def test_in_process_bad_input_returns_2_with_one_error_line(case, data_dir, tmp_path, capsys,
                                                            monkeypatch):
    from kemo.cli import main

    monkeypatch.delenv("KEMO_DATA_DIR", raising=False)
    monkeypatch.setenv("KERAS_BACKEND", os.environ.get("KERAS_BACKEND", "jax"))
    extra, ddir, needles = _cases(data_dir, tmp_path)[case]
    run_dir = tmp_path / "run"
    rc = main(["train", *_argv(extra, ddir, run_dir)])
    captured = capsys.readouterr()
    _check(rc, captured.out, captured.err, run_dir, needles)
