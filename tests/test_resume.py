"""Reliability: a run killed mid-training resumes to the same result; runs repeat exactly."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT, stop_after_first_checkpoint

SETS = ["train.epochs=4", "data.max_train_examples=400", "model.sequence_length=48",
        "data.length_buckets=[24]", "train.early_stopping_patience=3"]


def _train_cmd(run_dir, *extra):
    sets = [a for o in SETS for a in ("--set", o)]
    return [sys.executable, "scripts/train.py", "--backend", "jax", "--config",
            "configs/tiny.toml", "--run-dir", str(run_dir), "--quiet", *sets, *extra]


def _history(run_dir):
    return json.loads((run_dir / "history.json").read_text())


@pytest.fixture(scope="module")
def full_run(data_dir, tmp_path_factory):
    """The uninterrupted reference run."""
    full = tmp_path_factory.mktemp("resume") / "full"
    env = {**os.environ, "KEMO_DATA_DIR": str(data_dir)}
    subprocess.run(_train_cmd(full), cwd=ROOT, env=env, check=True, capture_output=True)
    return full


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "Ctrl-C"])
def test_killed_run_resumes_to_same_metrics(sig, full_run, data_dir, tmp_path):
    # The data root on the command line, not in the environment: --resume reads the data
    # the run read (run.json) without being told again.
    env = {k: v for k, v in os.environ.items() if k != "KEMO_DATA_DIR"}
    full, killed = full_run, tmp_path / "killed"

    code, done_before = stop_after_first_checkpoint(
        _train_cmd(killed, "--data-dir", str(data_dir)), killed, sig, env)
    assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 130)
    assert not (killed / "report.json").exists()
    assert done_before < 4
    # A kill during a checkpoint write leaves debris like this; it must not matter.
    (killed / "checkpoints" / ".partial-0009-1").mkdir()
    (killed / "checkpoints" / "LATEST.tmp-1").write_text("epoch-0009")

    resumed = subprocess.run([sys.executable, "scripts/train.py", "--resume", str(killed),
                              "--quiet"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming {killed} after epoch {done_before}" in resumed.stdout

    a, b = _history(full), _history(killed)
    assert [e["epoch"] for e in a] == [e["epoch"] for e in b] == [1, 2, 3, 4]
    for ea, eb in zip(a, b):
        for key in ea:
            assert abs(ea[key] - eb[key]) <= 1e-6, (ea["epoch"], key, ea[key], eb[key])
    ra = json.loads((full / "report.json").read_text())
    rb = json.loads((killed / "report.json").read_text())
    ta = json.loads((full / "thresholds.json").read_text())["thresholds"]
    tb = json.loads((killed / "thresholds.json").read_text())["thresholds"]
    np.testing.assert_allclose(ta, tb, atol=1e-6)
    fa = ra["dev"]["tuned_thresholds"]["overall"]["macro"]["f1"]
    fb = rb["dev"]["tuned_thresholds"]["overall"]["macro"]["f1"]
    assert abs(fa - fb) <= 1e-6


def _stop_at_checkpoint(cmd, run_dir, prefix: str, env, timeout: float = 300) -> str:
    """Start `cmd`, SIGKILL it once LATEST names a checkpoint starting with `prefix` (it
    is stopped first, so the checkpoint read is the one it leaves); that name."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    latest, deadline = run_dir / "checkpoints" / "LATEST", time.time() + timeout
    try:
        while time.time() < deadline and proc.poll() is None:
            name = latest.read_text() if latest.exists() else ""
            if name.startswith(prefix):
                proc.send_signal(signal.SIGSTOP)
                name = latest.read_text()
                if name.startswith(prefix):
                    return name
                proc.send_signal(signal.SIGCONT)  # moved on meanwhile: wait for the next
            time.sleep(0.02)
        pytest.fail(f"no checkpoint {prefix}* in {run_dir}")
    finally:
        proc.kill()
        proc.wait(timeout=60)


@pytest.mark.parametrize("inside", [
    pytest.param("epoch-0000-step-000003", marks=pytest.mark.slow),  # 70 s on 2 cores
    "epoch-0002-step-000006"])
def test_run_killed_inside_an_epoch_resumes_at_the_step(inside, full_run, data_dir, tmp_path):
    """`train.checkpoint_every_steps=3`, SIGKILL 3 steps into epoch 1 (no early-stopping
    state yet) or 6 into epoch 3: the resumed run's history and thresholds are the
    uninterrupted run's (which saved no step checkpoints)."""
    env = {**os.environ, "KEMO_DATA_DIR": str(data_dir)}
    killed = tmp_path / "killed"
    cmd = _train_cmd(killed, "--set", "train.checkpoint_every_steps=3")
    assert _stop_at_checkpoint(cmd, killed, inside, env) == inside
    saved = killed / "checkpoints" / inside
    assert (saved / "metrics.npz").is_file()
    assert ("early_stopping" in json.loads((saved / "state.json").read_text())) == (
        inside != "epoch-0000-step-000003")

    resumed = subprocess.run([sys.executable, "scripts/train.py", "--resume", str(killed),
                              "--quiet"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    epoch, step = int(inside[6:10]), int(inside[-6:])
    assert (f"resuming {killed} after epoch {epoch}, at step {step} of 10 in epoch "
            f"{epoch + 1}") in resumed.stdout
    a, b = _history(full_run), _history(killed)
    assert [e["epoch"] for e in a] == [e["epoch"] for e in b] == [1, 2, 3, 4]
    for ea, eb in zip(a, b):
        for key in ea:
            assert abs(ea[key] - eb[key]) <= 1e-6, (ea["epoch"], key, ea[key], eb[key])
    ta = json.loads((full_run / "thresholds.json").read_text())["thresholds"]
    tb = json.loads((killed / "thresholds.json").read_text())["thresholds"]
    np.testing.assert_allclose(ta, tb, atol=1e-6)


def test_same_seed_same_metrics_twice(data_dir, tmp_path):
    from kemo.config import load_config
    from kemo.training import train

    results = []
    for name in ("one", "two"):
        cfg = load_config(ROOT / "configs" / "tiny.toml", SETS + ["train.epochs=2"])
        results.append(train(cfg, data_dir=data_dir, run_dir=tmp_path / name, verbose=0))
    assert results[0]["history"] == [
        {**e, "epoch": e["epoch"]} for e in results[1]["history"]]
    assert (results[0]["report"]["dev"] == results[1]["report"]["dev"])


def test_resume_refuses_finished_or_foreign_dirs(tiny_run, tmp_path):
    for target, needle in ((tiny_run, "already finished"), (tmp_path, "not a kemo run")):
        proc = subprocess.run([sys.executable, "scripts/train.py", "--resume", str(target)],
                              cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 2
        assert proc.stderr.strip().startswith("error:") and needle in proc.stderr
        assert "Traceback" not in proc.stderr
