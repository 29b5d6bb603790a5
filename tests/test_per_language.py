"""Every language, per-language thresholds and per-language results (issue 13).

The end-to-end tests train one tiny run on all 28 languages through the CLI, on a
trimmed copy of the data (30 train, 6 dev, 6 test rows per language, in a tmp dir):
about a minute on 2 idle cores.
"""

import contextlib
import io
import json
import shutil
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from kemo.data.brighter import LABELS, LANGUAGES, Examples
from kemo.errors import InputError
from kemo.evaluation.classification_scores import (
    MEAN, classification_report, full_report, setting_report,
)
from kemo.evaluation.result_text import format_language_table
from kemo.prediction.thresholds import ThresholdSearch

TINY = str(ROOT / "configs" / "tiny.toml")
ALL = ["data.languages=all", "data.max_train_examples_per_language=12"]
SETTINGS = ("threshold_0.5", "tuned_thresholds", "per_language_thresholds")


def run_cli(argv) -> tuple[int, str, str]:
    """`kemo <argv>` in this process: (exit code, stdout, stderr)."""
    from kemo.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


# ------------------------------------------------------------ all-language loading

def test_all_languages_load_with_their_masks_and_a_seeded_cap(data_dir):
    from kemo.config import load_config
    from kemo.data.splits import load_data

    cfg = load_config(TINY, ALL)
    assert cfg.data.languages == list(LANGUAGES) and len(LANGUAGES) == 28
    splits = load_data(cfg, data_dir)
    rows = Counter(np.concatenate([splits.train.langs, splits.val.langs]).tolist())
    assert set(rows) == set(LANGUAGES) and set(rows.values()) == {12}  # every file has > 12
    assert set(splits.dev.langs) == set(LANGUAGES)
    assert splits.train.label_names == LABELS
    disgust, surprise = LABELS.index("disgust"), LABELS.index("surprise")
    for ex in (splits.train, splits.val, splits.dev):
        eng, afr = ex.langs == "eng", ex.langs == "afr"
        assert eng.any() and afr.any()
        assert (ex.mask[eng, disgust] == 0).all() and (ex.mask[afr, surprise] == 0).all()
        assert (np.delete(ex.mask[eng], disgust, axis=1) == 1).all()
        assert (np.delete(ex.mask[afr], surprise, axis=1) == 1).all()
        assert (ex.y[eng, disgust] == -1).all()  # unknown: the loss skips it
    # Seeded: the same rows again; another split seed draws others.
    again = load_data(cfg, data_dir)
    assert list(again.train.ids) == list(splits.train.ids)
    assert list(again.val.ids) == list(splits.val.ids)
    other = load_data(load_config(TINY, ALL + ["data.split_seed=1"]), data_dir)
    kept = set(splits.train.ids) | set(splits.val.ids)
    assert kept != set(other.train.ids) | set(other.val.ids)


# ------------------------------------------------------------ per-language thresholds

NAMES = ["anger", "fear", "joy"]
LANGS = np.array(["eng"] * 4 + ["deu"] * 4)
#                   anger    fear      joy
Y = np.array([[1, 0, 0], [0, 0, 1], [1, 0, 1], [0, 0, 0],  # eng: no fear positive
              [0, 1, 1], [1, 1, 1], [0, 0, 1], [1, 0, 1]], float)  # deu: joy unknown
P = np.array([[.9, .2, .3], [.8, .3, .6], [.7, .1, .35], [.1, .15, .2],
              [.6, .55, .05], [.5, .45, .05], [.2, .5, .05], [.45, .1, .05]], "float32")
MASK = np.ones_like(Y)
MASK[4:, 2] = 0  # deu's joy cells are unknown: their labels (1) and probs (.05) must not count
# By hand (F1 = 2PR/(P+R) at "p >= t"):
# anger, eng (.9+ .8- .7+ .1-): t=.7 -> P 2/3, R 1, F1 .8 (t=.9: .667).
# anger, deu (.6- .5+ .45+ .2-): t=.45 -> P 2/3, R 1, F1 .8 (t=.5: .5).
# anger, both (.9+ .8- .7+ .6- .5+ .45+ .2- .1-): t=.45 -> 6 predicted, 4 right: F1 .8
#   (t=.5: .667, t=.7: .571).
# fear, both (.55+ .5- .45+ ...): t=.45 -> F1 .8; eng has no positive: keeps .45, not 0.5.
# joy, eng only (.6+ .35+ .3- .2-): t=.35 -> F1 1; deu lacks joy: keeps .35.
GLOBAL = [.45, .45, .35]
PER_LANGUAGE = {"eng": [.7, .45, .35], "deu": [.45, .45, .35]}


