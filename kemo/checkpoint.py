"""Atomic per-epoch checkpoints, so a killed or interrupted run resumes exactly.

After every epoch `RunCheckpoint` writes `checkpoints/epoch-<N>/` holding every model
variable (weights and dropout RNG state), every optimizer variable (step, moments,
learning-rate schedule position follows from the step) and `state.json` (epoch,
early-stopping state). Only when that directory is complete is `checkpoints/LATEST`
replaced (write then rename), so a kill at any moment leaves the previous checkpoint
in force. The data order needs no saving: each epoch's order depends only on
(seed, epoch).

Example:
    callbacks = [RunCheckpoint(run_dir, early_stopping=es)]
    ...
    state = load_checkpoint(run_dir, model)   # -> {"epoch": 3, ...} or None
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import keras
import numpy as np

from kemo.errors import InputError


def _checkpoints(run_dir) -> Path:
    return Path(run_dir) / "checkpoints"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _save_arrays(path: Path, variables) -> None:
    arrays = {f"v{i:05d}": np.asarray(keras.ops.convert_to_numpy(v.value))
              for i, v in enumerate(variables)}
    with open(path, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())


def _load_arrays(path: Path, variables, what: str) -> None:
    with np.load(path) as data:
        if len(data.files) != len(variables):
            raise InputError(f"{path}: checkpoint holds {len(data.files)} {what} variables, "
                             f"the model has {len(variables)} (config changed since?)")
        for i, v in enumerate(variables):
            value = data[f"v{i:05d}"]
            if tuple(value.shape) != tuple(v.shape):
                raise InputError(f"{path}: {what} variable {v.path} has shape {value.shape} "
                                 f"in the checkpoint, {tuple(v.shape)} in the model")
            v.assign(value)


def save_checkpoint(run_dir, model, state: dict) -> Path:
    """Write a complete checkpoint for `state["epoch"]`, then point LATEST at it."""
    root = _checkpoints(run_dir)
    root.mkdir(exist_ok=True)
    final = root / f"epoch-{state['epoch']:04d}"
    tmp = root / f".partial-{state['epoch']:04d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    _save_arrays(tmp / "model.npz", model.variables)
    _save_arrays(tmp / "optimizer.npz", model.optimizer.variables)
    best = state.pop("best_weights", None)
    if best is not None:
        with open(tmp / "best.npz", "wb") as f:
            np.savez(f, **{f"v{i:05d}": w for i, w in enumerate(best)})
    _write_atomic(tmp / "state.json", json.dumps(state, indent=1))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    _write_atomic(root / "LATEST", final.name)
    for old in root.iterdir():  # keep only the checkpoint LATEST names
        if old.is_dir() and old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(run_dir, model) -> dict | None:
    """Restore model and optimizer variables from the LATEST checkpoint; its state.

    Returns None when the run has no checkpoint yet. The optimizer must be compiled
    (it is built here if needed). `state["best_weights"]` holds early stopping's best
    weights when they were saved.
    """
    root = _checkpoints(run_dir)
    if not (root / "LATEST").is_file():
        return None
    ckpt = root / (root / "LATEST").read_text().strip()
    if not (ckpt / "state.json").is_file():
        raise InputError(f"{ckpt}: checkpoint incomplete (no state.json)")
    state = json.loads((ckpt / "state.json").read_text())
    _load_arrays(ckpt / "model.npz", model.variables, "model")
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    _load_arrays(ckpt / "optimizer.npz", model.optimizer.variables, "optimizer")
    if (ckpt / "best.npz").is_file():
        with np.load(ckpt / "best.npz") as data:
            state["best_weights"] = [data[k] for k in sorted(data.files)]
    return state


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping whose state (best value, wait, best weights) survives a resume."""

    def __init__(self, *args, restore: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._restore = restore

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self._restore:
            self.wait = self._restore["wait"]
            self.best = self._restore["best"]
            self.best_epoch = self._restore["best_epoch"]
            self.best_weights = self._restore.get("best_weights")
            self._restore = None

    def state(self) -> dict:
        best = self.best
        return {"wait": int(self.wait), "best": None if best is None else float(best),
                "best_epoch": int(self.best_epoch), "best_weights": self.best_weights}


class RunCheckpoint(keras.callbacks.Callback):
    """Saves a checkpoint at the end of every epoch (after early stopping updated)."""

    def __init__(self, run_dir, early_stopping: ResumableEarlyStopping | None = None):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.early_stopping = early_stopping

    def on_epoch_end(self, epoch, logs=None):
        state = {"epoch": epoch + 1}
        if self.early_stopping is not None:
            state["early_stopping"] = self.early_stopping.state()
            state["best_weights"] = state["early_stopping"].pop("best_weights")
        save_checkpoint(self.run_dir, self.model, state)
