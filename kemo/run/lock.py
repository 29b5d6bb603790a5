"""One writer per run directory: an exclusive OS file lock on `<run_dir>/.lock`.

`train` and `train --resume` hold `RunLock(run_dir)` while they write a run. The lock
is `fcntl.flock` on the file `.lock`, which holds the writer's pid: the kernel
releases it when the process exits, however it exits (SIGKILL included), so a stale
file never blocks a later `--resume`. A second writer gets an `InputError` naming the
run directory and the holder's pid, and writes nothing. On a clean release the file
is removed.

Example:
    with RunLock("runs/tiny"):
        ...  # only this process writes runs/tiny
    check_unlocked("runs/tiny")  # raises InputError while another process holds it
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

from kemo.errors import InputError
from kemo.run import layout as L

LOCK_NAME = L.LOCK


def _holder_pid(path: Path) -> str:
    """The pid written in the lock file (the holder may not have written it yet)."""
    for _ in range(20):
        try:
            text = path.read_text().strip()
        except OSError:
            text = ""
        if text.isdigit():
            return text
        time.sleep(0.05)
    return "unknown"


def _busy(run_dir: Path, path: Path) -> InputError:
    return InputError(f"run directory {run_dir}: in use by another kemo process "
                      f"(pid {_holder_pid(path)}); wait for it to finish or stop it, "
                      f"then --resume {run_dir}")


def _try_lock(fd: int, attempts: int = 10, mode: int = fcntl.LOCK_EX) -> bool:
    # A few tries: `check_unlocked` in another process holds a shared lock for microseconds.
    for i in range(attempts):
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if i + 1 < attempts:
                time.sleep(0.05)
    return False


def check_unlocked(run_dir) -> None:
    """Raise `InputError` naming the holder's pid if a process holds `run_dir`'s lock.

    Creates nothing: a directory without a lock file is free.
    """
    run_dir = Path(run_dir)
    path = run_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        if not _try_lock(fd, attempts=1, mode=fcntl.LOCK_SH):
            raise _busy(run_dir, path)
    finally:
        os.close(fd)  # also releases the probe's lock


_HELD: set[Path] = set()  # run directories this process holds (RunLock nests)


class RunLock:
    """An exclusive lock on `run_dir` (which must exist), released on exit or crash.

    Re-entrant within a process: taking the lock of a run directory this process
    already holds (`kemo report` saving a migrated report.json into the run it is
    writing a page for) does nothing, and leaves it held."""

    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd = None
        self._nested = False

    def acquire(self) -> "RunLock":
        key = self.run_dir.resolve()
        if key in _HELD:
            self._nested = True
            return self
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise InputError(f"run directory {self.run_dir}: not writable "
                                 f"({e.strerror})") from None
            if not _try_lock(fd):
                os.close(fd)
                raise _busy(self.run_dir, self.path)
            try:  # the file we locked may have been removed by a releasing holder
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        _HELD.add(key)
        return self

    def release(self) -> None:
        if self._nested:
            self._nested = False
            return
        if self._fd is None:
            return
        _HELD.discard(self.run_dir.resolve())
        try:
            self.path.unlink()
        except OSError:
            pass
        os.close(self._fd)  # closing the descriptor releases the flock
        self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


@contextlib.contextmanager
def writing_into(run_dir, out):
    """Hold `RunLock(run_dir)` while `out` is written when `out` lies inside the run
    directory (`kemo predict`'s `predictions/`, `kemo report`'s `report/`); an output
    elsewhere, or a run directory that does not exist (the command names it), takes none.

    Example:
        with writing_into(run.path, out):
            predict_files(run, inputs, out)
    """
    run_dir, out = Path(run_dir).resolve(), Path(out).resolve()
    if run_dir.is_dir() and (out == run_dir or run_dir in out.parents):
        with RunLock(run_dir):
            yield
    else:
        yield
