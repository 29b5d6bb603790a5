"""One decision rule (`p >= t`: a tie is positive) and one untuned fallback, everywhere.

No model is trained: a `Run` whose `predict_probs` returns its own thresholds exactly
puts every decision on the tie.
"""

import io
import tokenize
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from kemo.prediction.thresholds import UNTUNED_THRESHOLD, ThresholdSearch, decide, tune_on_validation

NAMES = ["anger", "fear", "joy", "sadness", "surprise"]  # eng's labels
T = [0.25, 0.375, 0.5, 0.625, 0.8125]  # exact in float32 and float64


def tied_run(thresholds=T, per_language=None):
    """A `kemo.prediction.trained_run.Run` (no model) whose probabilities are its thresholds, exactly."""
    from kemo.config import load_config
    from kemo.prediction.trained_run import Run

    search = ThresholdSearch(list(thresholds), list(NAMES), per_language=per_language or {})
    run = Run(Path("tied"), load_config(ROOT / "configs" / "tiny.toml"), None, None, search)
    run.predict_probs = lambda texts, batch_size=64, rows=None, langs=None: np.tile(
        np.float32(search.thresholds or [search.default] * len(NAMES)), (len(texts), 1))
    return run


def below(t):
    return np.nextafter(np.float32(t), np.float32(0))


def test_decide_rule_tie_is_positive():
    assert decide(np.float32([0.5, below(0.5)]), 0.5).tolist() == [1, 0]
    assert decide(np.array([[0.3, 0.7]]), [0.3, 0.7001]).tolist() == [[1, 0]]


def test_run_decide_tie_is_positive_global_and_per_language():
    run = tied_run(per_language={"eng": [0.1] * 5})
    probs = np.float32([T, [below(t) for t in T]])
    assert run.decide(probs).tolist() == [[1] * 5, [0] * 5]
    assert run.decide(probs, ["hau", "hau"]).tolist() == [[1] * 5, [0] * 5]  # zero-shot: global
    assert run.decide(probs, ["eng", "eng"]).tolist() == [[1] * 5, [1] * 5]
    _, dec = run.predict(["a", "b"])
    assert dec.tolist() == [[1] * 5, [1] * 5]


def test_ensemble_decides_as_a_run():
    from kemo.prediction.ensemble_run import EnsembleRun

    ens = EnsembleRun(Path("e"), None, [], [], ThresholdSearch(list(T), list(NAMES)))
    assert ens.decide(np.float32([T])).tolist() == [[1] * 5]


def test_submission_files_write_ties_as_positive(data_dir, tmp_path):
    from kemo.prediction.input_files import predict_files, split_files

    out = predict_files(tied_run(), split_files(data_dir, "dev", ["eng"]), tmp_path)
    pred = pd.read_csv(tmp_path / "pred_eng.csv", dtype={"id": str})
    assert list(pred.columns) == ["id", "Anger", "Fear", "Joy", "Sadness", "Surprise"]
    assert (pred.drop(columns="id").to_numpy() == 1).all()
    probs = pd.read_csv(tmp_path / "probs_eng.csv")
    np.testing.assert_array_equal(probs[[f"p_{n}" for n in NAMES]].to_numpy()[0], T)
    assert out["zip"] is not None


def test_split_prediction_files_write_ties_as_positive(data_dir, tmp_path):
    from kemo.data.brighter import load_split
    from kemo.prediction.split_files import write_split_predictions, write_split_submission
    from kemo.evaluation.scoring import score_submission

    dev = load_split(data_dir, "dev", ["eng"])
    assert list(dev.label_names) == NAMES
    probs = np.tile(np.float32(T), (len(dev), 1))
    search = ThresholdSearch(list(T), list(NAMES))
    write_split_predictions(tmp_path / "p.csv", dev, probs, search)
    assert (pd.read_csv(tmp_path / "p.csv")[NAMES].to_numpy() == 1).all()
    write_split_submission(tmp_path / "dev", dev, probs, search)
    assert (pd.read_csv(tmp_path / "dev" / "pred_eng.csv").drop(columns="id") == 1).all().all()
    scores = score_submission(tmp_path / "dev", data_dir / "dev", ["eng"])
    assert scores["per_language"]["eng"]["rows"] == len(dev)  # the official layout scores


