"""The CLI under every Keras backend it offers, each in its own process.

Keras reads `KERAS_BACKEND` once, at import, so each backend runs the real `kemo`
command as a subprocess (the rest of the suite runs JAX in-process). For torch (CPU)
and tensorflow: the tiny config trains one epoch on a small cap, `kemo predict` reloads
the run's `model.keras` in a new process and must give the probabilities training wrote
(`predictions_dev.csv`), and `kemo export` writes the SavedModel under tensorflow; under
torch it refuses in one line (Keras writes a SavedModel from torch only through
torch_xla) and the same run, whose model.keras does not depend on the backend, exports
under jax. Each SavedModel, served by TensorFlow alone, must give the run's
probabilities. A checkpoint round trip (save, load into a fresh model, one more step)
runs under each backend too, since `--resume` depends on it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import NO_TORCH, ROOT
from kemo.cli import BACKENDS, main

# jax: the rest of the suite. torch is an optional extra (README: PyTorch's CPU build,
# then `.[torch]`); without it its cases are skipped, saying so (CI installs it).
OTHER_BACKENDS = [pytest.param(b, marks=pytest.mark.skipif(
    importlib.util.find_spec(b) is None,
    reason=NO_TORCH if b == "torch" else f"{b} is not installed"))
    for b in BACKENDS if b != "jax"]
OVERRIDES = ["train.epochs=1", "data.max_train_examples=160", "model.sequence_length=32",
             "data.length_buckets=[16]", "model.fused_attention=true",
             "train.learning_rate=1e-3"]
EXPORTS_UNDER = {"torch": "jax", "tensorflow": "tensorflow"}
TIMEOUT = 600


def kemo(backend: str, *args, data_dir=None) -> subprocess.CompletedProcess:
    """`kemo <command> --backend <backend> ...` in a fresh Python process."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("KERAS_BACKEND", None)  # --backend alone decides
    if data_dir is not None:
        env["KEMO_DATA_DIR"] = str(data_dir)
    command, *rest = args
    return subprocess.run([sys.executable, "-m", "kemo.cli", command, "--backend", backend,
                           *rest], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)


def _ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-4000:])
    return proc


def _probs(path, label_names) -> np.ndarray:
    return pd.read_csv(path)[[f"p_{n}" for n in label_names]].to_numpy()


@pytest.fixture(scope="module", params=OTHER_BACKENDS)
def backend_run(request, data_dir, tmp_path_factory):
    """(backend, run_dir): the tiny config trained under `backend`, its dev split
    predicted by a second process (so from the reloaded model.keras)."""
    backend = request.param
    run_dir = tmp_path_factory.mktemp(f"backend_{backend}") / "run"
    sets = [a for o in OVERRIDES for a in ("--set", o)]
    _ok(kemo(backend, "train", "--config", "configs/tiny.toml", "--run-dir", str(run_dir),
             "--quiet", *sets, data_dir=data_dir))
    _ok(kemo(backend, "predict", str(run_dir), "--split", "dev", "--out",
             str(run_dir / "reloaded"), data_dir=data_dir))
    return backend, run_dir


def test_trains_and_writes_every_run_file(backend_run):
    backend, run_dir = backend_run
    report = json.loads((run_dir / "report.json").read_text())
    assert report["meta"]["backend"] == backend
    history = json.loads((run_dir / "history.json").read_text())
    assert [e["epoch"] for e in history] == [1]
    assert all(isinstance(v, float) and np.isfinite(v)
               for v in history[0].values() if not isinstance(v, int))
    assert {"loss", "val_loss", "macro_f1", "val_macro_f1"} <= set(history[0])
    assert (run_dir / "model.keras").is_file() and (run_dir / "preprocessor").is_dir()


def test_reloaded_model_predicts_what_training_wrote(backend_run):
    """predict (a new process, model.keras reloaded) == the trained model's own
    probabilities (predictions_dev.csv, written before model.keras)."""
    _, run_dir = backend_run
    labels = json.loads((run_dir / "thresholds.json").read_text())["label_names"]
    trained = pd.read_csv(run_dir / "predictions_dev.csv")
    reloaded = pd.read_csv(run_dir / "reloaded" / "probs_eng.csv")
    assert trained["id"].tolist() == reloaded["id"].tolist()
    a, b = _probs(run_dir / "predictions_dev.csv", labels), \
        _probs(run_dir / "reloaded" / "probs_eng.csv", labels)
    assert np.ptp(a, axis=0).max() > 1e-3  # the outputs depend on the text
    assert np.abs(a - b).max() <= 2e-6  # both files round to 6 decimals


