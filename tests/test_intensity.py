"""Track B: intensity labels 0..K (issue 35).

The official measure against scipy's pearsonr, constant predictions, cut points, the
heads and losses, bad intensity cells refused, and a tiny round trip on a Track B-shaped
folder with a language that has no train file (as Track B's `ron`).
"""

import csv
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import pearsonr

from conftest import ROOT, assert_refused, first_rows, run_cli, snapshot, write_tiny_config
from kemo.data.examples import Examples
from kemo.evaluation.intensity import confusion, language_pearson, pearson_r, tune_cut_points
from kemo.prediction.cut_points import CutPoints, apply_cut_points, untuned_cut_points

TRACK_B = ROOT.parent / "shared" / "data" / "brighter" / "track_b"
HEADER = ["id", "text", "anger", "fear", "joy", "sadness", "surprise"]


def _examples(labels, langs, mask=None, names=("anger", "joy")):
    labels = np.asarray(labels, "float32")
    mask = np.ones_like(labels) if mask is None else np.asarray(mask, "float32")
    n = len(labels)
    return Examples(np.array([str(i) for i in range(n)], object),
                    np.array(["t"] * n, object), np.array(langs, object), labels, mask,
                    tuple(names))


def test_pearson_matches_scipy_on_fixtures():
    rng = np.random.default_rng(0)
    for n in (3, 10, 200):
        gold = rng.integers(0, 4, n)
        gold[:2] = [0, 3]  # never constant
        pred = gold + rng.normal(0, 1.5, n)
        assert pearson_r(gold, pred) == pytest.approx(pearsonr(gold, pred)[0], abs=1e-9)
    assert pearson_r([0, 1, 2, 3], [3, 2, 1, 0]) == pytest.approx(-1.0)


def test_constant_predictions_or_gold_score_zero_not_nan():
    assert pearson_r([0, 1, 2, 3], [2, 2, 2, 2]) == 0.0
    assert pearson_r([1, 1, 1], [0.2, 0.5, 0.9]) == 0.0
    assert pearson_r([1], [1]) == 0.0


def test_language_pearson_is_mean_over_labels_then_languages_and_skips_unknown():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, (40, 2)).astype("float32")
    pred = labels + rng.normal(0, 1, (40, 2))
    langs = ["eng"] * 20 + ["deu"] * 20
    mask = np.ones((40, 2))
    mask[:20, 1] = 0  # eng: joy unknown
    pred[:20, 1] = 99.0  # would ruin joy's r if it counted
    got = language_pearson(_examples(labels, langs, mask), pred)
    eng = pearsonr(labels[:20, 0], pred[:20, 0])[0]
    deu = np.mean([pearsonr(labels[20:, j], pred[20:, j])[0] for j in range(2)])
    assert got["per_language"]["eng"]["r"] == pytest.approx(eng)
    assert set(got["per_language"]["eng"]["per_label"]) == {"anger"}
    assert got["per_language"]["deu"]["r"] == pytest.approx(deu)
    assert got["mean_r"] == pytest.approx((eng + deu) / 2)


def test_cut_points_round_untuned_and_tuning_never_hurts_validation():
    cuts = untuned_cut_points(2, 3)
    assert apply_cut_points(np.array([[0.49, 2.6], [1.5, 3.0]]), cuts).tolist() == [[0, 3], [2, 3]]
    rng = np.random.default_rng(2)
    gold = rng.integers(0, 4, (300, 2)).astype(float)
    scores = 0.3 * gold + rng.normal(0, 0.2, gold.shape)  # squashed: rounding is poor
    tuned = tune_cut_points(scores, gold, np.ones_like(gold), 3)
    assert (np.diff(tuned, axis=1) >= 0).all()
    for j in range(2):
        r_round = pearson_r(gold[:, j], apply_cut_points(scores, cuts)[:, j])
        r_tuned = pearson_r(gold[:, j], apply_cut_points(scores, tuned)[:, j])
        assert r_tuned > r_round + 0.05
    back = CutPoints.from_dict(json.loads(json.dumps(
        CutPoints(("a", "b"), tuned, 3).to_dict())))
    assert np.allclose(back.cuts, tuned, atol=1e-6) and back.label_names == ("a", "b")
    assert confusion([0, 1, 1, 3], [0, 2, 1, 3], 3) == [
        [1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 1]]


