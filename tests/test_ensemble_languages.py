"""Ensembles of members trained on different languages and label sets (issue 23, part 4).

The session's tiny run is English only (5 labels: eng has no disgust). The second
member here is trained on eng + afr (6 labels: afr has disgust, no surprise) with at
most 600 rows per language: its English rows and validation split are the tiny run's
(the same seeded draws, English first), so English is served by both members and
Afrikaans by the second alone. Probabilities are checked by hand against the members'.
"""

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from kemo.cli import main
from conftest import ROOT, TINY_OVERRIDES, kemo_log

BOTH = ['data.languages=["eng", "afr"]', "data.max_train_examples=0",
        "data.max_train_examples_per_language=600"]


def stand_in(languages, labels):
    """What serving_weights and ensemble_data read of a member run."""
    return SimpleNamespace(config=SimpleNamespace(data=SimpleNamespace(languages=languages,
                                                                     layout="track_a")),
                           label_names=list(labels))


def test_serving_weights_average_only_the_members_trained_on_a_language():
    from kemo.prediction.ensemble_run import serving_weights

    names = ["anger", "disgust", "joy"]
    multi = stand_in(["eng", "afr", "deu"], names)
    eng_only = stand_in(["eng"], ["anger", "joy"])
    w = serving_weights([multi, eng_only], [0.25, 0.75], names, ["eng", "afr", "hau", None])
    assert w.shape == (4, 2, 3)
    np.testing.assert_allclose(w[0, :, 0], [0.25, 0.75])  # eng anger: both
    np.testing.assert_allclose(w[0, :, 1], [1.0, 0.0])  # eng disgust: only who predicts it
    np.testing.assert_allclose(w[1], [[1, 1, 1], [0, 0, 0]])  # afr: the multilingual one
    # hau: no member trained on it, no language: every member predicting the label
    for row in (2, 3):
        np.testing.assert_allclose(w[row, :, 0], [0.25, 0.75])
        np.testing.assert_allclose(w[row, :, 1], [1.0, 0.0])
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    # No languages: today's plain weighted mean wherever both predict the label.
    plain = serving_weights([multi, eng_only], [0.25, 0.75], names, None, 2)
    np.testing.assert_allclose(plain[:, :, 2], [[0.25, 0.75]] * 2)


@pytest.fixture(scope="module")
def eng_afr_run(data_dir, tmp_path_factory):
    from kemo.config import load_config
    from kemo.training import train

    cfg = load_config(ROOT / "configs" / "tiny.toml", TINY_OVERRIDES + BOTH)
    run_dir = tmp_path_factory.mktemp("runs") / "tiny-eng-afr"
    return train(cfg, data_dir=data_dir, run_dir=run_dir, verbose=0)["run_dir"]


@pytest.fixture(scope="module")
def mixed(tiny_run, eng_afr_run, data_dir, tmp_path_factory):
    from kemo.ensemble import build_ensemble
    from kemo.evaluation.ensemble_tables import format_ensemble_report

    out = tmp_path_factory.mktemp("ens") / "mixed"
    with kemo_log() as lines:
        report = build_ensemble([tiny_run, eng_afr_run], out, weights=[1, 3], data_dir=data_dir)
    # what `kemo ensemble` shows: the progress it logged, then the report it prints
    return out, report, lines + format_ensemble_report(report).splitlines()


