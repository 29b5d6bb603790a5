"""NaN never becomes an answer (issue 20): a model file with a non-finite weight, a model
whose probabilities come out non-finite, a token cache holding ids outside the
vocabulary, and a training loss that turns NaN are each refused in one `error:` line
(exit 2) naming the model file and the first bad row, or the epoch and checkpoint."""

import json
import shutil

import numpy as np
import pytest

from _reliability import copy_run, hand_built_ensemble, kemo, refused
from conftest import ROOT


@pytest.fixture(scope="module")
def nan_run(tiny_run, tmp_path_factory):
    """The tiny run whose output bias is NaN."""
    import keras

    import kemo.prediction.trained_run  # noqa: F401  (registers the custom objects)

    run = copy_run(tiny_run, tmp_path_factory.mktemp("nan") / "run")
    model = keras.models.load_model(run / "model.keras", compile=False)
    bias = model.weights[-1]
    bias.assign(np.full(bias.shape, np.nan, "float32"))
    model.save(run / "model.keras")
    return run


def test_predict_refuses_a_model_with_a_nan_weight(nan_run, tmp_path):
    rc, out, err = kemo("predict", nan_run, "--text", "I am so happy")
    refused(rc, err, nan_run / "model.keras", "non-finite")
    assert "predicted" not in out


def test_explain_and_export_refuse_a_model_with_a_nan_weight(nan_run, tmp_path):
    rc, _, err = kemo("explain", nan_run, "--text", "I am so happy", "--out", tmp_path / "x")
    refused(rc, err, nan_run / "model.keras", "non-finite")
    assert not (tmp_path / "x").exists()
    rc, _, err = kemo("export", nan_run, "--out", tmp_path / "e", "--no-benchmark")
    refused(rc, err, nan_run / "model.keras", "non-finite")
    assert not (tmp_path / "e").exists()


def _nan_at_row(monkeypatch, row: int):
    import kemo.prediction.batches

    real = kemo.prediction.batches.predict_probs

    def fake(*args, **kwargs):
        probs = np.array(real(*args, **kwargs))
        probs[row, 0] = np.nan
        return probs

    monkeypatch.setattr(kemo.prediction.batches, "predict_probs", fake)


def test_predict_refuses_nan_probabilities_naming_file_and_row(tiny_run, tmp_path,
                                                               monkeypatch):
    _nan_at_row(monkeypatch, 1)
    texts = tmp_path / "texts.csv"
    texts.write_text("id,text\na,I am happy\nb,I am sad\nc,I am afraid\n")
    out = tmp_path / "out"
    rc, _, err = kemo("predict", tiny_run, texts, "--out", out)
    refused(rc, err, tiny_run / "model.keras", "non-finite", f"{texts}, row 2 (id 'b')")
    assert not out.exists() or not any(out.iterdir())


def test_explain_refuses_nan_probabilities(tiny_run, tmp_path, monkeypatch):
    _nan_at_row(monkeypatch, 0)
    rc, _, err = kemo("explain", tiny_run, "--text", "I am so happy", "--out", tmp_path / "x",
                      "--num-samples", "20")
    refused(rc, err, tiny_run / "model.keras", "non-finite", "text 'text_1'")


def test_ensemble_refuses_a_member_with_nan_probabilities(tiny_run, nan_run, tmp_path):
    ens = hand_built_ensemble(tiny_run, tmp_path / "ens", [tiny_run, nan_run])
    rc, out, err = kemo("predict", ens, "--text", "I am so happy")
    refused(rc, err, nan_run / "model.keras")
    assert "predicted" not in out


def test_predict_tokens_refuses_ids_outside_the_vocabulary(tiny_run, tmp_path, data_dir):
    """A cache whose split file and manifest were edited together (so every sha256
    matches) but whose ids lie outside the vocabulary: refused, not predicted as NaN."""
    from kemo.data.fingerprints import file_sha256

    cache = shutil.copytree(tiny_run / "tokens", tmp_path / "tokens")
    manifest = json.loads((cache / "manifest.json").read_text())
    f = cache / manifest["splits"]["dev"]["file"]
    with np.load(f) as z:
        fields = {k: z[k] for k in z.files}
    fields["values_token_ids"] = fields["values_token_ids"] + 10 ** 6
    np.savez(f, **fields)
    manifest["splits"]["dev"]["sha256"] = file_sha256(f)
    (cache / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "out"
    rc, _, err = kemo("predict", tiny_run, data_dir / "dev" / "eng.csv", "--tokens", cache,
                      "--out", out)
    refused(rc, err, f, "outside the vocabulary")
    assert not out.exists()


def test_nan_training_loss_stops_in_one_line(tmp_path, data_dir):
    run = tmp_path / "run"
    rc, _, err = kemo("train", "--config", ROOT / "configs" / "tiny.toml",
                      "--set", "train.epochs=2", "--set", "data.max_train_examples=300",
                      "--set", "model.sequence_length=32", "--set", "data.length_buckets=[32]",
                      "--set", "train.learning_rate=1e30", "--run-dir", run, "--quiet")
    line = refused(rc, err, "training loss became nan", "epoch 1", "train.learning_rate")
    assert "no checkpoint" in line
    assert not (run / "thresholds.json").exists()


def test_nan_loss_names_the_checkpoint_to_resume_from(tmp_path):
    """The line names the last checkpoint when an epoch ended before the NaN."""
    from kemo.errors import InputError
    from kemo.training.nan_guard import StopOnNanLoss

    (tmp_path / "checkpoints" / "epoch-0001").mkdir(parents=True)
    (tmp_path / "checkpoints" / "LATEST").write_text("epoch-0001")
    guard = StopOnNanLoss(tmp_path, 0.1)
    guard.on_epoch_begin(1)
    guard.on_train_batch_end(0, {"loss": 0.5})
    with pytest.raises(InputError) as e:
        guard.on_train_batch_end(4, {"loss": float("inf")})
    assert "batch 5 of epoch 2" in str(e.value)
    assert str(tmp_path / "checkpoints" / "epoch-0001") in str(e.value)
    assert f"--resume {tmp_path}" in str(e.value)
