"""Submission files (`kemo predict`) and the official-style scorer (`kemo evaluate`)."""

import json
import zipfile

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from kemo.errors import InputError
from kemo.evaluation.scoring import find_prediction_files, score_submission
from kemo.prediction.input_files import predict_files, read_input_file, split_files


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def table(header, rows):
    return "\n".join([",".join(header)] + [",".join(map(str, r)) for r in rows]) + "\n"


GOLD_ENG = [  # id, anger fear joy sadness surprise
    ("e1", 1, 0, 0, 0, 0), ("e2", 0, 1, 1, 0, 0), ("e3", 0, 1, 0, 1, 0),
    ("e4", 1, 1, 0, 0, 0), ("e5", 0, 0, 1, 0, 0), ("e6", 0, 0, 0, 1, 0),
]
PRED_ENG = [
    ("e1", 1, 0, 0, 0, 0), ("e2", 0, 1, 0, 0, 0), ("e3", 0, 0, 0, 1, 1),
    ("e4", 0, 1, 0, 0, 0), ("e5", 0, 0, 1, 1, 0), ("e6", 1, 0, 0, 1, 0),
]
ENG = ["anger", "fear", "joy", "sadness", "surprise"]


@pytest.fixture
def gold_dir(tmp_path):
    """Gold files in Track A layout (with a text column, as the dev split has)."""
    rows = [(r[0], f'"text, {r[0]}"', *r[1:]) for r in GOLD_ENG]
    write(tmp_path / "gold" / "eng.csv", table(["id", "text", *ENG], rows))
    afr = ["anger", "disgust", "fear", "joy", "sadness"]
    write(tmp_path / "gold" / "afr.csv", table(["id", "text", *afr], [
        ("a1", "x", 1, 1, 0, 0, 0), ("a2", "y", 0, 0, 0, 1, 0), ("a3", "z", 0, 1, 0, 0, 1)]))
    return tmp_path / "gold"


def score_files(pred, gold) -> dict:
    """One pred_<lang>.csv scored against one gold <lang>.csv, as `kemo evaluate` does."""
    lang = Path(gold).stem
    return score_submission([pred], Path(gold).parent, [lang])["per_language"][lang]


def direct_macro_f1(gold, pred):
    y_true = np.array([r[1:] for r in gold])
    by_id = {r[0]: r[1:] for r in pred}
    y_pred = np.array([by_id[r[0]] for r in gold])
    return f1_score(y_true, y_pred, average="macro", zero_division=0)


def test_score_matches_sklearn_with_rows_matched_by_id(tmp_path, gold_dir):
    shuffled = [PRED_ENG[i] for i in (3, 0, 5, 1, 4, 2)]
    pred = write(tmp_path / "p" / "pred_eng.csv", table(["id", *ENG], shuffled))
    score = score_files(pred, gold_dir / "eng.csv")
    assert score["macro_f1"] == pytest.approx(direct_macro_f1(GOLD_ENG, PRED_ENG), abs=1e-12)
    assert score["rows"] == 6
    # surprise: no gold positive, one false positive -> F1 0 (zero_division=0), kept in macro.
    assert score["per_label"]["surprise"]["f1"] == 0.0
    assert score["per_label"]["anger"]["support"] == 2


def test_header_is_compared_case_insensitively_like_the_organisers(tmp_path, gold_dir):
    pred = write(tmp_path / "pred_eng.csv",
                 table(["id", "Anger", "Fear", "Joy", "Sadness", "Surprise"], PRED_ENG))
    assert score_files(pred, gold_dir / "eng.csv")["macro_f1"] == pytest.approx(
        direct_macro_f1(GOLD_ENG, PRED_ENG))