@pytest.fixture(scope="module")
def searches():
    search = ThresholdSearch().fit(P, Y, MASK, NAMES)
    return search, search.tuned_per_language(P, Y, MASK, LANGS)


def test_per_language_thresholds_by_hand(searches):
    search, per_lang = searches
    np.testing.assert_allclose(search.thresholds, GLOBAL, rtol=1e-6)
    np.testing.assert_allclose(search.val_f1, [.8, .8, 1.0])
    assert search.per_language == {}  # the global search is unchanged
    assert set(per_lang.per_language) == {"eng", "deu"}
    for lang, expected in PER_LANGUAGE.items():
        np.testing.assert_allclose(per_lang.per_language[lang], expected, rtol=1e-6)
    assert per_lang.thresholds == search.thresholds and per_lang.global_only() == search
    # Decisions: each row at its language's thresholds; zero-shot (afr) and no languages
    # at the global ones.
    q = np.full((3, 3), [.5, .46, .36], "float32")
    np.testing.assert_array_equal(per_lang.apply(q, ["eng", "deu", "afr"]),
                                  [[0, 1, 1], [1, 1, 1], [1, 1, 1]])
    np.testing.assert_array_equal(per_lang.apply(q), np.ones((3, 3)))
    np.testing.assert_array_equal(search.apply(q, ["eng", "deu", "afr"]), np.ones((3, 3)))
    with pytest.raises(ValueError, match="2 languages for 3 rows"):
        per_lang.apply(q, ["eng", "deu"])


def test_per_language_thresholds_save_and_load(searches, tmp_path):
    search, per_lang = searches
    path = tmp_path / "thresholds.json"
    per_lang.save(path)
    assert set(json.loads(path.read_text())["per_language"]) == {"eng", "deu"}
    back = ThresholdSearch.load(path, NAMES)
    assert back == per_lang
    np.testing.assert_array_equal(back.apply(P, LANGS), per_lang.apply(P, LANGS))
    search.save(path)  # a global run (and every run before this change): no field
    assert "per_language" not in json.loads(path.read_text())
    assert ThresholdSearch.load(path, NAMES).per_language == {}

    good = per_lang.to_dict()
    for per_language, message in [
        ([1, 2], "field 'per_language': expected a JSON object, got a JSON array"),
        ({"xx": [.5, .5, .5]}, "field 'per_language': unknown language code 'xx'"),
        ({"eng": [.5, .5]}, "field 'per_language.eng': 2 values, expected 3"),
        ({"eng": [.5, 1.5, .5]}, r"field 'per_language.eng'\[1\]: 1.5 is not a finite number"),
        ({"eng": "0.5"}, "field 'per_language.eng': expected a JSON array, got a string"),
    ]:
        path.write_text(json.dumps({**good, "per_language": per_language}))
        with pytest.raises(InputError, match=f"^{path}, {message}") as e:
            ThresholdSearch.load(path, NAMES)
        assert "\n" not in str(e.value)


def hand_examples() -> Examples:
    ids = np.array([f"r{i}" for i in range(len(Y))])
    return Examples(ids, ids, LANGS, Y.astype("float32"), MASK.astype("float32"), tuple(NAMES))


def test_report_settings_and_the_mean_over_languages(searches, tmp_path):
    search, per_lang = searches
    ex = hand_examples()
    report = full_report(ex, P, search, per_lang)
    assert list(report) == list(SETTINGS)
    for key, section in report.items():
        assert set(section) == {"overall", "per_language", MEAN}
        assert list(section["per_language"]) == ["eng", "deu"]
        f1s = [section["per_language"][lang]["macro"]["f1"] for lang in ("eng", "deu")]
        assert section[MEAN]["macro_f1"] == pytest.approx(np.mean(f1s), abs=1e-12)
        assert section[MEAN]["languages"] == 2
    # per-language decisions: eng at .7 for anger, deu lacks joy (left out of its report)
    eng = LANGS == "eng"
    expected = classification_report(Y[eng], (P[eng] >= np.float32([.7, .45, .35])), MASK[eng],
                                     NAMES)
    assert report["per_language_thresholds"]["per_language"]["eng"] == expected
    assert list(report["per_language_thresholds"]["per_language"]["deu"]["per_label"]) == \
        ["anger", "fear"]
    # tuned_thresholds stays global even when given a per-language search
    assert full_report(ex, P, per_lang)["tuned_thresholds"] == report["tuned_thresholds"]
    assert "per_language_thresholds" not in full_report(ex, P, search)

    table = format_language_table(report, "validation", "per_language_thresholds").splitlines()
    assert len(table) == 2 + 2 + 2  # title, header, one row per language, mean, all rows
    assert table[1].split() == ["language", "rows", "at", "0.5", "global", "per-lang*"]
    assert table[2].split()[:2] == ["eng", "4"]
    mean = table[4].split()
    assert mean[:2] == ["mean", "(2)"] and [float(v) for v in mean[2:]] == pytest.approx(
        [report[k][MEAN]["macro_f1"] for k in SETTINGS], abs=5e-5)

    # report.json's reader accepts it and names a damaged mean
    from kemo.run.report_file import Report

    (tmp_path / "report.json").write_text(json.dumps({"validation": report}))
    assert Report.read(tmp_path, NAMES).split("validation") == json.loads(json.dumps(report))
    report["per_language_thresholds"][MEAN]["macro_f1"] = 1.5
    (tmp_path / "report.json").write_text(json.dumps({"validation": report}))
    with pytest.raises(InputError, match="field 'validation.per_language_thresholds."
                       "mean_over_languages.macro_f1': 1.5 is not a finite number"):
        Report.read(tmp_path, NAMES)


