"""Atomic per-epoch checkpoints, so a killed or interrupted run resumes exactly.

After every epoch `RunCheckpoint` writes `checkpoints/epoch-<N>/` holding every model
variable (weights and dropout RNG state), every optimizer variable (step, moments,
learning-rate schedule position follows from the step) and `state.json` (epoch,
early-stopping state). Only when that directory is complete is `checkpoints/LATEST`
replaced (write then rename), so a kill at any moment leaves the previous checkpoint
in force. The data order needs no saving: each epoch's order depends only on
(seed, epoch).

With `train.checkpoint_every_steps = N` a checkpoint is also written every N steps
inside an epoch: `checkpoints/epoch-<E>-step-<K>/` (E epochs complete, K steps of the
next) holds the same files plus `metrics.npz`, the training metrics accumulated over
the epoch's first K steps (its mean loss, macro-F1 counts). Resuming, `fit` serves the
epoch's batches from step K on (`BatchPlan(start_step=K)`), `ResumeInsideEpoch` puts
the metrics back when the epoch begins and ends it after its remaining steps, so the
history is the uninterrupted run's. Loading reads and checks every file of the checkpoint (LATEST,
`state.json`, each array's count and shape against the model) before it assigns
anything, so a damaged checkpoint is one `InputError` naming the file.

Under the torch backend Keras' (unseeded) dropout draws from torch's global generator,
not from the layers' seed-generator variables, so that generator's state is saved too
(`torch_rng.npy`). Keras draws from it again when a new model's first `fit` traces, so
`RunCheckpoint` restores it when the resumed training begins: the next epoch draws the
same dropout masks as the uninterrupted run would have.

Checkpoints are for resuming only: once a run has finished (`report.json` written),
`remove_checkpoints` deletes them (`train --keep-checkpoints` keeps them), and the
run's `model.keras` is written by `save_model_without_optimizer` (weights only, no
optimizer moments).

Example:
    callbacks = [RunCheckpoint(run_dir, early_stopping=es)]
    ...
    state = load_checkpoint(run_dir, model)   # -> {"epoch": 3, ...} or None
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

import keras
import numpy as np

from kemo.run import json_files as rf
from kemo.errors import InputError
from kemo.run import layout as L

log = logging.getLogger(__name__)


def _checkpoints(run_dir) -> Path:
    return Path(run_dir) / L.CHECKPOINTS


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


def checkpoint_name(epoch: int, step: int = 0) -> str:
    """`epoch-0003` after epoch 3; `epoch-0003-step-000050`: 50 steps into epoch 4."""
    return f"epoch-{epoch:04d}" + (f"-step-{step:06d}" if step else "")


_NAME = re.compile(r"epoch-(\d{4,})(?:-step-(\d{6,}))?")


def _load_arrays(path: Path, variables, what: str) -> list[np.ndarray]:
    """Every array of `path`, read in full (so a damaged file fails here) and checked
    against `variables`: count, shapes, dtypes, finite values. Nothing is assigned."""
    return check_arrays(path, _read_arrays(path, what), variables, what)


def _read_arrays(path: Path, what: str) -> list[np.ndarray]:
    """Every array of `path` (v00000, v00001, ...), read in full; InputError if not."""
    if not path.is_file():
        raise InputError(f"{path}: missing (checkpoint incomplete)")
    try:
        with np.load(path, allow_pickle=False) as data:
            names = sorted(data.files)
            values = [data[n] for n in names]
    except Exception as e:  # truncated zip, bad CRC, pickled objects, not a .npz
        detail = str(e).splitlines()[0] if str(e) else ""
        raise InputError(f"{path}: cannot read the {what} arrays "
                         f"({type(e).__name__}: {detail})") from None
    if names != [f"v{i:05d}" for i in range(len(names))]:
        raise InputError(f"{path}: unexpected array names (expected v00000, v00001, ...)")
    return values


def check_arrays(path: Path, values, variables, what: str) -> list[np.ndarray]:
    """`values` (read from `path`) against `variables`: count, shapes, dtypes, finite."""
    if len(values) != len(variables):
        raise InputError(f"{path}: checkpoint holds {len(values)} {what} variables, "
                         f"the model has {len(variables)} (config changed since?)")
    for i, (value, v) in enumerate(zip(values, variables)):
        shape, name = tuple(getattr(v, "shape", ())), getattr(v, "path", f"#{i}")
        if tuple(value.shape) != shape:
            raise InputError(f"{path}: {what} variable {name} has shape {value.shape} "
                             f"in the checkpoint, {shape} in the model")
        want = str(getattr(v, "dtype", value.dtype))  # kemo saves each in its own dtype
        if value.dtype.kind not in "fiub" or value.dtype.name != want:
            raise InputError(f"{path}: {what} variable {name} has dtype {value.dtype} "
                             f"in the checkpoint, {want} in the model")
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise InputError(f"{path}: {what} variable {name} holds NaN or infinite values")
    return values


TORCH_RNG = "torch_rng.npy"
METRICS = "metrics.npz"  # a checkpoint inside an epoch: the epoch's metrics so far


def _torch_rng_state() -> np.ndarray | None:
    """torch's global generator state (uint8) under the torch backend, else None."""
    if keras.backend.backend() != "torch":
        return None
    import torch

    return torch.get_rng_state().numpy()