def test_zero_division_is_zero_when_a_label_is_never_positive(tmp_path):
    gold = write(tmp_path / "g" / "eng.csv", table(["id", "text", "joy", "fear"],
                                                   [("1", "a", 1, 0), ("2", "b", 0, 0)]))
    pred = write(tmp_path / "pred_eng.csv", table(["id", "joy", "fear"], [(1, 1, 0), (2, 0, 0)]))
    assert score_files(pred, gold)["macro_f1"] == pytest.approx(0.5)
    assert f1_score([[1, 0], [0, 0]], [[1, 0], [0, 0]], average="macro", zero_division=0) == 0.5


@pytest.mark.parametrize("header, rows, message", [
    (["id", "fear", "anger", "joy", "sadness", "surprise"], PRED_ENG,
     "header: expected id,anger,fear,joy,sadness,surprise"),
    (["id", "anger", "fear", "joy", "sadness"], [r[:5] for r in PRED_ENG], "header: expected"),
    (["id", "text", *ENG], [(r[0], "t", *r[1:]) for r in PRED_ENG], "header: expected"),
    (["id", *ENG], PRED_ENG + [("e9", 0, 0, 0, 0, 0)], "row 7, column 'id': id 'e9' is not in"),
    (["id", *ENG], PRED_ENG[:5], "1 id(s) of gold file"),
    (["id", *ENG], PRED_ENG[:5] + [PRED_ENG[0]], "row 6 (id 'e1'), column 'id': duplicated id"),
    (["id", *ENG], PRED_ENG[:2] + [("e3", 0, 0, 2, 0, 0)] + PRED_ENG[3:],
     "row 3 (id 'e3'), column 'joy': expected 0 or 1, got '2'"),
    (["id", *ENG], PRED_ENG[:2] + [("e3", 0, 0, "", 0, 0)] + PRED_ENG[3:],
     "row 3 (id 'e3'), column 'joy': expected 0 or 1"),
])
def test_bad_prediction_files_are_refused(tmp_path, gold_dir, header, rows, message):
    pred = write(tmp_path / "pred_eng.csv", table(header, rows))
    with pytest.raises(InputError, match="pred_eng.csv") as e:
        score_files(pred, gold_dir / "eng.csv")
    assert message in str(e.value)


def test_unlabelled_gold_is_refused(tmp_path, data_dir):
    pred = write(tmp_path / "pred_eng.csv", table(["id", *ENG], PRED_ENG))
    with pytest.raises(InputError, match=r"test/eng.csv, row 1 .*column 'anger'.*test split"):
        score_files(pred, data_dir / "test" / "eng.csv")


def test_submission_scores_each_language_and_the_mean(tmp_path, gold_dir):
    folder = tmp_path / "sub" / "track_a"
    write(folder / "pred_eng.csv", table(["id", *ENG], PRED_ENG))
    afr_pred = [("a1", 1, 0, 0, 0, 0), ("a2", 0, 0, 0, 1, 0), ("a3", 0, 1, 0, 0, 1)]
    write(folder / "pred_afr.csv",
          table(["id", "anger", "disgust", "fear", "joy", "sadness"], afr_pred))
    afr_gold = [("a1", 1, 1, 0, 0, 0), ("a2", 0, 0, 0, 1, 0), ("a3", 0, 1, 0, 0, 1)]
    expected = {"eng": direct_macro_f1(GOLD_ENG, PRED_ENG),
                "afr": direct_macro_f1(afr_gold, afr_pred)}
    zip_path = tmp_path / "submission.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        for f in folder.iterdir():
            zf.write(f, f"track_a/{f.name}")
    for source in (tmp_path / "sub", folder, zip_path, sorted(folder.iterdir())):
        scores = score_submission(source, gold_dir)
        got = {k: v["macro_f1"] for k, v in scores["per_language"].items()}
        assert got == pytest.approx(expected)
        assert scores["overall"]["macro_f1"] == pytest.approx(np.mean(list(expected.values())))
    with pytest.raises(InputError, match="no prediction file for hin"):
        score_submission(zip_path, gold_dir, ["eng", "hin"])
    (gold_dir / "afr.csv").unlink()
    with pytest.raises(InputError, match="afr.csv: gold file not found for afr"):
        score_submission(zip_path, gold_dir)
    with pytest.raises(InputError, match="no pred_<lang>.csv files"):
        find_prediction_files(gold_dir)