# ---------------------------------------------------- 28 languages through the CLI

@pytest.fixture(scope="module")
def small_data(data_dir, tmp_path_factory) -> Path:
    """The first 30 train, 6 dev and 6 test rows of every language (a tmp copy)."""
    root = tmp_path_factory.mktemp("data")
    for split, n in (("train", 30), ("dev", 6), ("test", 6)):
        (root / split).mkdir()
        for lang in LANGUAGES:
            df = pd.read_csv(data_dir / split / f"{lang}.csv", dtype=str, keep_default_na=False)
            df.head(n).to_csv(root / split / f"{lang}.csv", index=False)
    return root


@pytest.fixture(scope="module")
def run28(small_data, tmp_path_factory):
    """A one-epoch tiny run on all 28 languages, deciding per language: (dir, stdout)."""
    run_dir = tmp_path_factory.mktemp("runs") / "all"
    sets = ALL + ["train.epochs=1", "model.sequence_length=32", "data.length_buckets=[32]",
                  "thresholds.per_language=true"]
    code, out, err = run_cli(["train", "--config", TINY, *(a for s in sets for a in ("--set", s)),
                              "--data-dir", small_data, "--run-dir", run_dir, "--quiet"])
    assert code == 0, err
    return run_dir, out


def test_all_language_run_reports_every_language(run28, small_data):
    run_dir, printed = run28
    report = json.loads((run_dir / "report.json").read_text())
    for split in ("validation", "dev"):
        assert list(report[split]) == list(SETTINGS)
        for key in SETTINGS:
            per = report[split][key]["per_language"]
            assert list(per) == list(LANGUAGES)
            assert report[split][key][MEAN] == {
                "macro_f1": pytest.approx(np.mean([r["macro"]["f1"] for r in per.values()])),
                "micro_f1": pytest.approx(np.mean([r["micro"]["f1"] for r in per.values()])),
                "languages": 28}
    assert report["dev"]["tuned_thresholds"]["overall"]["n"] == 28 * 6
    assert report["meta"]["decides_with"] == "per_language_thresholds"
    thresholds = json.loads((run_dir / "thresholds.json").read_text())
    assert set(thresholds["per_language"]) == set(LANGUAGES)
    assert thresholds["per_language"] == report["meta"]["per_language_thresholds"]
    assert "thresholds" not in report["meta"]  # thresholds.json is their one record

    # predictions_val.csv: predictions_dev.csv's layout, the validation rows, and the
    # decisions the report scored (per language)
    val = pd.read_csv(run_dir / "predictions_val.csv", dtype={"id": str}, keep_default_na=False)
    dev = pd.read_csv(run_dir / "predictions_dev.csv", dtype={"id": str}, keep_default_na=False)
    assert list(val.columns) == list(dev.columns) == ["id", "lang"] + [
        f"p_{n}" for n in LABELS] + list(LABELS)
    assert len(val) == report["meta"]["val_rows"] and set(val["lang"]) == set(LANGUAGES)
    from kemo.data.brighter import load_split

    gold = load_split(small_data, "dev", LANGUAGES)
    assert dev["id"].tolist() == list(gold.ids)
    assert setting_report(gold, dev[list(LABELS)].to_numpy()) == \
        report["dev"]["per_language_thresholds"]

    # the console: one row per language, then the mean over the 28
    table = printed[printed.index("dev: macro-F1 per language"):].splitlines()
    assert [line.split()[0] for line in table[2:30]] == list(LANGUAGES)
    assert table[30].startswith("mean (28)") and table[31].startswith("all rows")
    mean = [float(v) for v in table[30].split()[2:5]]
    assert mean == pytest.approx([report["dev"][k][MEAN]["macro_f1"] for k in SETTINGS],
                                 abs=5e-5)


