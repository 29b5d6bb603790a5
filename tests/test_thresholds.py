"""Per-label threshold search and classification reports, against brute force / sklearn."""

import json

import numpy as np
import pytest
from sklearn.metrics import classification_report as sk_report
from sklearn.metrics import f1_score, precision_recall_fscore_support

from kemo.evaluation.classification_scores import classification_report
from kemo.evaluation.result_text import format_report
from kemo.prediction.thresholds import ThresholdSearch, best_f1_threshold

NAMES = ("anger", "disgust", "fear", "joy", "sadness")


def brute_force_best_f1(y, probs):
    best = 0.0
    for t in np.unique(probs):
        best = max(best, f1_score(y, (probs >= t).astype(int), zero_division=0))
    return best


def make_probs(seed, n=120, c=5, rate=0.3, ties=False):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, c)) < rate).astype(int)
    probs = np.clip(0.35 * y + rng.random((n, c)) * 0.7, 0, 1).astype("float32")
    if ties:
        probs = np.round(probs, 1).astype("float32")
    return y, probs


# ---------------------------------------------------------------- best_f1_threshold

@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ties", [False, True])
def test_best_f1_threshold_is_optimal(seed, ties):
    y, probs = make_probs(seed, n=80, c=1, rate=[0.05, 0.2, 0.5, 0.8, 0.3, 0.1][seed], ties=ties)
    y, probs = y[:, 0], probs[:, 0]
    if y.sum() == 0:
        y[0] = 1
    t, f1 = best_f1_threshold(y, probs)
    ref = brute_force_best_f1(y, probs)
    np.testing.assert_allclose(f1, ref, rtol=1e-9, atol=1e-12)
    # the reported F1 is what the threshold actually achieves (decision: prob >= t)
    achieved = f1_score(y, (probs >= np.float32(t)).astype(int), zero_division=0)
    np.testing.assert_allclose(achieved, f1, rtol=1e-9, atol=1e-12)
    assert t in set(probs.astype("float64").tolist())


def test_best_f1_threshold_no_positives_and_empty():
    assert best_f1_threshold(np.zeros(10, int), np.linspace(0, 1, 10)) == (0.5, 0.0)
    assert best_f1_threshold(np.zeros(0, int), np.zeros(0)) == (0.5, 0.0)
    assert best_f1_threshold(np.zeros(3, int), np.ones(3), default=0.7) == (0.7, 0.0)


def test_best_f1_threshold_separable():
    y = np.array([0, 0, 0, 1, 1])
    probs = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    t, f1 = best_f1_threshold(y, probs)
    assert f1 == 1.0 and 0.3 < t <= 0.8


# ---------------------------------------------------------------- ThresholdSearch

def test_threshold_search_fit_apply_save_load(tmp_path):
    y, probs = make_probs(0)
    search = ThresholdSearch().fit(probs, y, np.ones_like(probs), NAMES)
    assert search.label_names == list(NAMES)
    assert len(search.thresholds) == len(search.val_f1) == 5
    for j in range(5):
        t, f = best_f1_threshold(y[:, j], probs[:, j])
        assert search.thresholds[j] == t and search.val_f1[j] == f
    dec = search.apply(probs)
    assert dec.dtype == np.int32 and dec.shape == probs.shape
    np.testing.assert_array_equal(dec, (probs >= np.array(search.thresholds, "float32")).astype(int))
    for j in range(5):
        np.testing.assert_allclose(f1_score(y[:, j], dec[:, j]), search.val_f1[j], rtol=1e-9)

    path = tmp_path / "thresholds.json"
    search.save(path)
    d = json.loads(path.read_text())
    assert d["label_names"] == list(NAMES) and d["thresholds"] == search.thresholds
    back = ThresholdSearch.load(path)
    assert back == search
    np.testing.assert_array_equal(back.apply(probs), dec)


def test_threshold_search_unfitted_uses_default():
    _, probs = make_probs(1)
    np.testing.assert_array_equal(ThresholdSearch().apply(probs), (probs >= 0.5).astype(int))


def test_threshold_search_no_positive_label_falls_back():
    y, probs = make_probs(2)
    y[:, 3] = 0
    search = ThresholdSearch().fit(probs, y, np.ones_like(probs), NAMES)
    assert search.thresholds[3] == 0.5 and search.val_f1[3] == 0.0
    assert all(search.thresholds[j] != 0.5 for j in (0, 1, 2, 4))