def test_export_gives_the_runs_probabilities(backend_run, data_dir, tmp_path):
    from conftest import serve_saved_model

    backend, run_dir = backend_run
    out = tmp_path / "export"
    if backend == "torch":
        refused = kemo("torch", "export", str(run_dir), "--out", str(out), "--no-benchmark")
        assert refused.returncode == 2
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: kemo export: the SavedModel "
                                                       "export needs the jax or tensorflow")
        assert "--backend jax" in lines[0] and not out.exists()
    _ok(kemo(EXPORTS_UNDER[backend], "export", str(run_dir), "--out", str(out),
             "--no-benchmark"))
    info = json.loads((out / "export.json").read_text())
    assert info["backend"] == EXPORTS_UNDER[backend]
    texts = pd.read_csv(data_dir / "dev" / "eng.csv")["text"].astype(str).tolist()
    result = serve_saved_model(out / "saved_model", texts, tmp_path)
    assert result["blocked"] == []
    expected = _probs(run_dir / "reloaded" / "probs_eng.csv", info["label_names"])
    served = np.asarray(result["probs"])
    assert served.shape == expected.shape
    assert np.abs(served - expected).max() <= 1e-5


def test_export_help_names_the_backends(capsys):
    with pytest.raises(SystemExit) as e:
        main(["export", "--help"])
    assert e.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "jax or tensorflow" in text and "torch cannot write the SavedModel" in text


_CHECKPOINT_ROUND_TRIP = r'''
import json, tempfile
import keras, keras_hub, numpy as np
from kemo.training.checkpoint import RunCheckpoint, load_checkpoint, save_checkpoint
from kemo.training.losses import FocalLoss
from kemo.training.metrics import LabelLoss, MacroF1
from kemo.models import build_classifier

def model():  # dropout on: the next step depends on the dropout generator's state
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(vocabulary_size=50, num_layers=1, num_heads=2,
                                             hidden_dim=8, intermediate_dim=16,
                                             max_sequence_length=8, dropout=0.3)
    m = build_classifier(backbone, num_labels=3, pooling="mean", dropout=0.3)
    loss = FocalLoss(gamma=2.0, alpha=[1.0, 2.0, 0.5])
    m.compile(optimizer=keras.optimizers.AdamW(1e-2), loss=loss,
              metrics=[MacroF1(3), LabelLoss(0, loss=loss, name="loss_a")])
    return m

def numpy(v):
    return keras.ops.convert_to_numpy(v)

rng = np.random.default_rng(0)
x = {"token_ids": rng.integers(0, 50, (4, 8)).astype("int32"),
     "segment_ids": np.zeros((4, 8), "int32"),
     "padding_mask": (np.arange(8)[None, :] < np.array([[8], [5], [3], [6]])).astype("int32")}
y = np.array([[1, 0, -1], [0, 1, 1], [1, 1, 0], [0, 0, -1]], "float32")
fit = dict(epochs=2, verbose=0, shuffle=False, batch_size=2)
a = model()
a.fit(x, y, **fit)
run_dir = tempfile.mkdtemp()
save_checkpoint(run_dir, a, {"epoch": 1})
ha = a.fit(x, y, **fit).history  # the uninterrupted run goes on
b = model()                      # a resumed run: fresh process state, then the checkpoint
state = load_checkpoint(run_dir, b, epochs=2)
hb = b.fit(x, y, **fit, callbacks=[RunCheckpoint(tempfile.mkdtemp())]).history
after = max(float(np.abs(numpy(u) - numpy(v)).max()) for u, v in zip(a.weights, b.weights))
print(json.dumps({"backend": keras.backend.backend(), "state": state,
                  "variables": len(b.variables) + len(b.optimizer.variables), "after": after,
                  "ha": {k: [float(e) for e in v] for k, v in ha.items()},
                  "hb": {k: [float(e) for e in v] for k, v in hb.items()}}))
'''


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_checkpoint_round_trip(backend, tmp_path):
    """Model, optimizer and dropout-generator state survive save/load: the resumed
    model's next steps (dropout on) are the uninterrupted model's."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = _ok(subprocess.run([sys.executable, "-c", _CHECKPOINT_ROUND_TRIP], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=TIMEOUT))
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["backend"] == backend
    assert result["state"] == {"epoch": 1, "checkpoint": "epoch-0001"}
    assert result["variables"] > 20
    assert result["ha"].keys() == result["hb"].keys() and "loss_a" in result["ha"]
    for key, values in result["ha"].items():
        np.testing.assert_allclose(result["hb"][key], values, atol=1e-6, err_msg=key)
    assert result["after"] <= 1e-6


def test_damaged_torch_generator_state_is_named(tmp_path):
    from kemo.training.checkpoint import TORCH_RNG, _read_torch_rng
    from kemo.errors import InputError

    path = tmp_path / TORCH_RNG
    path.write_bytes(b"not numpy")
    with pytest.raises(InputError, match=re.escape(f"{path}: cannot read the torch generator state")):
        _read_torch_rng(path)
    np.save(path, np.zeros(4, "float32"))
    with pytest.raises(InputError, match="1-D uint8 array"):
        _read_torch_rng(path)
    np.save(path, np.arange(8, dtype="uint8"))
    np.testing.assert_array_equal(_read_torch_rng(path), np.arange(8))