def assert_decided_at(out: Path, lang: str, thresholds: ThresholdSearch, lang_of_rows: str):
    """pred_<lang>.csv holds probs_<lang>.csv's probabilities >= the thresholds
    `thresholds` gives rows of language `lang_of_rows` (cells within the 6-decimal
    rounding of a threshold excepted)."""
    pred = pd.read_csv(out / f"pred_{lang}.csv", dtype={"id": str})
    probs = pd.read_csv(out / f"probs_{lang}.csv", dtype={"id": str})
    assert pred["id"].tolist() == probs["id"].tolist()
    names = thresholds.label_names
    t = thresholds.row_thresholds(1, len(names), [lang_of_rows])[0].astype("float64")
    for col in pred.columns[1:]:
        j = names.index(col.lower())
        p = probs[f"p_{col.lower()}"].to_numpy("float64")
        clear = np.abs(p - t[j]) > 1e-6
        assert clear.mean() > 0.5
        np.testing.assert_array_equal(pred[col].to_numpy()[clear], (p >= t[j])[clear].astype(int))


def test_predict_test_writes_every_language_of_the_run(run28, small_data, tmp_path):
    run_dir, _ = run28
    out = tmp_path / "test"
    code, printed, err = run_cli(["predict", run_dir, "--split", "test", "--data-dir",
                                  small_data, "--out", out])
    assert code == 0, err
    assert "note:" not in err  # every language was trained on
    with zipfile.ZipFile(out / "submission.zip") as zf:
        assert sorted(zf.namelist()) == sorted(f"track_a/pred_{lang}.csv" for lang in LANGUAGES)
        assert zf.read("track_a/pred_afr.csv").decode().splitlines()[0] == \
            "id,Anger,Disgust,Fear,Joy,Sadness"  # afr's own columns
    thresholds = ThresholdSearch.load(run_dir / "thresholds.json")
    assert set(thresholds.per_language) == set(LANGUAGES)
    for lang in LANGUAGES:  # each language's own thresholds decide its rows
        assert_decided_at(out, lang, thresholds, lang)


def test_zero_shot_language_predicts_with_global_thresholds(run28, small_data, tmp_path):
    """A run whose config leaves out eng (a copy of the 28-language run with eng taken
    out of data.languages and of its per-language thresholds) predicts eng zero-shot."""
    run_dir = tmp_path / "no_eng"
    shutil.copytree(run28[0], run_dir)
    others = [lang for lang in LANGUAGES if lang != "eng"]
    config = (run_dir / "config.toml").read_text()
    start = config.index("languages = [")
    end = config.index("]", start) + 1
    (run_dir / "config.toml").write_text(
        config[:start] + "languages = " + json.dumps(others) + config[end:])
    thresholds = json.loads((run_dir / "thresholds.json").read_text())
    del thresholds["per_language"]["eng"]
    (run_dir / "thresholds.json").write_text(json.dumps(thresholds))

    out = tmp_path / "pred"
    code, printed, err = run_cli(["predict", run_dir, "--split", "dev", "--languages", "eng",
                                  "deu", "--data-dir", small_data, "--out", out])
    assert code == 0, err
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert notes == [f"note: eng: not among the run's training languages ({', '.join(others)})"
                     ": predicted zero-shot, with the run's global thresholds"]
    thresholds = ThresholdSearch.load(run_dir / "thresholds.json")
    assert_decided_at(out, "eng", thresholds.global_only(), "eng")
    assert_decided_at(out, "deu", thresholds, "deu")