def test_full_report_untuned_setting_tie_is_positive(data_dir):
    from kemo.data.brighter import load_split
    from kemo.evaluation.classification_scores import full_report

    dev = load_split(data_dir, "dev", ["eng"])
    probs = np.full((len(dev), 5), UNTUNED_THRESHOLD, "float32")
    rep = full_report(dev, probs, ThresholdSearch.untuned(NAMES))
    recall = [v["recall"] for v in rep["threshold_0.5"]["overall"]["per_label"].values()]
    assert recall == [1.0] * 5


def test_training_metric_tie_is_positive():
    from kemo.training.metrics import MacroF1

    m = MacroF1(2)  # logit 0 is probability 0.5 exactly: the untuned threshold
    m.update_state(np.float32([[1, 0], [0, 1]]), np.float32([[0.0, -9], [-9, 0.0]]))
    assert float(keras.ops.convert_to_numpy(m.result())) == pytest.approx(1.0)
    again = MacroF1.from_config(m.get_config())
    assert again.threshold == UNTUNED_THRESHOLD and again.num_labels == 2
    m.reset_state()  # just below the threshold: negative (the test can fail)
    m.update_state(np.float32([[1, 0], [0, 1]]), np.float32([[-1e-3, -9], [-9, -1e-3]]))
    assert float(keras.ops.convert_to_numpy(m.result())) == 0.0


def test_explain_predicts_ties(monkeypatch):
    pytest.importorskip("lime")
    from kemo.explain import explain_text

    ex = explain_text(tied_run(), "I am so happy and so scared", num_samples=10, num_features=3)
    assert ex.predicted == NAMES and ex.thresholds == T
    ex = explain_text(tied_run(per_language={"eng": [0.9] * 5}), "so happy", num_samples=10,
                      lang="eng")
    assert ex.predicted == [] and ex.thresholds == [pytest.approx(0.9)] * 5


def test_untuned_fallback_is_one_value():
    from kemo.training.metrics import MacroF1
    from kemo.training.metrics import make_metrics

    untuned = ThresholdSearch.untuned(NAMES)
    assert untuned.thresholds == [UNTUNED_THRESHOLD] * 5 and untuned.label_names == NAMES
    assert ThresholdSearch().default == UNTUNED_THRESHOLD
    assert MacroF1(3).threshold == UNTUNED_THRESHOLD
    assert make_metrics(NAMES, None)[0].threshold == UNTUNED_THRESHOLD
    # an empty search decides at the fallback, as the untuned one does
    probs = np.float32([[0.5, 0.49, 0.51, 0.5, 0.0]])
    assert ThresholdSearch().apply(probs).tolist() == untuned.apply(probs).tolist() \
        == [[1, 0, 1, 1, 0]]
    rng = np.random.default_rng(0)
    val_probs = rng.random((40, 5)).astype("float32")

    class Val:
        labels = (rng.random((40, 5)) < 0.3).astype("float32")
        mask = np.ones((40, 5), "float32")
        langs = np.array(["eng"] * 40)
        label_names = tuple(NAMES)
    search, _ = tune_on_validation(val_probs, Val, tune=False)
    assert search.thresholds == untuned.thresholds


def test_no_other_module_writes_the_fallback_or_the_rule():
    """0.5 is written once (`UNTUNED_THRESHOLD`); no `> threshold` decision anywhere."""
    found = []
    for path in sorted((ROOT / "kemo").rglob("*.py")):
        src = path.read_text()
        for tok in tokenize.generate_tokens(io.StringIO(src).readline):
            line = tok.line.strip()
            if tok.type == tokenize.NUMBER and tok.string in ("0.5", ".5", "5e-1") \
                    and not line.startswith(("UNTUNED_THRESHOLD =", "ax.text(")) \
                    and "bbox_to_anchor" not in line and "time.sleep(" not in line:
                found.append(f"{path.name}:{tok.start[0]}: {line}")
            if tok.type == tokenize.NAME and tok.string == "greater" and "ops." in line:
                found.append(f"{path.name}:{tok.start[0]}: {line}")
    assert found == []
