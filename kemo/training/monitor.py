"""What a person watches while a run trains: the console progress and TensorBoard.

`progress_verbosity` picks Keras' display: a progress bar per epoch (steps, ETA,
running loss and macro-F1) when stdout is a terminal, one line per epoch when it is
a pipe or a file (logs, CI), nothing with `--quiet`. `monitor_callbacks` gives the
callbacks that go with it: the progress line (`EpochProgress`: one line per epoch
with short names, never wider than the terminal; the per-label losses are in
TensorBoard and history.csv) and
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
import os
import statistics
import sys
import time
from pathlib import Path

import keras

from kemo.run import layout as L
from kemo.training.validation_callback import LANGUAGE_MEAN_KEY

log = logging.getLogger(__name__)

TENSORBOARD_DIR = L.TENSORBOARD


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


# The epoch line's values, in the order shown: log key -> short name. The per-label
# losses (`loss_<label>`, `val_loss_<label>`) are left out: history.csv and TensorBoard
# keep them, and thirteen values wrapped the line over three at 160 columns.
SHORT_NAMES = {"loss": "loss", "macro_f1": "f1", "val_loss": "val_loss",
               LANGUAGE_MEAN_KEY: "val_lang_f1", "val_macro_f1": "val_f1",
               "learning_rate": "lr"}
# What goes first when the line is too wide for the terminal (first dropped first);
# the pooled validation F1 goes only where the mean over languages is shown.
DROPPED_FIRST = ("lr", "step_time", "val_f1", "val_loss")


class EpochProgress(keras.callbacks.ProgbarLogger):
    """Training progress on one line per epoch, never wider than the terminal.

    On a terminal (Keras `verbose=1`) the line is redrawn in place while the epoch runs
    (`epoch 2/6 31/73 [=====>     ] eta 4s | loss 0.1624 f1 0.2973`) and ends as
    `epoch 2/6 73/73 16s 37ms/step | loss 0.1268 f1 0.3484 | val loss 0.1288 f1 0.2033`
    (`lang_f1`: the mean over languages of a several-language run); values that do not
    fit the width are dropped (`DROPPED_FIRST`), the bar shrinks. `verbose=2` (a pipe, a log file) writes only the closing line. The ETA is the
    median step time times the steps left, so a step that compiled a new length bucket
    does not inflate it. `clear()` wipes the unfinished line, so a note logged mid-epoch
    (`CompileNotes`) leaves no partial bar behind; the next step redraws it.

    Example:
        model.fit(ds, epochs=3, verbose=1, callbacks=[EpochProgress()])
    """

    def __init__(self, columns: int | None = None, interval: float = 0.1):
        super().__init__()
        self.columns, self.interval = columns, interval
        self._shown = 0  # width of the unfinished line on screen (0: none)
        self._epoch, self._steps, self._t0, self._last_draw = 0, [], 0.0, 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._steps, self._t0, self._last_draw = epoch, [], time.time(), 0.0
        self._step_t0 = self._t0

    def on_train_batch_begin(self, batch, logs=None):
        self._step_t0 = time.time()

    def on_train_batch_end(self, batch, logs=None):
        now = time.time()
        self._steps.append(now - self._step_t0)
        self.seen = batch + 1
        if self.verbose == 1 and (now - self._last_draw >= self.interval
                                  or self.seen == self.target):
            self._last_draw = now
            self._draw(self._running_line(logs or {}))

    def on_epoch_end(self, epoch, logs=None):
        if not self.verbose:
            return
        line = self._closing_line(logs or {})
        self.clear()
        self._write(line + "\n")

    # Validation inside fit and predict calls stay silent (Keras' bar would draw them).
    def on_test_begin(self, logs=None): pass
    def on_test_batch_end(self, batch, logs=None): pass
    def on_test_end(self, logs=None): pass
    def on_predict_begin(self, logs=None): pass
    def on_predict_batch_end(self, batch, logs=None): pass
    def on_predict_end(self, logs=None): pass

    def clear(self) -> None:
        """Wipe the unfinished progress line (if one is shown) and return to its start."""
        if self._shown:
            self._write("\r" + " " * self._shown + "\r")
            self._shown = 0

    def width(self) -> int | None:
        """The line's limit: one less than the terminal's columns (`columns`, else
        $COLUMNS, else the terminal of stdout); None (no limit) without a terminal."""

        if self.columns:
            return self.columns - 1
        if self.verbose != 1:
            return None
        try:
            return int(os.environ["COLUMNS"]) - 1
        except (KeyError, ValueError):
            pass
        try:
            return os.get_terminal_size(sys.stdout.fileno()).columns - 1
        except (AttributeError, OSError, ValueError):
            return 79

    def _running_line(self, logs: dict) -> str:

        target, seen = self.target or self.seen, self.seen
        eta = statistics.median(self._steps[-50:]) * max(target - seen, 0)
        head = f"epoch {self._epoch + 1}/{self.epochs} {seen}/{target}"
        values = _values(logs, running=True)
        tail = f" eta {_duration(eta)}" + (" | " + " ".join(v for _, v in values)
                                           if values else "")
        room = (self.width() or 120) - len(head) - len(tail) - 3
        bar = max(min(room, 30), 0)
        done = int(bar * seen / max(target, 1))
        bar_text = f" [{'=' * done}{'>' if done < bar else ''}{' ' * (bar - done - 1)}]" \
            if bar >= 5 else ""
        return _fit_width(head + bar_text + tail, self.width())

    def _closing_line(self, logs: dict) -> str:
        target = self.target or self.seen
        step = statistics.median(self._steps) if self._steps else 0.0
        values = _values(logs)
        groups = [[("head", f"epoch {self._epoch + 1}/{self.epochs} {self.seen}/{target} "
                    f"{_duration(time.time() - self._t0)}"),
                   ("step_time", f"{step * 1000:.0f}ms/step")],
                  [v for v in values if not v[0].startswith("val_") and v[0] != "lr"],
                  [v for v in values if v[0].startswith("val_")],
                  [v for v in values if v[0] == "lr"]]
        limit = self.width()
        for name in DROPPED_FIRST:
            if limit is None or len(_render(groups)) <= limit:
                break
            if name != "val_f1" or any(k == "val_lang_f1" for k, _ in values):
                groups = [[v for v in g if v[0] != name] for g in groups]
        return _fit_width(_render(groups), limit)

    def _draw(self, line: str) -> None:
        self._write("\r" + line + " " * max(self._shown - len(line), 0))
        self._shown = len(line)

    @staticmethod
    def _write(text: str) -> None:
        sys.stdout.write(text)  # looked up per call: redirect_stdout and capsys see it
        sys.stdout.flush()


def _values(logs: dict, running: bool = False) -> list[tuple[str, str]]:
    """(short name, "name value") for the logged values the line shows, in order."""
    out = []
    for key, short in SHORT_NAMES.items():
        if key in logs and not (running and key.startswith("val_") or
                                running and short == "lr"):
            value = float(logs[key])
            out.append((short, f"{short} {value:.2e}" if short == "lr"
                        else f"{short} {value:.4f}"))
    return out


def _render(groups) -> str:
    """Groups of (name, text) as `a b | c d | val e f`: the validation values under one
    `val` (`val loss 0.1288 f1 0.2033`)."""
    def text(g):
        val = g[0][0].startswith("val_")
        return ("val " if val else "") + " ".join(
            t.removeprefix("val_") if val else t for _, t in g)

    return " | ".join(text(g) for g in groups if g)


def _fit_width(line: str, limit: int | None) -> str:
    return line if limit is None or len(line) <= limit else line[:max(limit, 0)]


def _duration(seconds: float) -> str:
    """4s, 1:05, 1:02:03."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    return f"{m}:{s:02d}" if m < 60 else f"{m // 60}:{m % 60:02d}:{s:02d}"


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

    def __init__(self, min_seconds: float = 1.0, bar: EpochProgress | None = None,
                 bucket_of_step=None):
        super().__init__()
        self.min_seconds, self.bar = min_seconds, bar
        self.bucket_of_step = bucket_of_step
        self._steps, self._t0, self._first = [], 0.0, True
        self._epoch, self._seen, self._new = 0, set(), None

    def _say(self, text):
        if self.bar is not None:
            self.bar.clear()  # no half-drawn bar left above the note; the next step redraws
        log.info(text)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
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
        self._test_t0 = time.perf_counter()

    def on_test_end(self, logs=None):
        took = time.perf_counter() - self._test_t0
        if took > self.min_seconds:
            self._say(f"validation pass: {took:.1f}s")


def monitor_callbacks(run_dir, verbose: int, bucket_of_step=None) -> list:
    """The progress bar (when `verbose == 1`), compile notes (unless quiet; naming the
    length bucket with `bucket_of_step`, see `CompileNotes`) and the TensorBoard writer
    for `fit`."""
    bar = EpochProgress()  # verbose 1: the live line; 2: the closing line; 0: nothing
    callbacks = [bar]
    if verbose:
        callbacks.append(CompileNotes(bar=bar if verbose == 1 else None,
                                      bucket_of_step=bucket_of_step))
    board = tensorboard_callback(run_dir)
    return callbacks + ([board] if board is not None else [])
