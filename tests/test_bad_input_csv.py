"""Malformed and odd CSVs in every reader, through the real CLI (issue 11).

A refused input gives exit 2, exactly one `error:` line (no embedded newline) naming the
file and the row or line, no traceback, and leaves the directory tree (paths, sizes,
mtimes) as it was. The readers: train/dev files (`train`), Track A test files, plain
id,text files and `--split` (`predict`, `explain --csv`), gold and prediction files and
zip members (`evaluate`). Every case runs in-process through `kemo.cli.main`; a handful
also run as real subprocesses, concurrently from one module fixture. Inputs accepted by
design (CR-only line ends, capitalised or lower-case submission headers, `--json` into a
new folder, a language without a dev file) are checked against expected values.
"""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, assert_refused
from kemo.cli import main
from kemo.data.brighter import parse_csv, read_track_a_csv
from test_bad_input import HEADER, _rows, _write_root
from test_submission import ENG, GOLD_ENG, PRED_ENG, direct_macro_f1, table, write

TINY = ROOT / "configs" / "tiny.toml"
GOOD = "\n".join([HEADER] + _rows(40)) + "\n"


def tree(*roots) -> dict:
    """{path: (size, mtime_ns)} of every file and folder under `roots`."""
    out = {}
    for root in map(Path, roots):
        for p in [root, *root.rglob("*")] if root.exists() else []:
            st = p.stat()
            out[str(p)] = (st.st_size if p.is_file() else 0, st.st_mtime_ns)
    return out


def trailing_comma(text: str) -> str:
    """`text` with a comma after every data row (the header left as it is)."""
    lines = text.splitlines()
    return "\n".join(lines[:1] + [line + "," for line in lines[1:]]) + "\n"


def edit_line(text: str, number: int, old: str, new: str) -> str:
    lines = text.splitlines()
    lines[number - 1] = lines[number - 1].replace(old, new, 1)
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------- the cases
# name -> (command, build(case_dir, run_dir) -> (argv after the command, needles)).
CASES = {}


def case(command):
    def register(build):
        CASES[build.__name__] = (command, build)
        return build
    return register


def _train(root, d, *extra):
    return ["--backend", "jax", "--config", str(TINY), "--data-dir", str(root),
            "--run-dir", str(d / "run"), "--quiet", *extra]


@case("train")
def train_trailing_comma(d, run):
    _write_root(d / "data", train=trailing_comma(GOOD))
    return _train(d / "data", d), ["train/eng.csv, row 1 (line 2)",
                                   "header has 7 fields, row 1 has 8", "trailing comma"]


@case("train")
def train_header_and_rows_trailing_comma(d, run):
    _write_root(d / "data", train=GOOD.replace("\n", ",\n"))
    return _train(d / "data", d), ["train/eng.csv, header", "unexpected column 'Unnamed: 7'"]


@case("train")
def train_missing_field(d, run):
    _write_root(d / "data", train=edit_line(GOOD, 6, ",0,1,0,", ",0,1,"))
    return _train(d / "data", d), ["train/eng.csv, row 5 (line 6)",
                                   "header has 7 fields, row 5 has 6"]


@case("train")
def train_unquoted_comma_in_text(d, run):
    _write_root(d / "data", train=edit_line(GOOD, 13, "is here", "is, here"))
    return _train(d / "data", d), ["row 12 (line 13)", "header has 7 fields, row 12 has 8"]


@case("train")
def dev_trailing_comma(d, run):
    dev = trailing_comma("\n".join([HEADER] + _rows(10, "eng_dev")))
    _write_root(d / "data", dev=dev)
    return _train(d / "data", d), ["dev/eng.csv, row 1 (line 2)", "row 1 has 8"]


@case("train")
def train_unterminated_quote(d, run):
    # a good multi-line quoted text first: the line numbers count physical lines
    text = edit_line(GOOD, 3, "text number 2 is here", '"text, number\n2 is here"')
    _write_root(d / "data", train=edit_line(text, 9, "text number", '"text number'))
    return _train(d / "data", d), ["train/eng.csv, row 7 (line 9)", "unterminated quote",
                                   "opened on line 9"]


