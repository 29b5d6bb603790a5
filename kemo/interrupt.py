"""Ctrl-C that always stops a command, even where Keras swallows it.

Keras converts each batch's logs with a bare `except: pass`
(`keras.src.utils.python_utils.pythonify_logs`, called before every callback). The
main thread spends most of a step waiting inside that conversion for the step's
result, so a Ctrl-C landing there raised KeyboardInterrupt into the bare except and
was lost: the run trained on and exited 0 with a full report, as if never interrupted.

`catch_interrupts()` installs a SIGINT handler that records the request and then
raises KeyboardInterrupt as Python's default handler does. `ReraiseInterrupt`, a
callback on every `fit` and `predict`, raises it again at the next batch or epoch end
when it was swallowed, so the run stops there (its last checkpoint stands;
`--resume` continues). `kemo.cli.main` runs every command inside `catch_interrupts()`
and exits 130 whenever a Ctrl-C arrived.

Example:
    with catch_interrupts():
        model.fit(ds, epochs=3, callbacks=[ReraiseInterrupt()])
"""

from __future__ import annotations

import contextlib
import signal
import threading

import keras

_requested = threading.Event()


def interrupt_requested() -> bool:
    """Whether a Ctrl-C arrived inside the current `catch_interrupts()`."""
    return _requested.is_set()


def _record_and_raise(signum, frame):
    _requested.set()
    raise KeyboardInterrupt


@contextlib.contextmanager
def catch_interrupts():
    """Record every SIGINT while the block runs (then raise KeyboardInterrupt as usual).

    Installs the handler only from the main thread and only over Python's default
    one, so an embedding program's own SIGINT handling is left alone.
    """
    _requested.clear()
    install = (threading.current_thread() is threading.main_thread()
               and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    if install:
        signal.signal(signal.SIGINT, _record_and_raise)
    try:
        yield
    finally:
        if install:
            signal.signal(signal.SIGINT, signal.default_int_handler)


class ReraiseInterrupt(keras.callbacks.Callback):
    """Raise KeyboardInterrupt at the next batch or epoch end after a Ctrl-C that Keras
    swallowed. Put it after the checkpoint callback: an epoch that ended is saved first.

    Example:
        model.fit(ds, epochs=3, callbacks=[RunCheckpoint(run_dir), ReraiseInterrupt()])
    """

    def _check(self, *args, **kwargs):
        if _requested.is_set():
            raise KeyboardInterrupt

    on_train_batch_end = on_test_batch_end = on_predict_batch_end = _check
    on_epoch_end = on_test_end = on_predict_end = _check