def test_heads_and_losses_serialise_and_the_ordinal_head_is_monotone():
    import keras

    from kemo.training.intensity_losses import CumulativeOrdinalLoss, MaskedIntensityMSE
    from kemo.models.intensity_heads import CumulativeLogits, ScaledSigmoid, intensity_scores

    x = np.random.default_rng(3).normal(size=(5, 8)).astype("float32")
    layer = CumulativeLogits(4, 3)
    logits = keras.ops.convert_to_numpy(layer(x))
    assert logits.shape == (5, 4, 3) and (np.diff(logits, axis=-1) < 0).all()
    clone = CumulativeLogits.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    scores = keras.ops.convert_to_numpy(intensity_scores(logits))
    assert scores.shape == (5, 4) and ((scores >= 0) & (scores <= 3)).all()
    assert ScaledSigmoid.from_config(ScaledSigmoid(3).get_config()).max_intensity == 3
    y = np.array([[2.0, -1.0]], "float32")  # second label unknown
    lg = np.array([[[1.0, 0.0, -1.0], [9.0, 9.0, 9.0]]], "float32")
    want = np.mean([np.log1p(np.exp(-1.0)), np.log(2.0), np.log1p(np.exp(-1.0))])
    loss = CumulativeOrdinalLoss(3)
    assert float(loss(y, lg)) == pytest.approx(want, rel=1e-5)
    assert CumulativeOrdinalLoss.from_config(loss.get_config()).max_intensity == 3
    mse = MaskedIntensityMSE(3)
    assert float(mse(y, np.array([[1.0, 0.0]], "float32"))) == pytest.approx(1 / 9, rel=1e-5)


def _track_b_folder(root: Path, sizes: dict) -> Path:
    """A Track B-shaped folder of the real files' first rows: {split: {lang: rows}}."""
    return first_rows(TRACK_B, root, sizes)


def _config(tmp_path: Path, languages, head="regression") -> Path:
    return write_tiny_config(tmp_path / "tiny_b.toml", {
        "languages": list(languages), "label_kind": "intensity", "max_intensity": 3,
        "val_fraction": 0.2, "length_buckets": [32]}, {"head": head})


@pytest.mark.parametrize("bad", ["4", "-1", "2.5", "high"])
def test_bad_intensity_is_refused_naming_file_row_and_column(tmp_path, bad):
    if not TRACK_B.is_dir():
        pytest.skip("Track B data not present")
    data = _track_b_folder(tmp_path / "data", {"train": {"eng": 30}, "dev": {"eng": 10}})
    path = data / "train" / "eng.csv"
    rows = list(csv.reader(open(path, encoding="utf-8", newline="")))
    assert rows[0] == HEADER
    rows[7][4] = bad  # data row 7, column joy
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    config = _config(tmp_path, ["eng"])
    before = snapshot(tmp_path)
    rc, out, err = run_cli(["train", "--config", config, "--data-dir", data,
                            "--run-dir", tmp_path / "run"])
    assert_refused(rc, out, err, [str(path), "row 7", "'joy'", "0..3", repr(bad)],
                   before, snapshot(tmp_path))


def test_intensity_needs_the_track_a_layout(tmp_path):
    config = _config(tmp_path, ["eng"])
    rc, out, err = run_cli(["train", "--config", config, "--set", 'data.layout="table"',
                            "--set", 'data.train_file="x.csv"', "--run-dir", tmp_path / "r"])
    assert_refused(rc, out, err, ["data.label_kind", "track_a"])