@case("train")
def train_unterminated_quote_cr_only(d, run):
    text = edit_line(GOOD, 30, "text number", '"text number').replace("\n", "\r")
    _write_root(d / "data", train=text)
    return _train(d / "data", d), ["row 29 (line 30)", "unterminated quote", "line 30"]


@case("train")
def train_malformed_quote(d, run):
    _write_root(d / "data", train=edit_line(GOOD, 3, "text number 2", '"text" number 2'))
    return _train(d / "data", d), ["train/eng.csv, row 2 (line 3)", "malformed quoting"]


@case("train")
def train_one_row(d, run):
    _write_root(d / "data", train="\n".join([HEADER] + _rows(1)) + "\n")
    return _train(d / "data", d), ["train/eng.csv: 1 data row",
                                   "at least 7 are needed to carve a validation split"]


@case("train")
def train_val_fraction_too_small(d, run):  # here the config is the culprit
    _write_root(d / "data")
    return (_train(d / "data", d, "--set", "data.val_fraction=0.01"),
            ["config key 'data.val_fraction': 0.01", "eng 40 training rows"])


@case("train")
def train_max_train_examples_too_few(d, run):
    _write_root(d / "data")
    return (_train(d / "data", d, "--set", "data.max_train_examples=3"),
            ["config key 'data.max_train_examples': 3 rows"])


TEST_FILE = table(["id", "text", *ENG], [(f"eng_t{i}", f'"text, {i}"', "", "", "", "", "")
                                         for i in range(1, 6)])


@case("predict")
def predict_test_file_trailing_comma(d, run):  # run/predictions must stay untouched
    path = write(d / "eng.csv", trailing_comma(TEST_FILE))
    return [str(run), str(path)], [f"{path}, row 1 (line 2)", "header has 7 fields, row 1 has 8"]


@case("predict")
def predict_plain_trailing_comma(d, run):
    path = write(d / "texts.csv", "id,text\nt1,I am happy,\nt2,so sad,\n")
    return [str(run), str(path)], [f"{path}, row 1 (line 2)", "header has 2 fields, row 1 has 3"]


@case("predict")
def predict_plain_unterminated_quote(d, run):
    path = write(d / "texts.csv", 'id,text\nt1,"I am happy\nt2,so sad\n')
    return [str(run), str(path)], [f"{path}, row 1 (line 2)", "unterminated quote",
                                   "opened on line 2"]


@case("predict")
def predict_split_test_trailing_comma(d, run):
    write(d / "data" / "test" / "eng.csv", trailing_comma(TEST_FILE))
    return ([str(run), "--split", "test", "--data-dir", str(d / "data")],
            ["test/eng.csv, row 1 (line 2)", "row 1 has 8"])


@case("explain")
def explain_csv_trailing_comma(d, run):
    path = write(d / "texts.csv", "id,text\nt1,I am happy,\n")
    return [str(run), "--csv", str(path)], [f"{path}, row 1 (line 2)", "row 1 has 3"]


def _gold(d) -> Path:
    rows = [(r[0], f'"text, {r[0]}"', *r[1:]) for r in GOLD_ENG]
    write(d / "gold" / "eng.csv", table(["id", "text", *ENG], rows))
    return d / "gold"


def _zip(path, members: dict, compression=zipfile.ZIP_STORED) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


PRED = table(["id", *ENG], PRED_ENG)


@case("evaluate")
def evaluate_pred_trailing_comma(d, run):
    pred = write(d / "pred_eng.csv", trailing_comma(PRED))
    return [str(pred), "--gold", str(_gold(d))], [f"{pred}, row 1 (line 2)",
                                                   "header has 6 fields, row 1 has 7"]


