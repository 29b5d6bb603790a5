"""Several languages: tempered language sampling, thresholds and early stopping for the
mean over languages of macro-F1 (the shared task's ranking number), and resume with the
new keys."""

import json
import signal
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import f1_score

from conftest import ROOT, stop_after_first_checkpoint
from kemo.data.pipeline import epoch_indices, language_shares, language_weights, sampling_weights
from kemo.prediction.thresholds import ThresholdSearch, best_f1_threshold, best_language_mean_threshold


def _langs(counts):
    return np.array([lang for lang, n in counts.items() for _ in range(n)])


def test_temperature_one_is_todays_order_exactly():
    rng = np.random.default_rng(1)
    langs = _langs({"eng": 300, "afr": 40, "hin": 90})
    labels = (rng.random((len(langs), 6)) < 0.2).astype("float32")
    mask = np.ones_like(labels)
    w = sampling_weights(labels, mask, 0.5)
    assert language_weights(langs, 1.0, w) is w
    assert language_weights(langs, 1.0, None) is None
    for epoch in range(3):
        np.testing.assert_array_equal(epoch_indices(len(langs), 7, epoch, w),
                                      epoch_indices(len(langs), 7, epoch,
                                                    language_weights(langs, 1.0, w)))


@pytest.mark.parametrize("temperature", [2.0, 5.0, 1000.0, 0.5])
def test_language_frequencies_follow_counts_to_the_power_one_over_t(temperature):
    counts = {"eng": 2000, "afr": 100, "hin": 600, "yor": 30}
    langs = _langs(counts)
    w = language_weights(langs, temperature)
    n = np.array(list(counts.values()), float)
    expected = n ** (1 / temperature) / (n ** (1 / temperature)).sum()
    shares = language_shares(langs, w)
    np.testing.assert_allclose([shares[k] for k in counts], expected, rtol=1e-9)
    draws = np.concatenate([epoch_indices(len(langs), 0, e, w) for e in range(40)])
    seen = np.array([np.mean(langs[draws] == k) for k in counts])
    np.testing.assert_allclose(seen, expected, atol=0.01)  # 109k draws
    if temperature == 1000.0:  # large T: close to uniform over languages
        np.testing.assert_allclose(seen, 0.25, atol=0.02)


def test_tempering_keeps_the_label_weighting_inside_each_language():
    rng = np.random.default_rng(3)
    langs = _langs({"eng": 500, "afr": 50})
    labels = (rng.random((len(langs), 6)) < 0.15).astype("float32")
    label_w = sampling_weights(labels, np.ones_like(labels), 1.0)
    w = language_weights(langs, 3.0, label_w)
    for lang in ("eng", "afr"):
        rows = langs == lang
        np.testing.assert_allclose(w[rows] / w[rows].sum(), label_w[rows] / label_w[rows].sum())
    assert abs(w.sum() - 1) < 1e-12


def _language_mean_macro_f1(y, probs, mask, langs, thresholds):
    scores = []
    for lang in dict.fromkeys(langs):
        rows = langs == lang
        cols = [j for j in range(y.shape[1]) if mask[rows, j].any()]
        scores.append(np.mean([f1_score(y[rows, j], probs[rows, j] >= thresholds[j],
                                        zero_division=0) for j in cols]))
    return float(np.mean(scores))


def test_language_mean_thresholds_maximise_the_mean_over_languages():
    rng = np.random.default_rng(0)
    langs = _langs({"eng": 120, "afr": 30, "hin": 60})
    y = (rng.random((len(langs), 3)) < 0.3).astype(int)
    # languages differ in how confident the model is: one pooled threshold fits none
    shift = np.where(langs == "afr", 0.3, np.where(langs == "hin", -0.2, 0.0))[:, None]
    probs = np.clip(0.35 * y + rng.random(y.shape) * 0.5 + shift, 0, 1).astype("float32")
    mask = np.ones_like(y, float)
    mask[langs == "afr", 2] = 0  # afr lacks label 2, as afr lacks surprise
    search = ThresholdSearch().fit(probs, y, mask, ["a", "b", "c"], langs=langs)
    got = _language_mean_macro_f1(y, probs, mask, langs, search.thresholds)
    pooled = ThresholdSearch().fit(probs, y, mask, ["a", "b", "c"])
    assert got >= _language_mean_macro_f1(y, probs, mask, langs, pooled.thresholds)
    for j in range(3):  # no other candidate of label j does better
        for t in np.unique(probs[mask[:, j] > 0, j]):
            other = list(search.thresholds)
            other[j] = float(t)
            assert _language_mean_macro_f1(y, probs, mask, langs, other) <= got + 1e-12
    assert got > _language_mean_macro_f1(y, probs, mask, langs, pooled.thresholds) + 1e-3