def test_threshold_search_respects_mask():
    y, probs = make_probs(3)
    mask = (np.random.default_rng(3).random(y.shape) > 0.3).astype("float32")
    mask[:, 4] = 0  # never known -> default
    # scramble labels of unknown cells: they must not matter
    y_bad = np.where(mask > 0, y, 1 - y)
    search = ThresholdSearch().fit(probs, y_bad, mask, NAMES)
    for j in range(4):
        k = mask[:, j] > 0
        t, f = best_f1_threshold(y[k, j], probs[k, j])
        assert search.thresholds[j] == t and search.val_f1[j] == f
    assert search.thresholds[4] == 0.5 and search.val_f1[4] == 0.0


# ---------------------------------------------------------------- classification_report

def _decisions(seed, n=150, c=5):
    y, probs = make_probs(seed, n=n, c=c)
    return y, (probs >= 0.5).astype(int)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_report_no_mask_equals_sklearn(seed):
    y, d = _decisions(seed)
    d[:3] = 0  # some rows with no prediction (samples average zero_division)
    y[3] = 0
    rep = classification_report(y, d, np.ones_like(y), NAMES)
    sk = sk_report(y, d, target_names=list(NAMES), output_dict=True, zero_division=0)
    assert rep["n"] == len(y)
    assert list(rep["per_label"]) == list(NAMES)
    for name in NAMES:
        for key, sk_key in (("precision", "precision"), ("recall", "recall"),
                            ("f1", "f1-score"), ("support", "support")):
            np.testing.assert_allclose(rep["per_label"][name][key], sk[name][sk_key], rtol=1e-12)
    for avg in ("macro", "micro", "weighted", "samples"):
        for key, sk_key in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
            np.testing.assert_allclose(rep[avg][key], sk[f"{avg} avg"][sk_key], rtol=1e-12,
                                       err_msg=f"{avg} {key}")
    text = format_report(rep, "title")
    assert text.splitlines()[0] == "title" and "macro avg" in text and "anger" in text


@pytest.mark.parametrize("seed", [3, 4])
def test_report_masked_per_label_equals_sklearn_binary_on_known_rows(seed):
    y, d = _decisions(seed)
    rng = np.random.default_rng(seed)
    mask = (rng.random(y.shape) > 0.25).astype("float32")
    mask[:, 1] = 0  # disgust never known -> left out
    y_scrambled = np.where(mask > 0, y, 1)  # values under the mask must not matter
    rep = classification_report(y_scrambled, d, mask, NAMES)
    assert list(rep["per_label"]) == ["anger", "fear", "joy", "sadness"]
    f1s, supports = [], []
    for j, name in enumerate(NAMES):
        if name == "disgust":
            continue
        k = mask[:, j] > 0
        p, r, f, _ = precision_recall_fscore_support(y[k, j], d[k, j], average="binary",
                                                     zero_division=0)
        got = rep["per_label"][name]
        np.testing.assert_allclose([got["precision"], got["recall"], got["f1"]], [p, r, f],
                                   rtol=1e-12)
        assert got["support"] == int(y[k, j].sum())
        f1s.append(f)
        supports.append(y[k, j].sum())
    np.testing.assert_allclose(rep["macro"]["f1"], np.mean(f1s), rtol=1e-12)
    np.testing.assert_allclose(rep["weighted"]["f1"],
                               np.average(f1s, weights=supports), rtol=1e-12)
    # micro: all known cells pooled
    cols = [0, 2, 3, 4]
    known = mask[:, cols] > 0
    p, r, f, _ = precision_recall_fscore_support(y[:, cols][known], d[:, cols][known],
                                                 average="binary", zero_division=0)
    np.testing.assert_allclose([rep["micro"]["precision"], rep["micro"]["recall"],
                                rep["micro"]["f1"]], [p, r, f], rtol=1e-12)
    # samples: per row over its known labels
    fs = []
    for i in range(len(y)):
        k = known[i]
        yt, dt = y[i, cols][k], d[i, cols][k]
        denom = yt.sum() + dt.sum()
        fs.append(2 * (yt * dt).sum() / denom if denom else 0.0)
    np.testing.assert_allclose(rep["samples"]["f1"], np.mean(fs), rtol=1e-12)


def test_report_mask_with_full_rows_matches_unmasked_subset():
    # a label known nowhere is dropped; with all other cells known the sklearn path is used
    y, d = _decisions(5)
    mask = np.ones_like(y, dtype="float32")
    mask[:, 1] = 0
    rep = classification_report(y, d, mask, NAMES)
    cols = [0, 2, 3, 4]
    ref = classification_report(y[:, cols], d[:, cols], np.ones((len(y), 4)),
                                [NAMES[j] for j in cols])
    assert rep == ref


def test_report_empty():
    rep = classification_report(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3)), NAMES[:3])
    assert rep == {"n": 0, "per_label": {}}
    rep = classification_report(np.zeros((4, 3)), np.zeros((4, 3)), np.zeros((4, 3)), NAMES[:3])
    assert rep["per_label"] == {}
