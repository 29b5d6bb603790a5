"""Every writer of a run directory holds its lock (issue 21): `kemo predict` and
`kemo report` too, when they write inside the run; the lock nests within a process.

Another process holds the tiny run's lock here (a child that takes `RunLock` and
waits): `predict --split dev` into the run is refused in one line naming the holder,
writes nothing, and the same prediction into a folder outside the run goes ahead.
"""

import subprocess
import sys

import pytest

from conftest import ROOT, assert_refused, snapshot


def test_the_lock_nests_within_a_process_and_is_released_once(tmp_path):
    from kemo.run.lock import RunLock, check_unlocked

    run = tmp_path / "run"
    run.mkdir()
    with RunLock(run):
        with RunLock(run):  # kemo report saving report.json inside its own lock
            assert (run / ".lock").exists()
        assert (run / ".lock").exists()  # the inner exit leaves it held
    assert not (run / ".lock").exists()
    check_unlocked(run)


def test_writing_into_locks_only_outputs_inside_the_run(tmp_path):
    from kemo.run.lock import writing_into

    run = tmp_path / "run"
    run.mkdir()
    with writing_into(run, run / "predictions" / "dev"):
        assert (run / ".lock").exists()
    with writing_into(run, tmp_path / "elsewhere"):
        assert not (run / ".lock").exists()
    with writing_into(tmp_path / "missing", tmp_path / "missing" / "report"):
        assert not (tmp_path / "missing").exists()  # the command names it, not the lock


@pytest.fixture
def held(tiny_run, tmp_path):
    """A copy of the tiny run whose lock another process holds until the test ends."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("checkpoints"))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from kemo.run.lock import RunLock; "
         f"RunLock({str(run)!r}).acquire(); print('held', flush=True); time.sleep(300)"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    yield run, holder.pid
    holder.kill()
    holder.wait()


def test_predict_into_a_run_another_process_writes_is_refused(held, data_dir, tmp_path, capsys):
    from kemo.cli import main

    run, pid = held
    before = sorted(p.relative_to(run).as_posix() for p in run.rglob("*"))
    code = main(["predict", str(run), "--split", "dev", "--overwrite", "--data-dir", str(data_dir)])
    assert_refused(code, "", capsys.readouterr().err, [f"run directory {run}", f"pid {pid}"])
    assert sorted(p.relative_to(run).as_posix() for p in run.rglob("*")) == before
    out = tmp_path / "elsewhere"
    assert main(["predict", str(run), "--split", "dev", "--out", str(out),
                 "--data-dir", str(data_dir)]) == 0
    assert (out / "pred_eng.csv").is_file()


def test_report_into_a_run_another_process_writes_is_refused(held, data_dir, capsys):
    from kemo.cli import main

    run, pid = held
    before = snapshot(run)  # the session's run may hold a report/ from an earlier test
    code = main(["report", str(run), "--data-dir", str(data_dir)])
    assert_refused(code, "", capsys.readouterr().err, [f"run directory {run}", f"pid {pid}"],
                   before, snapshot(run))