def test_tiny_round_trip_with_a_zero_shot_language(tmp_path):
    """train -> report (Pearson per language, ron without train scored on dev) ->
    the official Track B files, integers 0..3 with the continuous scores beside."""
    if not TRACK_B.is_dir():
        pytest.skip("Track B data not present")
    data = _track_b_folder(tmp_path / "data", {
        "train": {"eng": 160, "deu": 160}, "dev": {"eng": 40, "deu": 40, "ron": 40},
        "test": {"eng": 10, "ron": 10}})
    run = tmp_path / "run"
    rc, out, err = run_cli(["train", "--config", _config(tmp_path, ["eng", "deu", "ron"],
                                                          "ordinal"),
                            "--data-dir", data, "--run-dir", run, "--quiet"])
    assert rc == 0, err[-3000:]
    assert "Pearson r per language" in out and "ron" in out
    report = json.loads((run / "report.json").read_text())
    assert report["label_kind"] == "intensity"
    assert report["meta"]["zero_shot_languages"] == ["ron"]
    assert set(report["validation"]["integer"]["per_language"]) == {"eng", "deu"}
    dev = report["dev"]
    assert set(dev["integer"]["per_language"]) == {"eng", "deu", "ron"}
    means = [dev["integer"]["per_language"][lg]["r"] for lg in ("eng", "deu", "ron")]
    assert dev["integer"]["mean_r"] == pytest.approx(np.mean(means))
    assert sum(map(sum, dev["confusion"]["fear"])) == 120
    history = json.loads((run / "history.json").read_text())
    assert "val_language_mean_r" in history[0] and "val_pearson_r" in history[0]
    cuts = json.loads((run / "cut_points.json").read_text())
    assert cuts["tuned_on"] == "validation" and len(cuts["cut_points"]["anger"]) == 3
    pred = (run / "predictions" / "dev" / "pred_ron.csv").read_text().splitlines()
    assert pred[0] == "id,Anger,Disgust,Fear,Joy,Sadness,Surprise" and len(pred) == 41
    values = {int(v) for line in pred[1:] for v in line.split(",")[1:]}
    assert values <= {0, 1, 2, 3}
    with zipfile.ZipFile(run / "predictions" / "dev" / "submission.zip") as zf:
        assert sorted(zf.namelist()) == [f"track_b/pred_{x}.csv" for x in ("deu", "eng", "ron")]
    probs = (run / "predictions_dev.csv").read_text().splitlines()[0]
    assert "p_anger" in probs and probs.endswith(",surprise")
    # kemo predict: the test split in the official layout, ron (no train file) too
    rc, out, err = run_cli(["predict", run, "--split", "test", "--data-dir", data,
                            "--languages", "eng", "ron"])
    assert rc == 0, err[-3000:]
    with zipfile.ZipFile(run / "predictions" / "test" / "submission.zip") as zf:
        assert sorted(zf.namelist()) == ["track_b/pred_eng.csv", "track_b/pred_ron.csv"]
    test_pred = (run / "predictions" / "test" / "pred_ron.csv").read_text().splitlines()
    assert test_pred[0] == pred[0] and len(test_pred) == 11
    assert {int(v) for line in test_pred[1:] for v in line.split(",")[1:]} <= {0, 1, 2, 3}
    # kemo evaluate scores the run's dev files as the report does
    rc, out, err = run_cli(["evaluate", run / "predictions" / "dev", "--split", "dev",
                            "--data-dir", data, "--max-intensity", "3"])
    assert rc == 0, err[-3000:]
    line = next(x for x in out.splitlines() if x.startswith("Track B: mean"))
    assert float(line.rsplit(" ", 1)[1]) == pytest.approx(dev["integer"]["mean_r"], abs=1e-4)
    rc, out, err = run_cli(["predict", run, "--text", "I am furious", "--text", "lovely"])
    assert rc == 0 and "anger " in out and "(intensity 0..K (score))" in out, err
    _check_export(run, ["I am furious", "lovely", "so scared of the dark", ""], tmp_path)
    per_lang = dev["confusion_per_language"]
    assert set(per_lang) == {"eng", "deu", "ron"} and "disgust" not in per_lang["eng"]
    assert [sum(map(sum, per_lang[lg]["fear"])) for lg in ("eng", "deu", "ron")] == [40] * 3
    assert np.array([per_lang[lg]["fear"] for lg in per_lang]).sum(0).tolist() == \
        dev["confusion"]["fear"]
    # kemo report: Pearson r per emotion and language, confusion tables per language
    rc, out, err = run_cli(["report", run])
    assert rc == 0, err[-3000:]
    page = (run / "report" / "index.html").read_text()
    r = dev["integer"]["per_language"]["deu"]["per_label"]["joy"]
    assert "Pearson r per emotion and language" in page and f"{r:.3f}" in page
    assert "<h4>ron</h4>" in page and "ron, fear" in page and "gold \\ predicted" in page
    assert out.startswith("lang ") and "\nmean " in out and "index.html" in out


