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


class RunLock:
    """An exclusive lock on `run_dir` (which must exist), released on exit or crash."""

    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd = None

    def acquire(self) -> "RunLock":
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
        return self

    def release(self) -> None:
        if self._fd is None:
            return
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