def _read_torch_rng(path: Path) -> np.ndarray:
    """`torch_rng.npy`: a 1-D uint8 array (torch.get_rng_state()); InputError if not."""
    try:
        value = np.load(path, allow_pickle=False)
    except Exception as e:
        detail = str(e).splitlines()[0] if str(e) else ""
        raise InputError(f"{path}: cannot read the torch generator state "
                         f"({type(e).__name__}: {detail})") from None
    current = _torch_rng_state()  # under torch, the size this torch expects
    size = current.size if current is not None else None
    if value.dtype != np.uint8 or value.ndim != 1 or value.size == 0 \
            or (size is not None and value.size != size):
        raise InputError(f"{path}: expected a 1-D uint8 array of {size or 'some'} values "
                         f"(torch generator state), got {value.dtype} of shape {value.shape}")
    return value


def save_checkpoint(run_dir, model, state: dict) -> Path:
    """Write a complete checkpoint for `state["epoch"]` (and `state["step"]` of the next
    epoch, if given: the training metrics are saved too), then point LATEST at it."""
    root = _checkpoints(run_dir)
    root.mkdir(exist_ok=True)
    name = checkpoint_name(state["epoch"], state.get("step", 0))
    final = root / name
    tmp = root / f".partial-{name[6:]}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    _save_arrays(tmp / "model.npz", model.variables)
    _save_arrays(tmp / "optimizer.npz", model.optimizer.variables)
    if state.get("step"):
        _save_arrays(tmp / METRICS, model.metrics_variables)
    best = state.pop("best_weights", None)
    if best is not None:
        with open(tmp / "best.npz", "wb") as f:
            np.savez(f, **{f"v{i:05d}": w for i, w in enumerate(best)})
    rng = _torch_rng_state()
    if rng is not None:
        with open(tmp / TORCH_RNG, "wb") as f:
            np.save(f, rng)
            f.flush()
            os.fsync(f.fileno())
    _write_atomic(tmp / "state.json", json.dumps(state, indent=1))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    _write_atomic(root / "LATEST", final.name)
    for old in root.iterdir():  # keep only the checkpoint LATEST names
        if old.is_dir() and old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def read_checkpoint(run_dir, model, epochs: int | None = None,
                    early_stopping: bool | None = None) -> dict | None:
    """Read and validate the LATEST checkpoint in full, assigning nothing.

    Returns None when the run has no checkpoint yet, else its state ("epoch", "step"
    for one inside an epoch, "early_stopping") with the arrays under "model",
    "optimizer", "best_weights" and "metrics" (inside an epoch; checked against the
    model's metrics when fit has built them, `ResumeInsideEpoch`). Any fault (LATEST naming no
    checkpoint, a bad `state.json`, a truncated `.npz`, a variable count or shape that
    is not the model's) is one `InputError` naming the file. The optimizer is built if
    needed. `epochs`: the run's epoch count; `early_stopping`: whether the config uses
    it (its state must then be present).
    """
    root = _checkpoints(run_dir)
    latest = root / "LATEST"
    if not latest.exists():
        return None
    try:
        name = latest.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{latest}: cannot read ({e})") from None
    ckpt, match = root / name, _NAME.fullmatch(name)
    if not match or not ckpt.is_dir():
        raise InputError(f"{latest}: names {name[:40]!r}, which is not a checkpoint "
                         f"directory in {root}")
    state = _read_state(ckpt / "state.json", int(match[1]), int(match[2] or 0), epochs,
                        early_stopping)
    state["checkpoint"] = name
    state["model"] = _load_arrays(ckpt / "model.npz", model.variables, "model")
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    state["optimizer"] = _load_arrays(ckpt / "optimizer.npz", model.optimizer.variables,
                                      "optimizer")
    if (ckpt / "best.npz").exists() or "early_stopping" in state:  # saved after every
        # epoch with early stopping: its best weights (model.get_weights)
        state["best_weights"] = _load_arrays(ckpt / "best.npz", model.weights, "best-weights")
    if state.get("step"):
        state["metrics"] = _read_arrays(ckpt / METRICS, "metric")
    if (ckpt / TORCH_RNG).exists():  # written under torch; other backends ignore it
        state["torch_rng"] = _read_torch_rng(ckpt / TORCH_RNG)
    return state


