"""Checkpoints inside an epoch (`train.checkpoint_every_steps`), in-process on a small
Keras model: a fit stopped after a step checkpoint and resumed from it logs the
uninterrupted fit's history exactly; a damaged step checkpoint is one InputError.
(The CLI, SIGKILL and a real run: tests/test_resume.py.)"""

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from kemo.training.checkpoint import (
    ResumeInsideEpoch, RunCheckpoint, checkpoint_name, load_checkpoint, read_checkpoint,
)
from kemo.errors import InputError
from conftest import NO_TORCH, ROOT

STEPS, EPOCHS, BATCH = 8, 3, 4


def _batches(start_epoch=0, start_step=0):
    """The run's batches (a fixed order per epoch) from (start_epoch, start_step) on."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(STEPS * BATCH, 5)).astype("float32")
    y = (x[:, :2] > 0).astype("float32")
    for epoch in range(start_epoch, EPOCHS):
        order = np.random.default_rng(epoch).permutation(len(x))
        for step in range(start_step if epoch == start_epoch else 0, STEPS):
            idx = order[step * BATCH:(step + 1) * BATCH]
            yield x[idx], y[idx]


def _model():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dropout(0.3), keras.layers.Dense(2)])
    model.compile(keras.optimizers.AdamW(1e-2), keras.losses.BinaryCrossentropy(True),
                  metrics=[keras.metrics.BinaryAccuracy()])
    return model


class StopAt(keras.callbacks.Callback):
    """Raises once `epoch`, `step` (1-based steps done) is reached: a kill."""

    def __init__(self, epoch, step):
        super().__init__()
        self.at, self.epoch = (epoch, step), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch + 1) == self.at:
            raise RuntimeError("killed")


def _fit(model, data, callbacks, initial_epoch=0):
    history = keras.callbacks.History()
    model.fit(data, epochs=EPOCHS, steps_per_epoch=STEPS, initial_epoch=initial_epoch,
              callbacks=[*callbacks, history], verbose=0, shuffle=False)
    return history.history


HISTORY_TEST = "test_fit_resumed_from_a_step_checkpoint_logs_the_uninterrupted_history"


def test_fit_resumed_from_a_step_checkpoint_logs_the_uninterrupted_history(tmp_path):
    full = _fit(_model(), _batches(), [])

    killed = _model()
    with pytest.raises(RuntimeError, match="killed"):
        _fit(killed, _batches(), [RunCheckpoint(tmp_path, every_steps=3, steps=STEPS),
                                  StopAt(1, 5)])
    assert (tmp_path / "checkpoints" / "LATEST").read_text() == checkpoint_name(1, 3)

    resumed = _model()
    state = load_checkpoint(tmp_path, resumed, EPOCHS)
    assert (state["epoch"], state["step"]) == (1, 3)
    rest = _fit(resumed, _batches(1, 3), [
        ResumeInsideEpoch(1, 3, STEPS, state.pop("metrics"), tmp_path, next(_batches(1, 3))),
        RunCheckpoint(tmp_path, every_steps=3, steps=STEPS, start=(1, 3))], initial_epoch=1)
    assert list(rest) == list(full)
    for key in full:
        np.testing.assert_allclose(rest[key], full[key][1:], rtol=0, atol=1e-6, err_msg=key)
    assert (tmp_path / "checkpoints" / "LATEST").read_text() == checkpoint_name(3)


def test_damaged_step_checkpoint_is_one_input_error(tmp_path):
    model = _model()
    with pytest.raises(RuntimeError):
        _fit(model, _batches(), [RunCheckpoint(tmp_path, every_steps=2, steps=STEPS),
                                 StopAt(0, 3)])
    ck = tmp_path / "checkpoints" / checkpoint_name(0, 2)
    state = json.loads((ck / "state.json").read_text())
    assert state == {"epoch": 0, "step": 2}  # no early stopping state in the first epoch
    assert read_checkpoint(tmp_path, _model(), EPOCHS)["step"] == 2

    (ck / "state.json").write_text(json.dumps({"epoch": 0, "step": 4}))
    with pytest.raises(InputError, match="state.json.*step 4.*epoch-0000-step-000002"):
        read_checkpoint(tmp_path, _model(), EPOCHS)
    (ck / "state.json").write_text(json.dumps(state))
    (ck / "metrics.npz").unlink()
    with pytest.raises(InputError, match="metrics.npz: missing"):
        read_checkpoint(tmp_path, _model(), EPOCHS)

    # Metrics of another model (another metric count) fail when the epoch begins.
    fresh = _model()
    bad = ResumeInsideEpoch(0, 2, STEPS, [np.zeros((), "float32")], ck)
    with pytest.raises(InputError, match="metrics.npz: checkpoint holds 1 metric variables"):
        _fit(fresh, _batches(0, 2), [bad])


@pytest.mark.skipif(os.environ.get("KEMO_STEP_CHILD") == "1", reason="the child itself")
@pytest.mark.parametrize("backend", [  # 25 and 21 s on 2 cores
    "torch", pytest.param("tensorflow", marks=pytest.mark.slow)])
def test_the_resume_is_exact_under_the_other_backends(backend):
    """The history test again in a child on `backend`: torch draws dropout from its global
    generator (set at the first step, after the data loader drew its seed); TensorFlow
    builds the metrics only when its first step traces (built from a batch first)."""
    if importlib.util.find_spec(backend) is None:
        pytest.skip(NO_TORCH if backend == "torch" else f"{backend} is not installed")
    env = {**os.environ, "KERAS_BACKEND": backend, "KEMO_STEP_CHILD": "1"}
    child = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p",
                            "no:cacheprovider", f"{__file__}::{HISTORY_TEST}"], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=600)
    assert child.returncode == 0 and "1 passed" in child.stdout, child.stdout[-3000:]
