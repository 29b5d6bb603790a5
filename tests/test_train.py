"""End-to-end: the train entry point on real eng data, both backends; run dir contents."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from conftest import ROOT, TINY_OVERRIDES


def test_tiny_run_writes_everything(tiny_run):
    for name in ("config.toml", "history.csv", "history.json", "label_distribution.json",
                 "thresholds.json", "report.json", "model.keras", "preprocessor",
                 "predictions_dev.csv"):
        assert (tiny_run / name).exists(), name
    history = json.loads((tiny_run / "history.json").read_text())
    assert [e["epoch"] for e in history] == [1, 2]
    labels = ["anger", "fear", "joy", "sadness", "surprise"]  # eng has no disgust
    for key in ["loss", "val_loss", "macro_f1", "val_macro_f1"] + [f"loss_{n}" for n in labels]:
        assert all(np.isfinite(e[key]) for e in history), key
    report = json.loads((tiny_run / "report.json").read_text())
    for split in ("validation", "dev"):
        for key in ("threshold_0.5", "tuned_thresholds"):
            overall = report[split][key]["overall"]
            assert list(overall["per_label"]) == labels
            for avg in ("macro", "micro", "weighted", "samples"):
                assert 0.0 <= overall[avg]["f1"] <= 1.0
            assert list(report[split][key]["per_language"]) == ["eng"]
    assert report["dev"]["threshold_0.5"]["overall"]["n"] == 115
    thresholds = json.loads((tiny_run / "thresholds.json").read_text())
    assert thresholds["label_names"] == labels and len(thresholds["thresholds"]) == 5


def test_dev_predictions_in_the_official_layout_score_as_reported(tiny_run, data_dir,
                                                                   tmp_path):
    """`kemo evaluate <run>/predictions/dev --split dev` scores the run's own dev
    decisions (no predicting again) to report.json's macro-F1 of how the run decides;
    probs_<lang>.csv and predictions_dev.csv hold the same probabilities."""
    import pandas as pd
    from conftest import run_cli

    report = json.loads((tiny_run / "report.json").read_text())
    assert "thresholds" not in report["meta"]  # thresholds.json holds them
    dev = tiny_run / "predictions" / "dev"
    pred = pd.read_csv(dev / "pred_eng.csv", dtype={"id": str})
    assert list(pred.columns) == ["id", "Anger", "Fear", "Joy", "Sadness", "Surprise"]
    old = pd.read_csv(tiny_run / "predictions_dev.csv", dtype={"id": str})
    assert pred["id"].tolist() == old["id"].tolist()
    assert (pred.drop(columns="id").to_numpy()
            == old[["anger", "fear", "joy", "sadness", "surprise"]].to_numpy()).all()
    probs = pd.read_csv(dev / "probs_eng.csv", dtype={"id": str})
    assert list(probs.columns) == ["id"] + [c for c in old.columns if c.startswith("p_")]
    np.testing.assert_allclose(probs.drop(columns="id").to_numpy(),
                               old[list(probs.columns[1:])].to_numpy(), atol=1.5e-6)
    code, out, err = run_cli(["evaluate", dev, "--split", "dev", "--data-dir", data_dir,
                              "--json", tmp_path / "scores.json"])
    assert code == 0, err
    scores = json.loads((tmp_path / "scores.json").read_text())
    decides = report["meta"]["decides_with"]
    assert decides == "tuned_thresholds"
    assert scores["overall"]["macro_f1"] == pytest.approx(
        report["dev"][decides]["mean_over_languages"]["macro_f1"], abs=1e-9)
    assert scores["overall"]["macro_f1"] == pytest.approx(
        report["dev"][decides]["overall"]["macro"]["f1"], abs=1e-9)


def test_saved_model_reloads_and_predicts_identically(tiny_run):
    from kemo.prediction.trained_run import load_run
    from kemo.prediction.batches import predict_probs
    from kemo.data.pipeline import tokenize

    run = load_run(tiny_run)
    # model.keras does not keep fused attention: load_run applies it from the config.
    assert run.config.model.fused_attention
    mhas = [layer for layer in run.model._flatten_layers()
            if isinstance(layer, keras.layers.MultiHeadAttention)]
    assert mhas and all(m._dropout == 0.0 for m in mhas)
    texts = ["I am so happy today!", "This is terrifying.", ""]
    arrays = tokenize(texts, run.preprocessor)
    again = load_run(tiny_run)
    np.testing.assert_allclose(predict_probs(run.model, arrays, 8),
                               predict_probs(again.model, arrays, 8), atol=1e-7)


def test_thresholds_fitted_on_validation_not_dev(tiny_run):
    """Thresholds come from the validation split: re-fitting on it reproduces them."""
    from kemo.config import load_config
    from kemo.prediction.trained_run import load_run
    from kemo.prediction.thresholds import ThresholdSearch
    from kemo.data.splits import load_data

    run = load_run(tiny_run)
    cfg = load_config(tiny_run / "config.toml")
    splits = load_data(cfg, os.environ.get("KEMO_DATA_DIR", ROOT.parent / "shared/data/brighter/track_a"))
    assert not set(splits.val.ids) & set(splits.dev.ids)
    probs = run.predict_probs(splits.val.texts)
    refit = ThresholdSearch().fit(probs, splits.val.labels, splits.val.mask, splits.val.label_names)
    np.testing.assert_allclose(refit.thresholds, run.thresholds.thresholds, atol=1e-5)


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_train_entry_point(backend, data_dir, tmp_path):
    run_dir = tmp_path / "run"
    sets = [a for o in TINY_OVERRIDES + ["train.epochs=1", "data.max_train_examples=300"]
            for a in ("--set", o)]
    env = {**os.environ, "KEMO_DATA_DIR": str(data_dir)}
    proc = subprocess.run(
        [sys.executable, "scripts/train.py", "--backend", backend, "--config",
         "configs/tiny.toml", "--run-dir", str(run_dir), *sets],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "label distribution" in proc.stdout and "dev, thresholds tuned on validation" in proc.stdout
    report = json.loads((run_dir / "report.json").read_text())
    assert report["meta"]["backend"] == backend
    assert 0.0 <= report["dev"]["tuned_thresholds"]["overall"]["macro"]["f1"] <= 1.0
