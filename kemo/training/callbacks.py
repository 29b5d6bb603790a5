"""The callbacks `fit` runs, in the order they must run: NaN guard first, validation
before what reads its logs, the checkpoint after what it saves, then progress.

Example:
    callbacks, early_stopping, val_ds = make_callbacks(ctx, inputs, state, plan)
    model.fit(train_ds, validation_data=val_ds, callbacks=callbacks, ...)
"""

from __future__ import annotations

import json
from pathlib import Path

import keras

from kemo import multiprocess
from kemo.data.numpy_batches import input_batches
from kemo.data.pipeline import batch_arrays
from kemo.interrupt import ReraiseInterrupt
from kemo.prediction.batches import predict_logits
from kemo.run import layout as L
from kemo.training.checkpoint import ResumableEarlyStopping, ResumeInsideEpoch, RunCheckpoint
from kemo.training.context import TrainContext
from kemo.training.metrics import make_metrics
from kemo.training.monitor import monitor_callbacks
from kemo.training.nan_guard import StopOnNanLoss
from kemo.training.validation_callback import LanguageValidation


class JsonHistory(keras.callbacks.Callback):
    """Writes the per-epoch logs to `history.json` after every epoch (`write=False`:
    only keeps them in `epochs`, as a process other than a run's writer does)."""

    def __init__(self, path, write: bool = True):
        super().__init__()
        self.path, self.write = Path(path), write
        self.epochs = json.loads(self.path.read_text()) if self.path.exists() else []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs = [e for e in self.epochs if e["epoch"] < epoch + 1]
        self.epochs.append({"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}})
        if self.write:
            self.path.write_text(json.dumps(self.epochs, indent=1))


def make_callbacks(ctx: TrainContext, inputs, state: dict | None, plan):
    """(callbacks, early stopping or None, Keras' validation data or None) for `fit`
    from the checkpoint's point `plan` starts at (`state`: the checkpoint's, or None).
    Only the writer (process 0 of several) logs, checkpoints and shows progress."""
    run_dir, writer = ctx.run_dir, ctx.writer
    validation, val_ds = _validation(ctx, inputs)
    early_stopping = _early_stopping(ctx, state)
    resume_inside = _resume_inside_epoch(ctx, inputs, state, plan)
    callbacks = [
        resume_inside,  # first: the shortened epoch's stop is cleared before early stopping's
        StopOnNanLoss(run_dir, ctx.cfg.train.learning_rate),  # before any record
        validation,  # the validation logs, before anything reads them
        *[keras.callbacks.CSVLogger(str(run_dir / L.HISTORY_CSV), append=ctx.resume)] * writer,
        JsonHistory(run_dir / L.HISTORY_JSON, write=writer),
        early_stopping,
        *[RunCheckpoint(run_dir, early_stopping, ctx.cfg.train.checkpoint_every_steps,
                        plan.steps, (plan.start_epoch, plan.start_step))] * writer,
        ReraiseInterrupt(),  # after the checkpoint: an ended epoch is saved
        *(_progress(ctx, plan) if writer else []),
    ]
    return [c for c in callbacks if c is not None], early_stopping, val_ds


def _validation(ctx: TrainContext, inputs):
    """(the callback that validates per language, None) for a run of several languages
    (one validation pass); else (None, the batches of Keras' own validation pass)."""
    cfg, buckets = ctx.cfg, ctx.cfg.data.length_buckets
    if ctx.several_languages:
        def predict(model):
            return predict_logits(model, inputs.arrays["val"], cfg.train.batch_size, buckets,
                                  ctx.tf_data)

        metrics = make_metrics(inputs.label_names, inputs.loss, ctx.intensity)
        return LanguageValidation(inputs.val, inputs.loss, metrics, predict,
                                  intensity=ctx.intensity), None
    return None, input_batches(inputs.arrays["val"], inputs.val.y, cfg.train.batch_size,
                               tf_data=ctx.tf_data, buckets=buckets, shuffle=False,
                               part=multiprocess.part())


def _early_stopping(ctx: TrainContext, state: dict | None):
    """Early stopping on `ctx.monitor` (restoring the best weights), carrying on from the
    checkpoint's; None with `train.early_stopping_patience = 0`."""
    if ctx.cfg.train.early_stopping_patience <= 0:
        return None
    restore = None
    if state and "early_stopping" in state:
        restore = {**state["early_stopping"], "best_weights": state.get("best_weights")}
    return ResumableEarlyStopping(
        monitor=ctx.monitor, mode="max", patience=ctx.cfg.train.early_stopping_patience,
        restore_best_weights=True, verbose=1, restore=restore)


def _resume_inside_epoch(ctx: TrainContext, inputs, state: dict | None, plan):
    """A checkpoint inside an epoch: the callback that ends that epoch as the
    uninterrupted run did (`ResumeInsideEpoch`); else None."""
    if not plan.start_step:
        return None
    idx, length = plan[0]
    first = batch_arrays(inputs.arrays["train"], inputs.train.y, idx, length,
                         ctx.cfg.train.batch_size, part=multiprocess.part())
    return ResumeInsideEpoch(plan.start_epoch, plan.start_step, plan.steps, state["metrics"],
                             ctx.run_dir / L.CHECKPOINTS / state["checkpoint"], first)


def _progress(ctx: TrainContext, plan) -> list:
    """Progress bar, compile notes per length bucket and TensorBoard (`monitor`)."""
    def bucket_of_step(epoch, batch):
        return plan[(epoch - plan.start_epoch) * plan.steps + batch
                    - (plan.start_step if epoch > plan.start_epoch else 0)][1]

    return monitor_callbacks(ctx.run_dir, ctx.verbose, bucket_of_step=bucket_of_step)
