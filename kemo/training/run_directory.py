"""The run directory `kemo train` writes: the one verdict on it (`check_run_dir`),
and opening it under the run's lock (`open_run_dir`). Light: no Keras, so the CLI
checks before the heavy imports.

Example:
    check_run_dir("runs/tiny", resume=False)   # InputError: exists (a finished run) ...
    with ExitStack() as lock:
        open_run_dir(Path("runs/tiny"), resume=False, lock=lock)
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from kemo.errors import InputError
from kemo.run.lock import RunLock, check_unlocked
from kemo.run.verdict import check_new_run_dir, check_resumable, clear_run_dir


def check_run_dir(run_dir, resume: bool, overwrite: bool = False,
                  locked: bool = False) -> bool:
    """Refuse (`InputError`) a run directory training may not write. Resuming: a run
    kemo's training wrote, unfinished, that no other process holds. Else: absent or
    empty, or with `overwrite` a run kemo wrote (then True: it is to be emptied,
    `clear_run_dir`). `locked`: the run's lock is held (by this process, or by process 0
    of several), so nobody else is writing it."""
    if resume:
        check_resumable(run_dir)
        if not locked:
            check_unlocked(run_dir)
        return False
    return check_new_run_dir(run_dir, overwrite, locked=locked)


def open_run_dir(run_dir: Path, resume: bool, lock: ExitStack, overwrite: bool = False) -> None:
    """Check (or create) `run_dir` and lock it for this process (until `lock` closes)
    before it is read; checked again once locked, as it may have changed meanwhile
    (finished; filled), and a run replaced with `overwrite` emptied then."""
    check_run_dir(run_dir, resume, overwrite, locked=resume)  # resuming: RunLock checks
    if not resume:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"run directory {run_dir}: not writable ({e.strerror})") from None
    lock.enter_context(RunLock(run_dir))  # a new run's first file; proves it writable
    if check_run_dir(run_dir, resume, overwrite, locked=True):
        clear_run_dir(run_dir)