def test_each_language_averages_only_its_members(mixed, tiny_run, eng_afr_run, data_dir):
    from kemo.data.brighter import load_split
    from kemo.prediction.predictor import load_predictor

    out, report, _ = mixed
    ens, eng, both = load_predictor(out), load_predictor(tiny_run), load_predictor(eng_afr_run)
    assert ens.label_names == ["anger", "disgust", "fear", "joy", "sadness", "surprise"]
    assert eng.label_names == ["anger", "fear", "joy", "sadness", "surprise"]
    dev = load_split(data_dir, "dev", ["eng", "afr"])
    pick = np.r_[np.flatnonzero(dev.langs == "eng")[:12], np.flatnonzero(dev.langs == "afr")[:12]]
    texts, langs = list(dev.texts[pick]), list(dev.langs[pick])
    probs = ens.predict_probs(texts, langs=langs)
    pe = eng.predict_probs(texts[:12])
    pb = both.predict_probs(texts)
    assert np.abs(pe - pb[:12, [0, 2, 3, 4, 5]]).max() > 1e-3  # two different models
    # eng: labels both predict are 1:3; disgust only the eng+afr member predicts
    np.testing.assert_allclose(probs[:12, [0, 2, 3, 4, 5]],
                               0.25 * pe + 0.75 * pb[:12, [0, 2, 3, 4, 5]], atol=1e-6)
    np.testing.assert_allclose(probs[:12, 1], pb[:12, 1], atol=1e-6)
    # afr: the English-only member was not trained on it and is left out
    np.testing.assert_allclose(probs[12:], pb[12:], atol=1e-6)
    # A text without a language: every member, as an export serves it
    plain = ens.predict_probs(texts[12:])
    np.testing.assert_allclose(plain[:, [0, 2, 3, 4, 5]],
                               0.25 * eng.predict_probs(texts[12:]) + 0.75 * pb[12:, [0, 2, 3, 4, 5]],
                               atol=1e-6)


def test_thresholds_report_and_who_served_which_language(mixed, tiny_run, eng_afr_run):
    from kemo.prediction.predictor import load_predictor

    out, report, lines = mixed
    meta = report["meta"]
    assert meta["served_by"] == {"eng": [str(tiny_run), str(eng_afr_run)],
                                 "afr": [str(eng_afr_run)]}
    text = "\n".join(lines)
    assert "languages served (validation rows), by members:" in text
    assert f"{tiny_run.name}, {eng_afr_run.name}: eng (90)" in text
    assert f"{eng_afr_run.name}: afr (" in text
    # Validation: the shared rows, the union of the labels, both languages.
    val = report["validation"]["tuned_thresholds"]["per_language"]
    assert set(val) == {"eng", "afr"} and val["eng"]["n"] == 90
    assert set(val["eng"]["per_label"]) == {"anger", "fear", "joy", "sadness", "surprise"}
    assert "disgust" in val["afr"]["per_label"] and "surprise" not in val["afr"]["per_label"]
    # Each member is reported on its own languages' rows, with its own labels.
    mine = report["members"][str(tiny_run)]["validation"]["tuned_thresholds"]
    assert set(mine["per_language"]) == {"eng"} and mine["overall"]["n"] == 90
    assert set(report["members"][str(eng_afr_run)]["dev"]["tuned_thresholds"][
        "per_language"]) == {"eng", "afr"}
    # The ensemble's config lists every member's languages; ensemble.json each member's.
    ens = load_predictor(out)
    assert list(ens.config.data.languages) == ["eng", "afr"]
    listed = json.loads((out / "ensemble.json").read_text())["members"]
    assert [m["languages"] for m in listed] == [["eng"], ["eng", "afr"]]
    # Thresholds are tuned on the ensemble's own averaged validation probabilities.
    written = pd.read_csv(out / "predictions_val.csv", dtype={"id": str})
    assert len(written) == report["meta"]["val_rows"] == 90 + val["afr"]["n"]


