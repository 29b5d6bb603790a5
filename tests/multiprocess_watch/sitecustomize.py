"""Test helper (tests/test_multiprocess.py puts this folder on PYTHONPATH): in a process
other than process 0 of a multi-process run, every write under $KEMO_TEST_WATCH (open
for writing, mkdir, rename, remove) is appended to $KEMO_TEST_WRITES, through Python's
audit hooks, which see every file operation Python makes."""

import os
import sys

WATCH, LOG = os.environ.get("KEMO_TEST_WATCH"), os.environ.get("KEMO_TEST_WRITES")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_busy = []


def _hook(event, args):
    if _busy or not args:
        return
    if event == "open":
        path, mode, flags = (list(args) + [None, None])[:3]
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & WRITE_FLAGS)
    else:
        path, writes = args[0], event in ("os.mkdir", "os.rename", "os.remove", "os.rmdir",
                                          "shutil.rmtree", "os.truncate", "os.symlink")
    if not writes or not isinstance(path, (str, bytes, os.PathLike)):
        return
    try:
        path = os.path.abspath(os.fsdecode(path))
    except (TypeError, ValueError):
        return
    if path == WATCH or path.startswith(WATCH + os.sep):
        _busy.append(1)
        try:
            with open(LOG, "a") as f:
                f.write(f"{os.environ.get('KERAS_DISTRIBUTION_PROCESS_ID')} {event} {path}\n")
        finally:
            _busy.pop()


if WATCH and LOG and os.environ.get("KERAS_DISTRIBUTION_PROCESS_ID", "0") != "0":
    WATCH = os.path.abspath(WATCH)
    sys.addaudithook(_hook)