@case("evaluate")
def evaluate_gold_trailing_comma(d, run):
    gold = _gold(d)
    (gold / "eng.csv").write_text(trailing_comma((gold / "eng.csv").read_text()))
    pred = write(d / "pred_eng.csv", PRED)
    return [str(pred), "--gold", str(gold)], [f"{gold / 'eng.csv'}, row 1 (line 2)",
                                              "header has 7 fields, row 1 has 8"]


@case("evaluate")
def evaluate_pred_unterminated_quote(d, run):
    pred = write(d / "pred_eng.csv", edit_line(PRED, 4, "e3", '"e3'))
    return [str(pred), "--gold", str(_gold(d))], [f"{pred}, row 3 (line 4)",
                                                   "unterminated quote"]


@case("evaluate")
def evaluate_zip_member_trailing_comma(d, run):
    z = _zip(d / "submission.zip", {"track_a/pred_eng.csv": trailing_comma(PRED)})
    return [str(z), "--gold", str(_gold(d))], [f"{z}:track_a/pred_eng.csv, row 1 (line 2)",
                                                "row 1 has 7"]


@case("evaluate")
def evaluate_zip_member_not_utf8(d, run):
    z = _zip(d / "submission.zip",
             {"track_a/pred_eng.csv": PRED.encode().replace(b"e4", b"e\xff4")})
    return [str(z), "--gold", str(_gold(d))], [f"{z}:track_a/pred_eng.csv, line 5",
                                                "not valid UTF-8"]


@case("evaluate")
def evaluate_zip_bad_crc(d, run):
    z = _zip(d / "submission.zip", {"track_a/pred_eng.csv": PRED})
    data = z.read_bytes()
    at = data.index(b"e4,")
    z.write_bytes(data[:at] + b"e5" + data[at + 2:])  # same size, another CRC
    return [str(z), "--gold", str(_gold(d))], [f"{z}:track_a/pred_eng.csv",
                                                "damaged or not a zip file", "CRC"]


@case("evaluate")
def evaluate_zip_deflate_corrupt(d, run):
    z = _zip(d / "submission.zip", {"track_a/pred_eng.csv": PRED * 20}, zipfile.ZIP_DEFLATED)
    data = bytearray(z.read_bytes())
    start = 30 + len("track_a/pred_eng.csv")  # the compressed bytes follow the local header
    for i in range(start + 5, start + 25):
        data[i] ^= 0x55
    z.write_bytes(bytes(data))
    return [str(z), "--gold", str(_gold(d))], [f"{z}:track_a/pred_eng.csv", "damaged"]


@case("evaluate")
def evaluate_zip_truncated(d, run):
    z = _zip(d / "submission.zip", {"track_a/pred_eng.csv": PRED})
    z.write_bytes(z.read_bytes()[:-30])
    return [str(z), "--gold", str(_gold(d))], [str(z), "damaged or not a zip file"]


@case("evaluate")
def evaluate_json_unwritable(d, run):  # no score may be printed before the error
    pred = write(d / "pred_eng.csv", PRED)
    blocker = write(d / "a_file", "")
    out = blocker / "scores.json"
    return [str(pred), "--gold", str(_gold(d)), "--json", str(out)], [f"--json {out}",
                                                                       "cannot write"]


SUBPROCESS_CASES = ("train_trailing_comma", "predict_test_file_trailing_comma",
                    "predict_plain_trailing_comma", "evaluate_gold_trailing_comma",
                    "evaluate_zip_bad_crc", "evaluate_json_unwritable")