def _read_state(path: Path, epoch: int, step: int, epochs, early_stopping) -> dict:
    """`state.json`: its epoch (and step) are the directory's; early stopping's counters
    are sane (absent inside the first epoch: nothing to restore yet)."""
    if not path.is_file():
        raise InputError(f"{path}: missing (checkpoint incomplete)")
    state = rf.read_json(path)
    got = rf.number(state, "epoch", path, lo=0 if step else 1, integer=True)
    got_step = rf.number(state, "step", path, lo=1, integer=True) if step else 0
    if (got, got_step) != (epoch, step):
        raise InputError(f"{rf.where(path, 'epoch')}: {got}, step {got_step}, but the "
                         f"directory is {path.parent.name}")
    if epochs is not None and (got > epochs or step and got >= epochs):
        raise InputError(f"{rf.where(path, 'epoch')}: {got}, but the run has {epochs} epochs")
    es = rf.field(state, "early_stopping", path, dict,
                  optional=not early_stopping or got == 0)
    if es is not None:
        for key in ("wait", "best_epoch"):
            rf.number(state, ("early_stopping", key), path, 0, integer=True)
        # After an epoch Keras' EarlyStopping holds a best value (null only before the
        # first); best_epoch counts from 0, wait = the epochs since it.
        rf.number(state, ("early_stopping", "best"), path)
        if es["best_epoch"] >= got:
            raise InputError(f"{rf.where(path, ('early_stopping', 'best_epoch'))}: "
                             f"{es['best_epoch']}, but the checkpoint is after epoch {got} "
                             "(best_epoch counts from 0)")
        if es["wait"] != got - 1 - es["best_epoch"]:
            raise InputError(f"{rf.where(path, ('early_stopping', 'wait'))}: {es['wait']}, "
                             f"but {got - 1 - es['best_epoch']} epochs followed the best "
                             f"(epoch {es['best_epoch'] + 1} of {got})")
    return {k: v for k, v in state.items() if k in ("epoch", "step", "early_stopping")}


def load_checkpoint(run_dir, model, epochs: int | None = None,
                    early_stopping: bool | None = None) -> dict | None:
    """Restore model and optimizer variables from the LATEST checkpoint; its state.

    Everything is read and validated (`read_checkpoint`) before any variable is
    assigned. Returns None when the run has no checkpoint yet. `state["best_weights"]`
    holds early stopping's best weights when they were saved.
    """
    state = read_checkpoint(run_dir, model, epochs, early_stopping)
    if state is None:
        return None
    for v, value in zip(model.variables, state.pop("model")):
        v.assign(value)
    for v, value in zip(model.optimizer.variables, state.pop("optimizer")):
        v.assign(value)
    rng = state.pop("torch_rng", None)
    if rng is not None and keras.backend.backend() == "torch":
        _set_torch_rng(rng)
        model._kemo_torch_rng = rng  # RunCheckpoint applies it again once fit has traced
    return state


def _set_torch_rng(rng: np.ndarray) -> None:
    import torch

    torch.set_rng_state(torch.from_numpy(rng.copy()))


def save_model_without_optimizer(model, path) -> Path:
    """`model.save(path)` with no optimizer state and no compile config: the finished
    run's `model.keras`, for inference (`load_model(path, compile=False)`).

    Keras 3 ignores `include_optimizer=False` for `.keras` files (it is read for `.h5`
    only), and its saver writes whatever `model.optimizer` holds: AdamW's two moments
    per weight, twice the model's size. So the optimizer is detached for the save and
    put back after.
    """
    path = Path(path)
    optimizer, compiled = getattr(model, "optimizer", None), getattr(model, "compiled", False)
    model.optimizer, model.compiled = None, False
    try:
        model.save(path)
    finally:
        model.optimizer, model.compiled = optimizer, compiled
    return path