def test_one_language_keeps_the_pooled_threshold():
    rng = np.random.default_rng(2)
    y = (rng.random(200) < 0.3).astype(int)
    p = np.clip(0.3 * y + rng.random(200) * 0.7, 0, 1).astype("float32")
    langs = np.array(["eng"] * 200)
    t = best_language_mean_threshold(y, p, np.ones((200, 1)), langs, 0)
    assert f1_score(y, p >= t) == pytest.approx(best_f1_threshold(y, p)[1])
    a = ThresholdSearch().fit(p[:, None], y[:, None], np.ones((200, 1)), ["x"], langs=langs)
    b = ThresholdSearch().fit(p[:, None], y[:, None], np.ones((200, 1)), ["x"])
    assert a.thresholds == b.thresholds


# ------------------------------------------------------------- through training

SETS = ["train.epochs=3", "data.languages=eng,afr", "data.max_train_examples_per_language=300",
        "model.sequence_length=48", "data.length_buckets=[24]", "data.language_temperature=3.0",
        "train.early_stopping_patience=2", "data.val_fraction=0.2"]


def _train_cmd(run_dir, *extra):
    sets = [a for o in SETS for a in ("--set", o)]
    return [sys.executable, "scripts/train.py", "--backend", "jax", "--config",
            "configs/tiny.toml", "--run-dir", str(run_dir), *sets, *extra]


@pytest.fixture(scope="module")
def two_language_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("langs") / "full"
    proc = subprocess.run(_train_cmd(run), cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run, proc.stdout


def test_two_language_run_monitors_and_reports_the_language_mean(two_language_run):
    from kemo.training.validation_callback import LANGUAGE_MEAN_KEY

    run, out = two_language_run
    assert "rows per language and epoch, before and after sampling (language temperature 3.0)" in out
    history = json.loads((run / "history.json").read_text())
    assert all(LANGUAGE_MEAN_KEY in e for e in history)
    report = json.loads((run / "report.json").read_text())
    mean = report["dev"]["tuned_thresholds"]["mean_over_languages"]
    assert mean["languages"] == 2
    assert f"dev mean over 2 languages of macro-F1: {mean['macro_f1']:.4f}" in out
    # the epoch-end figure is the report's own number at 0.5, for the restored epoch
    val_mean = report["validation"]["threshold_0.5"]["mean_over_languages"]["macro_f1"]
    best = max(e[LANGUAGE_MEAN_KEY] for e in history)
    assert best == pytest.approx(val_mean, abs=1e-6)


def test_two_language_report_page_shows_the_monitored_mean(two_language_run, tmp_path):
    """Issue 31: the page's per-epoch table holds each epoch's monitored mean over
    languages (and the pooled number beside it), the dev mean before the pooled tables."""
    from kemo.evaluation.run_page import make_run_page

    run, _ = two_language_run
    page = make_run_page(run, out_dir=tmp_path / "report").path.read_text()
    history = json.loads((run / "history.json").read_text())
    table = page[page.index("<caption>Per epoch"):]
    table = table[:table.index("</table>")]
    assert "the run monitored macro-F1, validation, mean over languages" in table
    for e in history:
        assert f"<td>{e['val_language_mean_f1']:.4f}</td>" in table
        assert f"<td>{e['val_macro_f1']:.4f}</td>" in table
    dev = page[page.index("<h3>dev</h3>"):]
    assert dev.index("mean over 2 languages") < dev.index("dev, threshold 0.5, all rows")


def test_killed_run_with_the_new_keys_resumes_to_the_same_result(two_language_run, tmp_path):
    full, _ = two_language_run
    killed = tmp_path / "killed"
    stop_after_first_checkpoint(_train_cmd(killed, "--quiet"), killed, signal.SIGKILL)
    resumed = subprocess.run([sys.executable, "scripts/train.py", "--resume", str(killed),
                              "--quiet"], cwd=ROOT, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = json.loads((full / "history.json").read_text())
    b = json.loads((killed / "history.json").read_text())
    assert [e["epoch"] for e in a] == [e["epoch"] for e in b]
    for ea, eb in zip(a, b):
        for key in ea:
            assert abs(ea[key] - eb[key]) <= 1e-6, (ea["epoch"], key)
    ta = json.loads((full / "thresholds.json").read_text())["thresholds"]
    tb = json.loads((killed / "thresholds.json").read_text())["thresholds"]
    np.testing.assert_allclose(ta, tb, atol=1e-6)