def test_predict_writes_each_language_and_export_keeps_working(mixed, data_dir, tmp_path):
    from conftest import serve_saved_model
    from kemo.serving.export import export_run
    from kemo.prediction.predictor import load_predictor

    out, report, _ = mixed
    preds = tmp_path / "preds"
    assert main(["predict", str(out), "--split", "dev", "--data-dir", str(data_dir),
                 "--out", str(preds)]) == 0
    assert (preds / "pred_eng.csv").read_text().splitlines()[0] == \
        "id,Anger,Fear,Joy,Sadness,Surprise"
    assert (preds / "pred_afr.csv").read_text().splitlines()[0] == \
        "id,Anger,Disgust,Fear,Joy,Sadness"
    # The files predicted now are the ones the ensemble wrote at build time (per language).
    written = pd.read_csv(out / "predictions_dev.csv", dtype={"id": str}).set_index("id")
    for lang in ("eng", "afr"):
        now = pd.read_csv(preds / f"probs_{lang}.csv", dtype={"id": str}).set_index("id")
        np.testing.assert_allclose(written.loc[now.index, now.columns].to_numpy(),
                                   now.to_numpy(), atol=2e-6)
    assert main(["evaluate", str(preds), "--gold", str(data_dir / "dev"),
                 "--json", str(tmp_path / "s.json")]) == 0
    scores = json.loads((tmp_path / "s.json").read_text())  # the official mean over languages
    decided = report["dev"][report["meta"]["decides_with"]]
    assert scores["overall"]["macro_f1"] == pytest.approx(
        decided["mean_over_languages"]["macro_f1"], abs=1e-6)
    for lang in ("eng", "afr"):
        assert scores["per_language"][lang]["macro_f1"] == pytest.approx(
            decided["per_language"][lang]["macro"]["f1"], abs=1e-6)

    info = export_run(out, tmp_path / "export", benchmark=False)
    assert info["ensemble"]["member_languages"] == [["eng"], ["eng", "afr"]]
    assert info["ensemble"]["member_labels"][0] == ["anger", "fear", "joy", "sadness", "surprise"]
    texts = ["I can't stop smiling today", "Ek is so kwaad vir hom!", "", "😀🎉"]
    run = load_predictor(out)
    probs, decisions = run.predict(texts)  # no language: every member, per label
    served = serve_saved_model(tmp_path / "export" / "saved_model", texts, tmp_path)
    assert np.abs(np.asarray(served["probs"]) - probs).max() <= 1e-5
    np.testing.assert_array_equal(np.asarray(served["decisions"]), decisions)


def test_languages_split_differently_share_the_rows_all_validated_on(tiny_run, data_dir):
    """Members of different languages whose splits of a shared language differ (another
    language order draws other rows) keep the rows every one of them validated on; a
    language they share no row of is refused; members of the same languages still must
    validate on the same rows."""
    from kemo.config import load_config
    from kemo.data.splits import load_data
    from kemo.errors import InputError
    from kemo.evaluation.ensemble_data import ensemble_data

    def member(overrides):
        cfg = load_config(ROOT / "configs" / "tiny.toml", TINY_OVERRIDES + overrides)
        names = load_data(cfg, data_dir).train.label_names
        return SimpleNamespace(config=cfg, label_names=list(names))

    eng = member([])
    afr_eng = member(['data.languages=["afr", "eng"]', "data.max_train_examples=0",
                      "data.max_train_examples_per_language=600"])
    paths = [ROOT / "a", ROOT / "b"]
    data = ensemble_data([eng, afr_eng], paths, data_dir)
    val_a = load_data(eng.config, data_dir).val
    val_b = load_data(afr_eng.config, data_dir).val
    shared = set(val_a.ids) & set(val_b.ids[val_b.langs == "eng"])
    assert 0 < len(shared) < len(val_a)  # the two splits of eng differ, and overlap
    assert set(data.val.ids[data.val.langs == "eng"]) == shared
    assert set(data.val.ids[data.val.langs == "afr"]) == set(val_b.ids[val_b.langs == "afr"])
    assert data.served_by == {"eng": [0, 1], "afr": [1]}
    assert any(n.startswith(f"eng: {len(shared)} validation rows shared by") for n in data.notes)

    other_seed = member(['data.languages=["afr", "eng"]', "data.max_train_examples=0",
                         "data.max_train_examples_per_language=20", "data.split_seed=3"])
    small = member(["data.max_train_examples=20"])
    with pytest.raises(InputError, match="share no validation row"):
        ensemble_data([small, other_seed], paths, data_dir)
    with pytest.raises(InputError, match="data.split_seed"):
        ensemble_data([eng, member(["data.split_seed=1"])], paths, data_dir)