def test_evaluate_cli(tmp_path, gold_dir, capsys):
    from kemo.cli import main

    write(tmp_path / "s" / "pred_eng.csv", table(["id", *ENG], PRED_ENG))
    out = tmp_path / "scores.json"
    assert main(["evaluate", str(tmp_path / "s"), "--gold", str(gold_dir),
                 "--json", str(out)]) == 0
    assert f"{direct_macro_f1(GOLD_ENG, PRED_ENG):.4f}" in capsys.readouterr().out
    assert json.loads(out.read_text())["per_language"]["eng"]["rows"] == 6
    assert main(["evaluate", str(tmp_path / "s"), "--gold", str(gold_dir),
                 "--languages", "eng", "afr"]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_input_files_are_checked(tmp_path):
    plain = read_input_file(write(tmp_path / "mine.csv", "id,text,source\n1,hello,x\n2,bye,y\n"))
    assert (plain.ids, plain.texts, plain.is_track_a) == (["1", "2"], ["hello", "bye"], False)
    with pytest.raises(InputError, match=r"named <lang>.csv"):
        read_input_file(write(tmp_path / "my_eng.csv", "id,text,joy\n1,hi,\n"))
    with pytest.raises(InputError, match=r"row 2 \(id '1'\), column 'id': duplicated id"):
        read_input_file(write(tmp_path / "dup.csv", "id,text\n1,a\n1,b\n"))
    with pytest.raises(InputError, match=r"header: missing column 'text'"):
        read_input_file(write(tmp_path / "notext.csv", "id,words\n1,a\n"))
    (tmp_path / "test").mkdir()
    with pytest.raises(InputError, match="no test file for eng"):
        split_files(tmp_path, "test", ["eng"])
    with pytest.raises(InputError, match="unknown language code 'english'"):
        split_files(tmp_path, "test", ["english"])


# ---- with a trained run -------------------------------------------------------------

@pytest.fixture(scope="module")
def run(tiny_run):
    from kemo.prediction.trained_run import load_run

    return load_run(tiny_run)


def test_submission_layout_for_test_files(run, tmp_path):
    # A test-like eng file (blank labels, quoted text with commas and a newline) + afr.
    eng = write(tmp_path / "in" / "eng.csv", table(["id", "text", *ENG], [
        ("eng_b", '"Oh, no! I am ""so"" scared\nof this"', "", "", "", "", ""),
        ("eng_a", "What a lovely day", "", "", "", "", ""),
        ("eng_c", "#NAME?", "", "", "", "", "")]))
    afr_cols = ["anger", "disgust", "fear", "joy", "sadness"]
    afr = write(tmp_path / "in" / "afr.csv", table(["id", "text", *afr_cols], [
        ("afr_1", "Ek is so bly", "", "", "", "", "")]))
    plain = write(tmp_path / "in" / "notes.csv", "id,text\nn1,I am happy\n")
    with pytest.raises(InputError, match=r"afr.csv, header: label column\(s\) 'disgust' of afr"):
        predict_files(run, [eng, afr], tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before writing anything

    result = predict_files(run, [eng, afr, plain], tmp_path / "out", untrained="zero")
    assert result["untrained"] == {"afr": ["disgust"]}
    pred = pd.read_csv(tmp_path / "out" / "pred_eng.csv", dtype=str)
    assert (tmp_path / "out" / "pred_eng.csv").read_text().splitlines()[0] == \
        "id,Anger,Fear,Joy,Sadness,Surprise"  # the organisers' sample submission header
    pred.columns = [c.lower() for c in pred.columns]
    assert pred["id"].tolist() == ["eng_b", "eng_a", "eng_c"]
    assert set(pred[ENG].to_numpy().ravel()) <= {"0", "1"}
    probs = run.predict_probs(["Oh, no! I am \"so\" scared\nof this", "What a lovely day",
                               "#NAME?"])
    expected = run.thresholds.apply(probs)
    assert pred[ENG].astype(int).to_numpy().tolist() == expected[
        :, [run.label_names.index(c) for c in ENG]].tolist()
    afr_pred = pd.read_csv(tmp_path / "out" / "pred_afr.csv")
    assert list(afr_pred.columns) == ["id", *(c.capitalize() for c in afr_cols)]
    assert afr_pred["Disgust"].tolist() == [0]
    with zipfile.ZipFile(result["zip"]) as zf:
        assert sorted(zf.namelist()) == ["track_a/pred_afr.csv", "track_a/pred_eng.csv"]
        assert zf.read("track_a/pred_eng.csv") == (tmp_path / "out" / "pred_eng.csv").read_bytes()
    notes = pd.read_csv(tmp_path / "out" / "notes.predictions.csv")
    assert list(notes.columns) == ["id"] + [f"p_{n}" for n in run.label_names] + run.label_names


def test_predict_and_evaluate_dev_agree_with_the_training_report(tiny_run, data_dir, tmp_path,
                                                                 capsys):
    from kemo.cli import main
    from kemo.run.report_file import Report

    out = tmp_path / "dev"
    assert main(["predict", str(tiny_run), "--split", "dev", "--data-dir", str(data_dir),
                 "--out", str(out), "--text", "I am so happy today"]) == 0
    printed = capsys.readouterr().out
    assert "[1] I am so happy today" in printed and "submission.zip" in printed
    scores = score_submission(out / "submission.zip", data_dir / "dev", ["eng"])
    # eng annotates every label the run knows, so the official macro-F1 equals kemo's report.
    report = Report.read(tiny_run).macro_f1("dev", "tuned_thresholds")
    assert scores["per_language"]["eng"]["macro_f1"] == pytest.approx(report, abs=1e-6)


def test_predict_cli_errors(tiny_run, tmp_path, capsys):
    from kemo.cli import main

    assert main(["predict", str(tiny_run)]) == 2
    assert "error: nothing to predict" in capsys.readouterr().err
    assert main(["predict", str(tiny_run), "--languages", "eng", "--text", "hi"]) == 2
    assert "error: --languages goes with --split" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "nope"), "--text", "hi"]) == 2
    assert "not found" in capsys.readouterr().err
    bad = write(tmp_path / "eng.csv", "id,text,joy\n1,hi,2\n")
    assert main(["predict", str(tiny_run), str(bad)]) == 2
    assert "eng.csv, row 1 (id '1'), column 'joy': expected 0 or 1, got '2'" in \
        capsys.readouterr().err


def test_predict_reads_each_input_file_once(tiny_run, tmp_path, monkeypatch, capsys):
    """`kemo predict` checks every input before the model runs and predicts from what it
    read: each file is decoded and parsed exactly once (it was four times)."""
    from kemo.cli import main
    from kemo.data import brighter
    from kemo.prediction import input_files as submission

    calls = []

    def counting(path, text):
        calls.append(path.name)
        return brighter_parse(path, text)

    brighter_parse = brighter.parse_csv
    monkeypatch.setattr(brighter, "parse_csv", counting)
    monkeypatch.setattr(submission, "parse_csv", counting)
    eng = write(tmp_path / "in" / "eng.csv", "id,text,anger,fear,joy,sadness,surprise\n"
                "a1,I am so happy,,,,,\na2,this is awful,,,,,\n")
    plain = write(tmp_path / "in" / "mine.csv", "id,text\n1,hello there\n")
    assert main(["predict", str(tiny_run), str(eng), str(plain), "--out",
                 str(tmp_path / "out")]) == 0
    assert sorted(calls) == ["eng.csv", "mine.csv"]
    assert (tmp_path / "out" / "pred_eng.csv").is_file()
    assert (tmp_path / "out" / "mine.predictions.csv").is_file()
