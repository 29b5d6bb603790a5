"""Ctrl-C that always stops a command, even where Keras swallows it.

Keras converts each batch's logs with a bare `except: pass`
(`keras.src.utils.python_utils.pythonify_logs`, called before every callback). The
main thread spends most of a step waiting inside that conversion for the step's
result, so a Ctrl-C landing there raised KeyboardInterrupt into the bare except and
was lost: the run trained on and exited 0 with a full report, as if never interrupted.

`catch_interrupts()` installs a SIGINT handler that records the request. Outside
`fit` and `predict` it then raises KeyboardInterrupt as Python's default handler does.
While a `fit` or `predict` with `ReraiseInterrupt` runs, the first Ctrl-C only records
(and says so): `ReraiseInterrupt` raises it at the next batch or epoch end, a safe
point in plain Python, never inside Keras' bare except or an XLA compile, so the run
stops there (its last checkpoint stands; `--resume` continues). A second Ctrl-C raises
at once. `kemo.cli.main` runs every command inside `catch_interrupts()` and exits 130
whenever a Ctrl-C arrived.

Example:
    with catch_interrupts():
        model.fit(ds, epochs=3, callbacks=[ReraiseInterrupt()])
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading

log = logging.getLogger(__name__)

_requested = threading.Event()
_deferring = threading.Event()  # a fit/predict with ReraiseInterrupt is running


def interrupt_requested() -> bool:
    """Whether a Ctrl-C arrived inside the current `catch_interrupts()`."""
    return _requested.is_set()


def _on_sigint(signum, frame):
    first = not _requested.is_set()
    _requested.set()
    if first and _deferring.is_set():
        log.warning("\ninterrupted: stopping at the end of this batch (Ctrl-C again: now)")
        return
    raise KeyboardInterrupt


@contextlib.contextmanager
def catch_interrupts():
    """Record every SIGINT while the block runs (then raise KeyboardInterrupt as usual).

    Installs the handler only from the main thread and only over Python's default
    one, so an embedding program's own SIGINT handling is left alone.
    """
    _requested.clear()
    _deferring.clear()
    install = (threading.current_thread() is threading.main_thread()
               and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    if install:
        signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        _deferring.clear()
        if install:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def _make_reraise_interrupt():
    """Build `ReraiseInterrupt` on first use: keras is imported only by commands that
    fit or predict, so `kemo --help`, `weights` and `evaluate` start without it."""
    import keras

    class ReraiseInterrupt(keras.callbacks.Callback):
        """While `fit` or `predict` runs, hold a Ctrl-C until the next batch or epoch end
        and raise KeyboardInterrupt there. Put it after the checkpoint callback: an epoch
        that ended is saved first.

        Example:
            model.fit(ds, epochs=3, callbacks=[RunCheckpoint(run_dir), ReraiseInterrupt()])
        """

        def _begin(self, logs=None):
            _deferring.set()
            self._check()

        def _end(self, logs=None):
            _deferring.clear()
            self._check()

        def _check(self, *args, **kwargs):
            if _requested.is_set():
                _deferring.clear()
                raise KeyboardInterrupt

        on_train_begin = on_predict_begin = _begin
        on_train_end = on_predict_end = _end
        on_train_batch_end = on_test_batch_end = on_predict_batch_end = on_epoch_end = _check

    ReraiseInterrupt.__module__ = __name__
    ReraiseInterrupt.__qualname__ = "ReraiseInterrupt"
    return ReraiseInterrupt


def __getattr__(name):
    # `from kemo.interrupt import ReraiseInterrupt` builds the keras callback class then
    # (PEP 562), once; everything else in this module runs without keras.
    if name == "ReraiseInterrupt":
        cls = globals()["ReraiseInterrupt"] = _make_reraise_interrupt()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