def test_report_fills_in_a_run_trained_before_per_language_thresholds(run28, small_data,
                                                                      tmp_path):
    """An old run (no per-language settings, means or predictions_val.csv; global
    thresholds) gets them on `kemo report`'s page, computed for it: the run directory
    is only read (report.json unchanged, no predictions_val.csv written)."""
    from kemo.config import load_config
    from kemo.evaluation.run_page import make_run_page
    from kemo.evaluation.split_probs import dev_probs, validation_probs

    old = tmp_path / "old"
    shutil.copytree(run28[0], old)
    original = json.loads((old / "report.json").read_text())
    report = json.loads((old / "report.json").read_text())
    for split in ("validation", "dev"):
        del report[split]["per_language_thresholds"]
        for section in report[split].values():
            del section[MEAN]
    for key in ("decides_with", "per_language_thresholds"):
        del report["meta"][key]
    (old / "report.json").write_text(json.dumps(report))
    thresholds = json.loads((old / "thresholds.json").read_text())
    del thresholds["per_language"]
    (old / "thresholds.json").write_text(json.dumps(thresholds))
    (old / "predictions_val.csv").unlink()
    config = (old / "config.toml").read_text().replace("per_language = true", "")
    (old / "config.toml").write_text(config)
    assert not load_config(old / "config.toml").thresholds.per_language
    dev = pd.read_csv(old / "predictions_dev.csv", dtype={"id": str}, keep_default_na=False)
    probs = dev[[f"p_{n}" for n in LABELS]].to_numpy("float32")
    dev[list(LABELS)] = (probs >= np.float32(thresholds["thresholds"])).astype(int)
    dev.to_csv(old / "predictions_dev.csv", index=False)  # an old run decided globally

    before = (old / "report.json").read_bytes()
    result = make_run_page(old, data_dir=small_data, out_dir=tmp_path / "page")
    assert any(n.startswith("per-language thresholds tuned on the validation split "
                            "re-predicted") for n in result.notes), result.notes
    assert (f"added for this page: validation.mean_over_languages, dev.mean_over_languages, "
            f"validation.per_language_thresholds, dev.per_language_thresholds "
            f"({old / 'report.json'} is not changed)") in result.notes
    assert (old / "report.json").read_bytes() == before
    assert not (old / "predictions_val.csv").exists()
    filled = result.report.to_dict()
    for split in ("validation", "dev"):
        assert list(filled[split]) == list(SETTINGS)
        for key in ("threshold_0.5", "tuned_thresholds"):  # kept as they were
            assert filled[split][key]["overall"] == original[split][key]["overall"]
            assert filled[split][key][MEAN] == pytest.approx(original[split][key][MEAN])
        assert list(filled[split]["per_language_thresholds"]["per_language"]) == list(LANGUAGES)
    assert filled["meta"]["backfilled"]["by"] == "kemo report"
    # The numbers: per-language thresholds tuned on the re-predicted validation split,
    # scored on dev from predictions_dev.csv.
    val = validation_probs(old, small_data)
    assert val.reproduced, val.note
    per_lang = ThresholdSearch.load(old / "thresholds.json").tuned_per_language(
        val.probs, val.labels, val.mask, val.langs)
    dev = dev_probs(old, small_data)
    assert filled["dev"]["per_language_thresholds"] == json.loads(json.dumps(
        setting_report(dev.examples, per_lang.apply(dev.probs, dev.langs))))
    assert set(filled["meta"]["per_language_thresholds"]) == set(LANGUAGES)
    for lang, ts in per_lang.per_language.items():
        np.testing.assert_allclose(filled["meta"]["per_language_thresholds"][lang], ts)
    assert filled["dev"]["per_language_thresholds"][MEAN]["macro_f1"] == pytest.approx(
        original["dev"]["per_language_thresholds"][MEAN]["macro_f1"], abs=0.02)
    # console and page: the per-language table
    code, printed, err = run_cli(["report", old, "--data-dir", small_data])
    assert code == 0, err
    assert "note: added for this page" in err and "note: updated" not in err
    assert "dev: macro-F1 per language" in printed and "\nmean (28)" in printed
    page = (old / "report" / "index.html").read_text()
    assert "macro-F1 per language" in page and "mean over 28 languages" in page
    assert "<th>macro-F1, tuned per language</th>" in page
    assert (old / "report.json").read_bytes() == before
    assert not (old / "predictions_val.csv").exists()



def test_export_keeps_the_per_language_thresholds(run28, tmp_path):
    """The raw-text SavedModel does not know a text's language: its decisions use the
    global thresholds, and export.json carries the run's per-language sets and says so."""
    run_dir, _ = run28
    out = tmp_path / "export"
    code, printed, err = run_cli(["export", run_dir, "--out", out, "--no-benchmark"])
    assert code == 0, err
    info = json.loads((out / "export.json").read_text())
    thresholds = ThresholdSearch.load(run_dir / "thresholds.json")
    assert info["thresholds"] == pytest.approx(list(thresholds.thresholds))
    assert set(info["per_language_thresholds"]) == set(LANGUAGES)
    for lang in LANGUAGES:
        assert info["per_language_thresholds"][lang] == pytest.approx(
            list(thresholds.per_language[lang]))
    assert "per_language_thresholds[language]" in info["per_language_rule"]
