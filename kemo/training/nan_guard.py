"""Stop training at the first non-finite loss, in one error line.

A loss that turns NaN (a learning rate too high, a damaged input) never comes back:
every later weight is NaN, and the thresholds search would end in a traceback. The
callback stops at the batch where it happens and says which epoch, and which
checkpoint (the last epoch that ended with a finite loss) `--resume` continues from.

Example:
    callbacks.insert(0, StopOnNanLoss(run_dir))
"""

from __future__ import annotations

import math
from pathlib import Path

import keras

from kemo.errors import InputError
from kemo.run import layout as L


class StopOnNanLoss(keras.callbacks.Callback):
    """Raise `InputError` when the training loss is NaN or inf (checked every batch)."""

    def __init__(self, run_dir, learning_rate: float | None = None):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.learning_rate = learning_rate
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._check((logs or {}).get("loss"), f"batch {batch + 1} of ")

    def on_epoch_end(self, epoch, logs=None):
        self._check((logs or {}).get("loss"), "")

    def _check(self, loss, where: str) -> None:
        try:
            value = float(loss)
        except (TypeError, ValueError):
            return
        if math.isfinite(value):
            return
        root = self.run_dir / L.CHECKPOINTS
        latest = root / "LATEST"
        try:
            name = latest.read_text().strip()
        except OSError:
            name = ""
        lr = f" (train.learning_rate = {self.learning_rate:g}: try a lower one)" \
            if self.learning_rate else ""
        if name and (root / name).is_dir():
            resume = (f"the last checkpoint with a finite loss is {root / name}: continue "
                      f"from it with kemo train --resume {self.run_dir}")
        else:
            resume = (f"no epoch ended before it, so there is no checkpoint to resume "
                      f"from ({self.run_dir} can be deleted)")
        raise InputError(f"training loss became {value} in {where}epoch {self.epoch + 1}"
                         f"{lr}: training stopped; {resume}")