def remove_checkpoints(run_dir) -> bool:
    """Delete `<run_dir>/checkpoints/` of a finished run (its `report.json` written:
    nothing resumes it, `model.keras` holds the weights). False, with a note, if it
    could not be removed; the run is complete either way."""
    root = _checkpoints(run_dir)
    if not root.exists():
        return True
    try:
        shutil.rmtree(root)
    except OSError as e:
        log.warning(f"note: could not delete {root} ({e.strerror or e}); the run is complete, "
                    "the folder can be deleted")
        return False
    return True


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
    """Saves a checkpoint at the end of every epoch (after early stopping updated) and,
    with `every_steps`, every that many steps inside an epoch; in a resumed run under
    torch, restores the checkpoint's dropout generator when training begins.

    `steps`: steps per epoch; `start`: (epoch, step) the fit resumes at, so the first
    epoch's batch numbers (which Keras counts from 0) count from `step`."""

    def __init__(self, run_dir, early_stopping: ResumableEarlyStopping | None = None,
                 every_steps: int = 0, steps: int = 0, start: tuple[int, int] = (0, 0)):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.early_stopping = early_stopping
        self.every_steps, self.steps, self.start = every_steps, steps, start
        self._epoch, self._offset = start[0], start[1]

    def on_train_begin(self, logs=None):
        # Resuming under torch: fit's first-call tracing drew from the global generator
        # after load_checkpoint set it; set it again before the first step.
        if not self.start[1]:
            self._restore_torch_rng()

    def _restore_torch_rng(self):
        rng = getattr(self.model, "_kemo_torch_rng", None)
        if rng is not None:
            _set_torch_rng(rng)
            del self.model._kemo_torch_rng

    def on_train_batch_begin(self, batch, logs=None):
        # Inside an epoch the uninterrupted run drew nothing between its steps, but this
        # fit's data loader drew its seed when the epoch began: set the generator after.
        if self.start[1]:
            self._restore_torch_rng()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._offset = self.start[1] if epoch == self.start[0] else 0

    def on_train_batch_end(self, batch, logs=None):
        done = self._offset + batch + 1  # steps of this epoch done
        if self.every_steps and done % self.every_steps == 0 and done < self.steps:
            state = {"epoch": self._epoch, "step": done}
            if self.early_stopping is not None and self._epoch > 0:
                state["early_stopping"] = self.early_stopping.state()
                state["best_weights"] = state["early_stopping"].pop("best_weights")
            save_checkpoint(self.run_dir, self.model, state)  # self.model: JAX state synced

    def on_epoch_end(self, epoch, logs=None):
        state = {"epoch": epoch + 1}
        if self.early_stopping is not None:
            state["early_stopping"] = self.early_stopping.state()
            state["best_weights"] = state["early_stopping"].pop("best_weights")
        save_checkpoint(self.run_dir, self.model, state)


class ResumeInsideEpoch(keras.callbacks.Callback):
    """A fit resumed from a checkpoint `step` steps into epoch `epoch` + 1: when that
    epoch begins, put back its training metrics (`metrics`, from the checkpoint) and end
    it after its remaining `steps - step` batches, so its logs, validation and
    checkpoint are the uninterrupted run's. Must come first among the callbacks: it
    clears the stop it requested before early stopping may request one.

    Example:
        callbacks.insert(0, ResumeInsideEpoch(state["epoch"], state["step"], steps,
                                              state["metrics"], run_dir))
    """

    def __init__(self, epoch: int, step: int, steps: int, metrics: list, path="",
                 batch=None):
        super().__init__()
        self.epoch, self.step, self.steps, self.metrics = epoch, step, steps, metrics
        self.batch = batch  # a training batch: builds the metrics where fit has not yet
        self.path = Path(path) / METRICS
        self._current, self._stopped = None, False

    def on_epoch_begin(self, epoch, logs=None):
        self._current = epoch
        if epoch == self.epoch:
            variables = self.model.metrics_variables  # built by now, except under TF:
            if len(variables) != len(self.metrics) and self.batch is not None:
                self.model._symbolic_build(data_batch=self.batch)  # as its first step would
                variables = self.model.metrics_variables
            for v, value in zip(variables, check_arrays(self.path, self.metrics, variables,
                                                        "metric")):
                v.assign(value)

    def on_train_batch_end(self, batch, logs=None):
        if self._current == self.epoch and batch + 1 == self.steps - self.step:
            self.model.stop_training, self._stopped = True, True

    def on_epoch_end(self, epoch, logs=None):
        if self._stopped:  # the shortened epoch ended; training goes on
            self.model.stop_training, self._stopped = False, False