def test_corpus_size():
    assert len(CASES) >= 25 and set(SUBPROCESS_CASES) <= set(CASES)
    assert {command for command, _ in CASES.values()} == {"train", "predict", "explain",
                                                          "evaluate"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_in_process_refused(name, tmp_path, capsys, request):
    command, build = CASES[name]
    run = request.getfixturevalue("tiny_run") if command in ("predict", "explain") else None
    argv, needles = build(tmp_path / "case", run)
    roots = [tmp_path] + ([run] if run else [])
    before = tree(*roots)
    capsys.readouterr()  # drop what the tiny_run fixture printed
    rc = main([command, *argv])
    out, err = capsys.readouterr()
    assert_refused(rc, out, err, needles, before, tree(*roots))
    assert not out.strip(), "printed before refusing"
    assert all(line.startswith(("error:", "note:", "warning:"))
               for line in err.splitlines() if line.strip()), err  # no multi-line message


# -------------------------------------------------------------- subprocesses

LF_TEXTS = 'id,text\nn1,"I love this, truly"\nn2,"so scared\nand alone"\nn3,what a day\n'


def _accepted_predict(d, run):
    """A CR-only Track A test file, and a plain file in LF and CR-only versions."""
    write(d / "in" / "eng.csv", TEST_FILE.replace("\n", "\r"))
    write(d / "in" / "lf.csv", LF_TEXTS)
    write(d / "in" / "cr.csv", LF_TEXTS.replace("\n", "\r"))
    return ["predict", str(run), *(str(d / "in" / f) for f in ("eng.csv", "lf.csv", "cr.csv")),
            "--out", str(d / "out")]


def _accepted_evaluate(d):
    """CR-only gold; a zip whose pred file has the organisers' capitalised header, CR-only;
    --json into a folder that does not exist yet."""
    gold = _gold(d)
    (gold / "eng.csv").write_bytes((gold / "eng.csv").read_bytes().replace(b"\n", b"\r"))
    capitalised = table(["id", *(c.capitalize() for c in ENG)], PRED_ENG).replace("\n", "\r")
    z = _zip(d / "submission.zip", {"track_a/pred_eng.csv": capitalised})
    return ["evaluate", str(z), "--gold", str(gold), "--json", str(d / "new" / "s.json")]


@pytest.fixture(scope="module")
def subprocess_results(tiny_run, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("csv_cli")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "jax"}
    run_before = tree(tiny_run)
    jobs = {}
    for name in SUBPROCESS_CASES:
        command, build = CASES[name]
        d = tmp / name
        argv, needles = build(d / "case", tiny_run)
        jobs[name] = ([command, *argv], d, needles, tree(d))
    jobs["accepted_predict"] = (_accepted_predict(tmp / "ap", tiny_run), tmp / "ap", None, None)
    jobs["accepted_evaluate"] = (_accepted_evaluate(tmp / "ae"), tmp / "ae", None, None)
    procs = {name: subprocess.Popen([sys.executable, "-m", "kemo.cli", *job[0]], cwd=ROOT,
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
             for name, job in jobs.items()}
    results = {}
    for name, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        _, d, needles, before = jobs[name]
        results[name] = (proc.returncode, out, err, needles, before, tree(d) if before else d)
    results["run_unchanged"] = run_before == tree(tiny_run)
    return results


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_subprocess_refused(subprocess_results, name):
    assert_refused(*subprocess_results[name])
    assert subprocess_results["run_unchanged"], "the run directory changed"


def test_subprocess_predict_accepts_cr_only_and_writes_the_organisers_header(
        subprocess_results, tiny_run):
    from kemo.prediction.trained_run import load_run

    rc, out, err, _, _, d = subprocess_results["accepted_predict"]
    assert rc == 0 and "Traceback" not in err, err
    pred = (d / "out" / "pred_eng.csv").read_text().splitlines()
    assert pred[0] == "id,Anger,Fear,Joy,Sadness,Surprise"  # the organisers' sample header
    assert [line.split(",")[0] for line in pred[1:]] == [f"eng_t{i}" for i in range(1, 6)]
    run = load_run(tiny_run)
    dec = run.thresholds.apply(run.predict_probs([f"text, {i}" for i in range(1, 6)]))
    cols = [run.label_names.index(c) for c in ENG]
    assert [[int(v) for v in line.split(",")[1:]] for line in pred[1:]] == \
        dec[:, cols].astype(int).tolist()
    lf = pd.read_csv(d / "out" / "lf.predictions.csv", dtype=str)
    cr = pd.read_csv(d / "out" / "cr.predictions.csv", dtype=str)
    assert lf["id"].tolist() == ["n1", "n2", "n3"] and lf.equals(cr)


def test_subprocess_evaluate_accepts_capitals_cr_only_and_a_new_json_folder(
        subprocess_results):
    rc, out, err, _, _, d = subprocess_results["accepted_evaluate"]
    assert rc == 0 and "Traceback" not in err, err
    scores = json.loads((d / "new" / "s.json").read_text())
    expected = direct_macro_f1(GOLD_ENG, PRED_ENG)
    assert scores["per_language"]["eng"]["macro_f1"] == pytest.approx(expected, abs=1e-12)
    assert scores["per_language"]["eng"]["rows"] == len(GOLD_ENG)
    assert f"{expected:.4f}" in out


# ------------------------------------------------------------ accepted by design

@pytest.mark.parametrize("split, lang", [("train", "eng"), ("dev", "afr"), ("test", "eng")])
def test_cr_only_line_ends_parse_like_lf(data_dir, tmp_path, split, lang):
    """A real file (quoted commas and quotes) plus a multi-line text, LF and CR-only."""
    lf = (data_dir / split / f"{lang}.csv").read_bytes().replace(b"\r\n", b"\n")
    labels = len(lf.split(b"\n", 1)[0].split(b",")) - 2
    lf += b'x_multi,"one\n""two"", three"' + (b",0" if split != "test" else b",") * labels + b"\n"
    (tmp_path / "lf").mkdir()
    (tmp_path / "cr").mkdir()
    (tmp_path / "lf" / f"{lang}.csv").write_bytes(lf)
    (tmp_path / "cr" / f"{lang}.csv").write_bytes(lf.replace(b"\n", b"\r"))
    labelled = split != "test"
    want = read_track_a_csv(tmp_path / "lf" / f"{lang}.csv", labelled)
    got = read_track_a_csv(tmp_path / "cr" / f"{lang}.csv", labelled)
    assert len(want) == len(read_track_a_csv(data_dir / split / f"{lang}.csv", labelled)) + 1
    assert want["text"].iat[-1] == 'one\n"two", three'
    want["text"] = want["text"].str.replace("\n", "\r")
    assert list(got.columns) == list(want.columns) and got.equals(want)


def test_quoted_commas_quotes_and_line_breaks_count_as_one_field():
    text = 'id,text,joy\n1,"a, b\nc,d ""e"", f",1\n\n2,plain,0\n'
    df = parse_csv(Path("x.csv"), text)
    assert df.to_dict("list") == {"id": ["1", "2"], "text": ['a, b\nc,d "e", f', "plain"],
                                  "joy": ["1", "0"]}
    assert df.index.tolist() == [0, 1]  # no column is ever the index


def test_language_without_dev_file_still_scores_the_others(tmp_path, capsys):
    """eng+afr, no dev/afr.csv: dev is scored on eng, and the run says afr's is missing."""
    afr_header = "id,text,anger,disgust,fear,joy,sadness"
    afr = [f"afr_{i:03d},teks nommer {i} hier,{i % 2},{(i // 3) % 2},0,1,{(i // 2) % 2}"
           for i in range(1, 41)]
    root = _write_root(tmp_path / "data")
    (root / "train" / "afr.csv").write_text("\n".join([afr_header] + afr) + "\n")
    run = tmp_path / "run"
    rc = main(["train", *_train(root, tmp_path, "--set", 'data.languages=["eng", "afr"]',
                                "--set", "train.epochs=1", "--set", "model.sequence_length=32",
                                "--set", "data.length_buckets=[32]", "--set",
                                "model.num_layers=1", "--set", "train.early_stopping_patience=0")])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert f"note: no dev file {root / 'dev' / 'afr.csv'}: dev is scored on eng" in err
    report = json.loads((run / "report.json").read_text())
    assert list(report["dev"]["tuned_thresholds"]["per_language"]) == ["eng"]
    dev = pd.read_csv(run / "predictions_dev.csv", dtype=str)
    assert dev["id"].tolist() == [f"eng_dev_{i:03d}" for i in range(1, 11)]
