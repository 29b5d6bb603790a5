"""What a person watches while a run trains: the console progress and TensorBoard.

`progress_verbosity` picks Keras' display: a progress bar per epoch (steps, ETA,
running loss and macro-F1) when stdout is a terminal, one line per epoch when it is
a pipe or a file (logs, CI), nothing with `--quiet`. `monitor_callbacks` gives the
callbacks that go with it: the bar (`RunningProgbar`, which keeps the per-label
losses for the epoch's closing line so the bar fits on one terminal line) and
`keras.callbacks.TensorBoard` writing `<run_dir>/tensorboard/{train,validation}/`
(loss, per-label loss, macro-F1 and, through Keras, the learning rate), so
`tensorboard --logdir runs` shows every run side by side. The event files are written
by TensorFlow's `tf.summary`, which needs the `tensorboard` package: without either,
TensorBoard logging is skipped with a note.

Example:
    verbose = progress_verbosity(quiet=False)            # 1 on a terminal, else 2
    callbacks += monitor_callbacks(run_dir, verbose)
    model.fit(..., callbacks=callbacks, verbose=verbose)
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path

import keras

from kemo.run import layout as L

log = logging.getLogger(__name__)

TENSORBOARD_DIR = L.TENSORBOARD
BAR_KEYS = ("loss", "macro_f1")  # what the bar shows while an epoch runs


def progress_verbosity(quiet: bool = False, stream=None) -> int:
    """Keras `verbose` for `fit`: 0 if `quiet`, 1 (a live bar) if `stream` (default
    stdout) is a terminal, 2 (one line per epoch) otherwise.

    Example:
        progress_verbosity(False, open("log.txt", "w"))   # 2
    """
    if quiet:
        return 0
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return 1 if isatty is not None and isatty() else 2
    except (OSError, ValueError):  # a closed or detached stream
        return 2


class RunningProgbar(keras.callbacks.ProgbarLogger):
    """Keras' progress bar showing only the running loss and macro-F1 while an
    epoch runs (a bar with six per-label losses would wrap and redraw badly); the
    epoch's closing line shows every logged value, validation included. Its ETA leaves
    out compile time: a step over 5x the median step (XLA compiling a new length
    bucket) counts as a median step, so the ETA no longer jumps (26:52 -> 9s -> 2:25).

    Example:
        model.fit(ds, epochs=3, verbose=1, callbacks=[RunningProgbar()])
    """

    def on_train_batch_begin(self, batch, logs=None):
        import time

        self._step_t0 = time.time()
        super().on_train_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        import statistics
        import time

        took = time.time() - getattr(self, "_step_t0", time.time())
        steps = self.__dict__.setdefault("_step_times", [])
        bar = getattr(self, "progbar", None)
        if len(steps) >= 3 and took > 5 * statistics.median(steps[-50:]):
            median = statistics.median(steps[-50:])
            if bar is not None and getattr(bar, "_time_after_first_step", None) is not None:
                bar._time_after_first_step += took - median  # compile is not step time
        elif batch > 0:
            steps.append(took)
        logs = {k: v for k, v in (logs or {}).items() if k in BAR_KEYS}
        super().on_train_batch_end(batch, logs)


def tensorboard_callback(run_dir):
    """`keras.callbacks.TensorBoard` writing to `<run_dir>/tensorboard`, or None (with
    a logged note) when TensorFlow or tensorboard, which write the event files,
    is missing."""
    missing = [m for m in ("tensorflow", "tensorboard") if importlib.util.find_spec(m) is None]
    if missing:  # tf.summary writes nothing without the tensorboard package
        log.warning(f"note: {' and '.join(missing)} not installed: no TensorBoard logs for "
                    "this run (pip install tensorboard)")
        return None
    return keras.callbacks.TensorBoard(log_dir=str(Path(run_dir) / TENSORBOARD_DIR),
                                       write_graph=False, update_freq="epoch")


class CompileNotes(keras.callbacks.Callback):
    """Say what a long wait in `fit` is: XLA compiles the train step on the first batch
    and again for each new batch shape (a length bucket not seen yet), which froze the
    bar without a word. With `bucket_of_step(epoch, batch)` (the padded length of that
    batch, from the run's `BatchPlan`) it says before such a step which bucket compiles
    and after it how long it took; without, it prints a line before the first step, its
    time after, and a line for any later step over 5x the median step and over
    `min_seconds`.

    Example:
        model.fit(ds, epochs=2, callbacks=[CompileNotes(bucket_of_step=lambda e, b: 32)])
        # compiling the train step for length bucket 32 (XLA; once per bucket) ...
        # length bucket 32 compiled and run: 21.4s
    """

    def __init__(self, min_seconds: float = 1.0, bar: bool = False, bucket_of_step=None):
        super().__init__()
        self.min_seconds, self.bar = min_seconds, bar
        self.bucket_of_step = bucket_of_step
        self._steps, self._t0, self._first = [], 0.0, True
        self._epoch, self._seen, self._new = 0, set(), None

    def _say(self, text):
        log.info(("\n" if self.bar else "") + text)  # after the bar's line

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        import time

        self._new = None
        if self.bucket_of_step is not None:
            length = self.bucket_of_step(self._epoch, batch)
            if length not in self._seen:
                self._seen.add(length)
                self._new = length
                self._say(f"compiling the train step for length bucket {length} "
                          "(XLA; once per bucket) ...")
        elif self._first:
            self._say("compiling the train step (XLA; once per batch shape) ...")
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        import statistics
        import time

        took = time.perf_counter() - self._t0
        if self._new is not None:
            self._say(f"length bucket {self._new} compiled and run: {took:.1f}s")
            self._first = False
            return
        if self._first:
            self._first = False
            self._say(f"first train step: {took:.1f}s (mostly compiling)")
            return
        if (len(self._steps) >= 3 and took > self.min_seconds
                and took > 5 * statistics.median(self._steps[-50:])):
            what = ("a slow step" if self.bucket_of_step is not None
                    else "compiling a new length bucket")
            self._say(f"step {batch + 1}: {took:.1f}s ({what})")
        else:
            self._steps.append(took)

    def on_test_begin(self, logs=None):
        import time

        self._test_t0 = time.perf_counter()

    def on_test_end(self, logs=None):
        import time

        took = time.perf_counter() - self._test_t0
        if took > self.min_seconds:
            self._say(f"validation pass: {took:.1f}s")


def monitor_callbacks(run_dir, verbose: int, bucket_of_step=None) -> list:
    """The progress bar (when `verbose == 1`), compile notes (unless quiet; naming the
    length bucket with `bucket_of_step`, see `CompileNotes`) and the TensorBoard writer
    for `fit`."""
    callbacks = [RunningProgbar()] if verbose == 1 else []
    if verbose:
        callbacks.append(CompileNotes(bar=verbose == 1, bucket_of_step=bucket_of_step))
    board = tensorboard_callback(run_dir)
    return callbacks + ([board] if board is not None else [])
