"""One writer per run directory, with real processes.

A tiny training holds `<run>/.lock`; a second `train --resume` and a second
`train --run-dir` on the same directory are refused (exit 2, one `error:` line naming
the run and the holder's pid), and the first run ends with the same history as a lone
run of the same config. A SIGKILLed holder leaves its lock file behind, but the kernel
released the lock: `--resume` takes it and finishes the run.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from conftest import ROOT, TINY_OVERRIDES, assert_refused

SETS = [*TINY_OVERRIDES, "train.epochs=3"]
EPOCHS = 3


def _env(data_dir):
    return {**os.environ, "KEMO_DATA_DIR": str(data_dir), "TF_CPP_MIN_LOG_LEVEL": "2"}


def _train_cmd(*args):
    return [sys.executable, str(ROOT / "scripts" / "train.py"), "--backend", "jax", "--quiet",
            *args]


def _new_run(run_dir):
    sets = [a for o in SETS for a in ("--set", o)]
    return _train_cmd("--config", str(ROOT / "configs" / "tiny.toml"), "--run-dir",
                      str(run_dir), *sets)


def _start(cmd, cwd, env):
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(proc, timeout=600):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _wait_for_lock(proc, run_dir, timeout=400):
    """Until `proc` holds the lock on `run_dir` and wrote its config.toml."""
    lock = run_dir / ".lock"
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if (run_dir / "config.toml").exists() and lock.exists() \
                and lock.read_text().strip() == str(proc.pid):
            return
        time.sleep(0.05)
    out, err = proc.communicate() if proc.poll() is not None else ("", "")
    pytest.fail(f"process {proc.pid} never held {lock} (rc {proc.poll()})\n{err[-3000:]}")


def _history(run_dir):
    epochs = json.loads((run_dir / "history.json").read_text())
    rows = pd.read_csv(run_dir / "history.csv")
    return epochs, rows


def _assert_same_history(run_dir, lone_dir):
    epochs, rows = _history(run_dir)
    lone_epochs, lone_rows = _history(lone_dir)
    assert [e["epoch"] for e in epochs] == list(range(1, EPOCHS + 1))
    assert rows["epoch"].tolist() == list(range(EPOCHS)), rows  # one row per epoch
    assert list(rows.columns) == list(lone_rows.columns)
    for a, b in zip(epochs, lone_epochs):
        assert a.keys() == b.keys()
        for key in a:
            assert abs(a[key] - b[key]) <= 1e-6, (a["epoch"], key, a[key], b[key])
    diff = (rows.to_numpy(float) - lone_rows.to_numpy(float))
    assert abs(diff).max() <= 1e-6


@pytest.fixture(scope="module")
def lone(data_dir, tmp_path_factory):
    """A lone run of the same config, started at once; `lone()` waits for it."""
    work = tmp_path_factory.mktemp("lone")
    proc = _start(_new_run(work / "run"), work, _env(data_dir))

    def done():
        if proc.returncode is None:
            rc, out, err = _finish(proc)
            assert rc == 0, err[-3000:]
        return work / "run"

    yield done
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_second_writer_is_refused_and_first_run_is_intact(lone, data_dir, tmp_path):
    from kemo.errors import InputError
    from kemo.run.lock import RunLock

    env, run_dir = _env(data_dir), tmp_path / "run"
    first = _start(_new_run(run_dir), tmp_path, env)
    _wait_for_lock(first, run_dir)
    files_before = {p.name for p in tmp_path.iterdir()}

    resume = _start(_train_cmd("--resume", str(run_dir)), tmp_path, env)
    again = _start(_new_run(run_dir), tmp_path, env)
    # The lock itself (not only the command line's early check) refuses a second holder.
    with pytest.raises(InputError, match=f"pid {first.pid}"):
        RunLock(run_dir).acquire()
    for proc in (resume, again):
        assert_refused(*_finish(proc, timeout=300), [str(run_dir), f"pid {first.pid}"])
    assert first.poll() is None, "the first run ended before the second writers were refused"

    rc, out, err = _finish(first)
    assert rc == 0, err[-3000:]
    assert {p.name for p in tmp_path.iterdir()} == files_before  # nothing else written
    assert not (run_dir / ".lock").exists()  # released and removed on a clean exit
    assert (run_dir / "report.json").is_file()
    lone_dir = lone()
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(p.name for p in lone_dir.iterdir())
    _assert_same_history(run_dir, lone_dir)


def test_sigkilled_holder_releases_the_lock(lone, data_dir, tmp_path):
    from kemo.run.lock import check_unlocked

    env, run_dir = _env(data_dir), tmp_path / "run"
    first = _start(_new_run(run_dir), tmp_path, env)
    _wait_for_lock(first, run_dir)
    os.kill(first.pid, signal.SIGKILL)
    assert first.wait(timeout=60) == -signal.SIGKILL
    first.communicate()
    # The lock file stays, naming a dead process; the lock itself died with it.
    assert (run_dir / ".lock").read_text().strip() == str(first.pid)
    check_unlocked(run_dir)

    rc, out, err = _finish(_start(_train_cmd("--resume", str(run_dir)), tmp_path, env))
    assert rc == 0, err[-3000:]
    assert f"resuming {run_dir}" in out
    assert not (run_dir / ".lock").exists()
    _assert_same_history(run_dir, lone())
