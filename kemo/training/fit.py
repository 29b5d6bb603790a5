"""`fit`: `model.fit` from the checkpoint's epoch and step (or the first) to the end or
an early stop; returns what it made (`FitResult`).

Example:
    result = fit(ctx, model, inputs, state, weights)
    result.best_epoch, result.history[-1]["val_macro_f1"]
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from kemo import multiprocess
from kemo.data.numpy_batches import input_batches
from kemo.data.pipeline import BatchPlan, length_buckets, steps_per_epoch, token_lengths
from kemo.errors import InputError
from kemo.run import layout as L
from kemo.training.callbacks import JsonHistory, make_callbacks
from kemo.training.context import TrainContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitResult:
    history: list  # history.json's epochs
    epochs_run: int
    best_epoch: int | None  # the epoch whose weights early stopping restored (1-based)
    seconds: float
    start_epoch: int


def fit(ctx: TrainContext, model, inputs, state: dict | None, weights) -> FitResult:
    """Train `model` on `inputs.train` (rows drawn by `weights`) from `state` (the
    checkpoint's, or None) to `train.epochs` or an early stop."""
    cfg = ctx.cfg
    plan = _batch_plan(ctx, inputs, state, weights)
    train_batches = _train_batches(ctx, inputs, plan, weights)
    callbacks, early_stopping, val_ds = make_callbacks(ctx, inputs, state, plan)
    patience = cfg.train.early_stopping_patience
    stopped_early = bool(early_stopping and state and state.get("early_stopping")
                         and state["early_stopping"]["wait"] >= patience)
    t0 = time.time()
    if plan.start_epoch < cfg.train.epochs and not stopped_early:
        try:
            model.fit(train_batches, validation_data=val_ds,
                      epochs=cfg.train.epochs, initial_epoch=plan.start_epoch,
                      steps_per_epoch=plan.steps, callbacks=callbacks, verbose=ctx.verbose,
                      shuffle=False)
        except KeyboardInterrupt:
            if ctx.writer:
                log.warning(f"\ninterrupted: continue with --resume {ctx.run_dir}")
            raise
    elif state and state.get("best_weights") is not None:
        # Training had ended before the kill: early stopping's best weights, as at its end.
        model.set_weights(state["best_weights"])
    seconds = time.time() - t0
    history = next(c for c in callbacks if isinstance(c, JsonHistory)).epochs  # history.json
    return FitResult(history, len(history), _best_epoch(early_stopping, state), seconds,
                     plan.start_epoch)


def _batch_plan(ctx: TrainContext, inputs, state: dict | None, weights) -> BatchPlan:
    """The order of the training batches from the checkpoint's point on (what the input
    path serves; the compile notes name each step's length bucket from it)."""
    cfg, arrays = ctx.cfg, inputs.arrays["train"]
    steps = steps_per_epoch(len(inputs.train), cfg.train.batch_size)
    start_epoch, start_step = resume_point(ctx.run_dir, ctx.resume, state, steps)
    return BatchPlan(token_lengths(arrays), cfg.train.batch_size,
                     length_buckets(cfg.data.length_buckets, arrays["token_ids"].shape[1]),
                     cfg.train.seed, cfg.train.epochs, start_epoch, weights,
                     start_step=start_step)


def _train_batches(ctx: TrainContext, inputs, plan: BatchPlan, weights):
    """The training batches `plan` orders, through tf.data or numpy (`ctx.tf_data`)."""
    cfg = ctx.cfg
    batches = input_batches(inputs.arrays["train"], inputs.train.y, cfg.train.batch_size,
                            tf_data=ctx.tf_data, seed=cfg.train.seed, epochs=cfg.train.epochs,
                            start_epoch=plan.start_epoch, weights=weights,
                            buckets=cfg.data.length_buckets, part=multiprocess.part(),
                            start_step=plan.start_step)
    if plan.start_step and not hasattr(batches, "element_spec"):  # numpy batches, not
        # tf.data: as a generator, as Keras' PyDataset adapter refuses an epoch ended early
        return (batches[i] for i in range(len(batches)))
    return batches


def _best_epoch(early_stopping, state: dict | None) -> int | None:
    """The epoch (1-based) whose weights early stopping restored, or None."""
    if early_stopping is not None and getattr(early_stopping, "best_weights", None) is not None:
        return int(early_stopping.best_epoch) + 1
    if early_stopping is not None and state and state.get("early_stopping"):
        return int(state["early_stopping"]["best_epoch"]) + 1
    return None


def resume_point(run_dir: Path, resume: bool, state: dict | None, steps: int) -> tuple[int, int]:
    """(epochs complete, steps of the next one done) at the checkpoint, said when resuming."""
    start_epoch, start_step = (state["epoch"], state.get("step", 0)) if state else (0, 0)
    if start_step >= steps:
        raise InputError(f"{run_dir / L.CHECKPOINTS / state['checkpoint']}: step {start_step}, "
                         f"but an epoch has {steps} steps (data or batch size changed since?)")
    if resume and start_step:
        log.info(f"resuming {run_dir} after epoch {start_epoch}, at step {start_step} of "
                 f"{steps} in epoch {start_epoch + 1}")
    elif resume:
        log.info(f"resuming {run_dir} after epoch {start_epoch}" if state
                 else f"resuming {run_dir}: no checkpoint yet, starting from epoch 1")
    return start_epoch, start_step