def _check_export(run: Path, texts, tmp_path: Path) -> None:
    """`kemo export` of an intensity run: export.json says the label kind, K and the cut
    points; the SavedModel, served by TensorFlow alone, returns the intensities and
    scores `kemo predict` gives."""
    import textwrap

    from kemo.prediction.predictor import load_predictor
    from kemo.serving.export import read_export_info
    from kemo.serving.tf_only import run_tf_only

    rc, out, err = run_cli(["export", run, "--no-benchmark"])
    assert rc == 0, err[-3000:]
    info = read_export_info(run / "export")
    cuts = json.loads((run / "cut_points.json").read_text())["cut_points"]
    assert info["label_kind"] == "intensity" and info["max_intensity"] == 3
    assert list(info["cut_points"]) == list(cuts) and "thresholds" not in info
    assert all(info["cut_points"][n] == pytest.approx(cuts[n]) for n in cuts)
    assert set(info["saved_model"]["outputs"]) == {"scores", "intensities"}
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    got = run_tf_only(textwrap.dedent(f"""
        import json
        texts = json.loads(open({str(tmp_path / "texts.json")!r}, encoding="utf-8").read())
        m = tf.saved_model.load({str(run / "export" / "saved_model")!r})
        got = m.signatures["serving_default"](texts=tf.constant(texts))
        print(json.dumps({{"scores": got["scores"].numpy().tolist(),
                          "intensities": got["intensities"].numpy().tolist(),
                          "blocked": blocked_modules_loaded()}}))
    """))
    scores, ints = load_predictor(run).predict(texts)
    assert got["blocked"] == []
    assert np.allclose(got["scores"], scores, atol=1e-4), (got["scores"], scores)
    names = info["label_names"]
    table = np.array([info["cut_points"][n] for n in names])  # labels x K
    near_cut = (np.abs(scores[:, :, None] - table[None]) < 1e-4).any(-1)
    assert ((np.array(got["intensities"]) == ints) | near_cut).all(), (got, ints)


def test_evaluate_refuses_an_intensity_beyond_k(tmp_path):
    gold, preds = tmp_path / "gold", tmp_path / "preds"
    gold.mkdir()
    preds.mkdir()
    (gold / "eng.csv").write_text("id,text,anger,joy\n1,a,0,3\n2,b,2,1\n3,c,1,0\n")
    (preds / "pred_eng.csv").write_text("id,Anger,Joy\n1,0,3\n2,2,4\n3,1,0\n")
    rc, out, err = run_cli(["evaluate", preds, "--gold", gold, "--max-intensity", "3"])
    assert_refused(rc, out, err, ["pred_eng.csv", "row 2", "'Joy'", "0..3", "'4'"])
    (preds / "pred_eng.csv").write_text("id,Anger,Joy\n1,0,3\n2,2,1\n3,1,1\n")
    rc, out, err = run_cli(["evaluate", preds, "--gold", gold, "--max-intensity", "3"])
    assert rc == 0, err
    want = np.mean([pearsonr([0, 2, 1], [0, 2, 1])[0], pearsonr([3, 1, 0], [3, 1, 1])[0]])
    assert f"{want:.4f}" in out


@pytest.mark.parametrize("cuts, needle", [
    ({"anger": [0.5, 1.5], "joy": [0.5, 1.5, 2.5]}, "cut_points"),      # K = 3 values
    ({"anger": [2.5, 1.5, 0.5], "joy": [0.5, 1.5, 2.5]}, "increasing"),
    ({"joy": [0.5, 1.5, 2.5], "anger": [0.5, 1.5, 2.5]}, "labels"),    # not the run's order
    ({"anger": [0.5, "x", 2.5], "joy": [0.5, 1.5, 2.5]}, "cut_points"),
])
def test_a_damaged_cut_points_file_is_refused(tmp_path, cuts, needle):
    from kemo.errors import InputError
    from kemo.prediction.trained_run import read_cut_points

    path = tmp_path / "cut_points.json"
    path.write_text(json.dumps({"max_intensity": 3, "tuned_on": "validation",
                                "cut_points": cuts}))
    with pytest.raises(InputError) as e:
        read_cut_points(path, ["anger", "joy"])
    assert str(path) in str(e.value) and needle in str(e.value)
    good = {"max_intensity": 3, "cut_points": {"anger": [0.2, 0.9, 2.0], "joy": [1, 1, 2]}}
    path.write_text(json.dumps(good))
    read = read_cut_points(path, ["anger", "joy"])
    assert read.apply(np.array([[0.95, 1.0]])).tolist() == [[2, 2]]
