"""One logging convention: library code logs, the command line prints.

Every module of kemo outside `kemo.cli` reports through Python's `logging`, on a logger
named after the module (`logging.getLogger(__name__)`, children of the `kemo` logger):
`info` for progress and results, `warning` for notes and interruptions (their text
starts with `note:` or `interrupted:`), `error` for a failure it reports but does not
raise. Library code never calls `print`, and no function takes a `log=` callable
(`tests/test_package_map.py` checks both). The text of a message is what the user reads.

`kemo.cli.main` calls `to_console()` once: each message is written as it is, info to
stdout and warnings to stderr, so a command's output reads as a plain log, each line
once: the `kemo` logger then stops its records there (`propagate = False`). Without
that, a handler on the root logger shows every line a second time as
`INFO:kemo...:text` on stderr, and one appears unasked: absl's first log call (TensorFlow
saving a SavedModel logs through absl) runs `logging.basicConfig()` when the root logger
has no handler. A library
user sees warnings without doing anything (Python's last-resort handler) and the
progress lines after `to_console()`; tests collect what a call logged with
`tests/conftest.py`'s `kemo_log()`.

Example:

    import kemo.log
    kemo.log.to_console()   # then kemo.training.train(...) says what it does
"""
from __future__ import annotations

import contextlib
import logging
import sys

ROOT = "kemo"


class ConsoleHandler(logging.Handler):
    """Writes each record's message as written: below WARNING to stdout, the rest to
    stderr. The streams are looked up per record, so `contextlib.redirect_stdout` and
    pytest's `capsys` see the lines."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stdout if record.levelno < logging.WARNING else sys.stderr
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001 - logging's contract: report, never raise
            self.handleError(record)


def to_console(level: int = logging.INFO) -> logging.Logger:
    """Show kemo's messages from `level` up on the console (idempotent), and only there:
    they no longer reach the root logger's handlers, which would show each line twice
    (see the module docstring). Returns the `kemo` logger."""
    logger = logging.getLogger(ROOT)
    if not any(isinstance(h, ConsoleHandler) for h in logger.handlers):
        logger.addHandler(ConsoleHandler())
    logger.setLevel(level)
    logger.propagate = False
    return logger


@contextlib.contextmanager
def warnings_only():
    """Inside the block kemo logs warnings and errors only (a process other than 0 of
    several: process 0 tells the run)."""
    logger = logging.getLogger(ROOT)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
