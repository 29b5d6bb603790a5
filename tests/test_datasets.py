"""Datasets described in the config (`data.layout = "table"`): every format and label
encoding from small files the tests write, label groups, unlabelled splits, the bad
inputs refused with one `error:` line, and a 28-label round trip train -> predict ->
evaluate -> report -> export.
"""

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import assert_refused, run_cli, serve_saved_model, snapshot
from kemo.config import load_config
from kemo.data.dataset import open_dataset
from kemo.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["joy", "fear", "anger", "neutral"]
# (text, id, labels as names): labels of 6 rows; the 4th has none
ROWS = [("I love this, truly", "a1", ["joy"]), ("so scary\tat night", "a2", ["fear"]),
        ('he said "no" again', "a3", ["anger", "fear"]), ("meh.", "a4", []),
        ("what a day", "a5", ["joy", "neutral"]), ("ok then", "a6", ["neutral"])]
WANT = np.array([[n in labels for n in NAMES] for _, _, labels in ROWS], "float32")


def toml(**data) -> str:
    lines = ["[data]"] + [f"{k} = {json.dumps(v)}" for k, v in data.items()]
    return "\n".join(lines) + "\n"


def write_config(tmp_path: Path, name="ds.toml", **data) -> Path:
    path = tmp_path / name
    path.write_text(toml(layout="table", data_dir=str(tmp_path), **data))
    return path


def read(tmp_path, split="train", **data):
    cfg = load_config(write_config(tmp_path, **data))
    return open_dataset(cfg.data).read(split)


def frame(encoding: str) -> pd.DataFrame:
    df = pd.DataFrame({"text": [r[0] for r in ROWS], "id": [r[1] for r in ROWS]})
    if encoding == "columns":
        for j, n in enumerate(NAMES):
            df[n] = WANT[:, j].astype(int)
    elif encoding == "names":
        df["labels"] = [",".join(r[2]) for r in ROWS]
    else:
        df["labels"] = [",".join(str(NAMES.index(n)) for n in r[2]) for r in ROWS]
    return df


def test_csv_with_header_and_01_columns(tmp_path):
    frame("columns").to_csv(tmp_path / "train.csv", index=False)
    ex = read(tmp_path, train_file="train.csv", id_column="id")
    assert ex.label_names == tuple(NAMES) and ex.has_labels
    assert list(ex.ids) == [r[1] for r in ROWS] and list(ex.texts) == [r[0] for r in ROWS]
    np.testing.assert_array_equal(ex.labels, WANT)
    assert (ex.mask == 1).all() and set(ex.langs) == {"und"}


def test_tsv_without_header_indices_and_names_file(tmp_path):
    """GoEmotions' shape: no header, text/labels/id, indices into a names file."""
    frame("indices")[["text", "labels", "id"]].to_csv(tmp_path / "train.tsv", sep="\t",
                                                      index=False, header=False)
    (tmp_path / "emotions.txt").write_text("\n".join(NAMES))  # no final newline
    ex = read(tmp_path, train_file="train.tsv", header=False, columns=["text", "labels", "id"],
              id_column="id", label_encoding="indices", label_names_file="emotions.txt",
              language="eng")
    np.testing.assert_array_equal(ex.labels, WANT)
    assert ex.texts[1] == "so scary\tat night" and set(ex.langs) == {"eng"}


def test_jsonl_with_lists_of_names_and_row_number_ids(tmp_path):
    lines = [json.dumps({"text": t, "labels": labels, "lang": "eng" if k % 2 else "deu"})
             for k, (t, _, labels) in enumerate(ROWS)]
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n")
    ex = read(tmp_path, train_file="train.jsonl", label_encoding="names",
              label_names=NAMES, language_column="lang")
    np.testing.assert_array_equal(ex.labels, WANT)
    assert list(ex.ids) == ["1", "2", "3", "4", "5", "6"]
    assert list(ex.langs[:2]) == ["deu", "eng"]


def test_parquet_with_lists_of_indices(tmp_path):
    df = frame("indices")
    df["labels"] = [[NAMES.index(n) for n in r[2]] for r in ROWS]
    df.to_parquet(tmp_path / "train.parquet")
    ex = read(tmp_path, train_file="train.parquet", id_column="id",
              label_encoding="indices", label_names=NAMES)
    np.testing.assert_array_equal(ex.labels, WANT)


def test_names_found_in_the_data_and_json_list_cells(tmp_path):
    df = frame("names")
    df["labels"] = [json.dumps(r[2]) for r in ROWS]
    df.to_csv(tmp_path / "train.csv", index=False)
    ex = read(tmp_path, train_file="train.csv", id_column="id", label_encoding="names")
    assert ex.label_names == tuple(sorted(NAMES))  # no names given: sorted as found
    np.testing.assert_array_equal(ex.labels, WANT[:, [NAMES.index(n) for n in sorted(NAMES)]])


@pytest.mark.parametrize("ungrouped, names", [
    ("keep", ("positive", "negative", "neutral")), ("drop", ("positive", "negative"))])
def test_label_groups_and_the_ungrouped_label(tmp_path, ungrouped, names):
    frame("names").to_csv(tmp_path / "train.csv", index=False)
    (tmp_path / "groups.json").write_text(json.dumps(
        {"positive": ["joy"], "negative": ["fear", "anger"]}))
    ex = read(tmp_path, train_file="train.csv", id_column="id", label_encoding="names",
              label_names=NAMES, label_groups_file="groups.json", ungrouped_labels=ungrouped)
    assert ex.label_names == names
    want = np.stack([WANT[:, 0], WANT[:, 1:3].max(1), WANT[:, 3]], 1)[:, :len(names)]
    np.testing.assert_array_equal(ex.labels, want)


def test_unlabelled_split_is_never_gold_and_empty_cell_is_no_label(tmp_path):
    df = frame("indices")
    df.to_csv(tmp_path / "train.csv", index=False)
    df.assign(labels="").to_csv(tmp_path / "test.csv", index=False)
    kw = dict(train_file="train.csv", test_file="test.csv", id_column="id",
              label_encoding="indices", label_names=NAMES)
    assert read(tmp_path, **kw).labels[3].sum() == 0  # "" in a labelled split: no label
    test = read(tmp_path, "test", **kw)
    assert not test.has_labels and len(test) == len(ROWS)
    cfg = load_config(write_config(tmp_path, **kw))
    ds = open_dataset(cfg.data)
    from kemo.evaluation.dataset_scoring import score_dataset_predictions

    with pytest.raises(InputError, match="test has no gold labels"):
        score_dataset_predictions(tmp_path / "test.csv", ds, "test")


def test_track_a_stays_the_default(tmp_path):
    cfg = load_config(ROOT / "configs" / "tiny.toml")
    assert cfg.data.layout == "track_a" and cfg.data.validation == "train"
    from kemo.data.token_cache import cache_config

    assert not [k for k in cache_config(cfg) if "layout" in k]  # old caches still match


BAD = {  # name: (how the train file is spoiled, config keys, what the error names)
    "unknown_name": (lambda df: df.assign(labels=df["labels"].replace("fear", "feer")),
                     dict(label_encoding="names", label_names=NAMES),
                     ["train.csv, row 2 (id 'a2'), column 'labels'", "unknown label 'feer'"]),
    "index_out_of_range": (lambda df: df.assign(labels=["0", "1", "2,7", "", "0", "3"]),
                           dict(label_encoding="indices", label_names=NAMES),
                           ["row 3 (id 'a3'), column 'labels'", "index 7 out of range"]),
    "unparseable_cell": (lambda df: df.assign(labels=["0", "1", "[2, 3", "", "0", "3"]),
                         dict(label_encoding="indices", label_names=NAMES),
                         ["row 3 (id 'a3'), column 'labels'", "JSON list"]),
    "empty_item": (lambda df: df.assign(labels=["0", "1,,2", "2", "", "0", "3"]),
                   dict(label_encoding="indices", label_names=NAMES),
                   ["row 2 (id 'a2'), column 'labels'", "empty item"]),
    "duplicate_id": (lambda df: df.assign(id=["a1", "a2", "a3", "a2", "a5", "a6"]),
                     dict(label_encoding="names", label_names=NAMES),
                     ["row 4 (id 'a2'), column 'id'", "first seen in row 2"]),
    "empty_text": (lambda df: df.assign(text=["x", "y", "  ", "z", "w", "v"]),
                   dict(label_encoding="names", label_names=NAMES),
                   ["row 3 (id 'a3'), column 'text'", "blank text"]),
    "not_01": (lambda df: df.assign(joy=[1, 0, 2, 0, 1, 0]), dict(),
               ["row 3 (id 'a3'), column 'joy'", "expected 0 or 1"]),
    "missing_column": (lambda df: df.drop(columns=["text"]),
                       dict(label_encoding="names", label_names=NAMES),
                       ["train.csv, header", "no column 'text'", "data.text_column"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_refused_with_one_error_line(tmp_path, case):
    spoil, keys, needles = BAD[case]
    df = frame("columns" if not keys else keys["label_encoding"])
    if keys.get("label_encoding") == "names":
        df["labels"] = [",".join(r[2]) for r in ROWS]
    spoil(df).to_csv(tmp_path / "train.csv", index=False)
    config = write_config(tmp_path, train_file="train.csv", id_column="id", **keys)
    before = snapshot(tmp_path)
    rc, out, err = run_cli(["train", "--config", config, "--run-dir", tmp_path / "run"])
    assert_refused(rc, out, err, needles, before, snapshot(tmp_path))


def test_a_grouping_naming_an_unknown_label_is_refused(tmp_path):
    frame("names").to_csv(tmp_path / "train.csv", index=False)
    (tmp_path / "groups.json").write_text(json.dumps({"positive": ["joy", "glee"]}))
    config = write_config(tmp_path, train_file="train.csv", id_column="id",
                          label_encoding="names", label_names=NAMES,
                          label_groups_file="groups.json")
    before = snapshot(tmp_path)
    rc, out, err = run_cli(["train", "--config", config, "--run-dir", tmp_path / "run"])
    assert_refused(rc, out, err, ["groups.json, group 'positive'", "unknown label 'glee'"],
                   before, snapshot(tmp_path))


def test_stratified_split_of_28_labels_on_43k_rows_is_quick():
    """GoEmotions' size (43,410 rows, 28 labels, 1.18 labels a row): the iterative
    stratification keeps each label's share in the validation part."""
    from kemo.data.examples import Examples
    from kemo.data.splits import train_val_split

    rng = np.random.default_rng(0)
    n, c = 43_410, 28
    rates = np.geomspace(0.3, 0.002, c)
    labels = (rng.random((n, c)) < rates).astype("float32")
    ex = Examples(np.arange(n).astype(str).astype(object), np.full(n, "t", object),
                  np.full(n, "eng", object), labels, np.ones_like(labels),
                  tuple(f"l{j}" for j in range(c)))
    t0 = time.time()
    train, val = train_val_split(ex, 0.1, 0)
    seconds = time.time() - t0
    assert len(val) == pytest.approx(n * 0.1, abs=2)
    share = val.labels.sum(0) / labels.sum(0)
    assert np.all(np.abs(share - 0.1) < 0.02), share
    assert seconds < 30, seconds


GOEMOTIONS = ROOT.parent / "shared" / "data" / "goemotions"
TINY_MODEL = ["model.preset=\"\"", "model.num_layers=1", "model.hidden_dim=32",
              "model.intermediate_dim=64", "model.num_heads=2", "model.vocabulary_size=2000",
              "model.sequence_length=32", "data.length_buckets=[]", "train.epochs=1",
              "train.batch_size=32", "train.learning_rate=1e-3"]


@pytest.fixture(scope="module")
def goemotions_sample(tmp_path_factory):
    """GoEmotions' own files cut to 400 train / 80 dev / 40 test rows, in their shape
    (TSV, no header, label indices into emotions.txt; test's label column empty)."""
    if not (GOEMOTIONS / "train.tsv").is_file():
        pytest.fail(f"GoEmotions not found at {GOEMOTIONS}")
    root = tmp_path_factory.mktemp("goemotions")
    for split, n in (("train", 400), ("dev", 80), ("test", 40)):
        lines = (GOEMOTIONS / f"{split}.tsv").read_text(encoding="utf-8").splitlines()
        (root / f"{split}.tsv").write_text("\n".join(lines[:n]) + "\n", encoding="utf-8")
    for name in ("emotions.txt", "ekman_mapping.json"):
        (root / name).write_bytes((GOEMOTIONS / name).read_bytes())
    return root


def test_28_labels_round_trip_train_predict_evaluate_report_export(goemotions_sample, tmp_path):
    """configs/goemotions.toml on a GoEmotions sample with a tiny random model: every
    command takes the 28 labels by name, in emotions.txt's order."""
    names = (GOEMOTIONS / "emotions.txt").read_text().split()
    run = tmp_path / "run"
    sets = [a for s in TINY_MODEL + [f"data.data_dir=\"{goemotions_sample}\""]
            for a in ("--set", s)]
    rc, out, err = run_cli(["train", "--config", ROOT / "configs" / "goemotions.toml",
                            "--run-dir", run, *sets])
    assert rc == 0, err[-3000:]
    report = json.loads((run / "report.json").read_text())
    assert list(report["dev"]["tuned_thresholds"]["overall"]["per_label"]) == names
    assert json.loads((run / "thresholds.json").read_text())["label_names"] == names
    dev_pred = run / "predictions" / "dev" / "dev.tsv"  # the dataset's own shape
    assert not (run / "predictions" / "dev" / "submission.zip").exists()
    pred = pd.read_csv(dev_pred, sep="\t", header=None, dtype=str, keep_default_na=False)
    gold = pd.read_csv(goemotions_sample / "dev.tsv", sep="\t", header=None, dtype=str,
                       keep_default_na=False)
    assert pred[0].tolist() == gold[0].tolist() and pred[2].tolist() == gold[2].tolist()
    assert all(all(0 <= int(i) < 28 for i in cell.split(",") if i) for cell in pred[1])

    rc, out, err = run_cli(["predict", run, "--split", "test"])
    assert rc == 0, err
    test_pred = run / "predictions" / "test" / "test.tsv"
    probs = pd.read_csv(run / "predictions" / "test" / "test.probs.csv")
    assert len(probs) == 40 and list(probs.columns) == ["id"] + [f"p_{n}" for n in names]
    onehot = pd.read_csv(run / "predictions" / "test" / "test.labels.csv", dtype={"id": str})
    shaped = pd.read_csv(test_pred, sep="\t", header=None, dtype=str, keep_default_na=False)
    assert list(onehot.columns) == ["id"] + names and onehot["id"].tolist() == shaped[2].tolist()
    assert [",".join(str(j) for j in np.flatnonzero(row)) for row in onehot[names].to_numpy()] \
        == shaped[1].tolist()  # the same decisions as test.tsv's label indices

    mine = tmp_path / "mine.tsv"  # a file of the user's in the dataset's shape
    mine.write_text("What a lovely surprise\t\tm1\nI am so angry\t\tm2\n")
    rc, out, err = run_cli(["predict", run, mine])
    assert rc == 0, err
    got = pd.read_csv(run / "predictions" / "files" / "mine.tsv", sep="\t", header=None,
                      dtype=str, keep_default_na=False)
    assert got[2].tolist() == ["m1", "m2"] and got[0].tolist()[1] == "I am so angry"
    assert (run / "predictions" / "files" / "mine.probs.csv").is_file()

    rc, out, err = run_cli(["evaluate", dev_pred, "--config", run, "--split", "dev"])
    assert rc == 0, err
    dev_f1 = report["dev"]["tuned_thresholds"]["overall"]["macro"]["f1"]
    assert f"macro-F1 over all rows: {dev_f1:.4f}" in out  # the same decisions, rescored
    rc, out, err = run_cli(["evaluate", run / "predictions" / "dev" / "dev.labels.csv",
                            "--config", run, "--split", "dev"])
    assert rc == 0, err
    assert f"macro-F1 over all rows: {dev_f1:.4f}" in out  # and as id + 0/1 columns
    rc, out, err = run_cli(["evaluate", test_pred, "--config", run, "--split", "train"])
    assert rc == 2 and "no prediction for id" in err  # test ids are not train's

    rc, out, err = run_cli(["report", run])
    assert rc == 0, err
    page = (run / "report" / "index.html").read_text()
    assert all(n in page for n in names)

    rc, out, err = run_cli(["export", run, "--out", tmp_path / "export", "--no-benchmark"])
    assert rc == 0, err
    info = json.loads((tmp_path / "export" / "export.json").read_text())
    assert info["label_names"] == names and len(info["thresholds"]) == 28
    served = serve_saved_model(tmp_path / "export" / "saved_model",
                               ["Thank you so much!", "This is awful."], tmp_path)
    assert np.shape(served["probs"]) == np.shape(served["decisions"]) == (2, 28)
    assert served["blocked"] == []


def test_several_datasets_in_one_run_keep_their_own_label_masks(tmp_path):
    """`data.extra_datasets`: the extra rows only train, the labels are the union (a
    label a dataset lacks is unknown for its rows), validation and dev stay the
    primary's, and `data.dataset_temperature` tempers the datasets' shares."""
    from kemo.data.splits import load_data
    from kemo.training.sampling import row_weights

    rng = np.random.default_rng(0)
    primary = pd.DataFrame({"id": [f"p{i}" for i in range(40)],
                            "text": [f"primary text {i}" for i in range(40)],
                            "joy": rng.integers(0, 2, 40), "fear": rng.integers(0, 2, 40)})
    primary.to_csv(tmp_path / "primary.csv", index=False)
    primary.head(10).to_csv(tmp_path / "primary_dev.csv", index=False)
    extra = pd.DataFrame({"text": [f"extra text {i}" for i in range(160)],
                          "labels": [["joy", "anger", ""][i % 3] for i in range(160)]})
    extra.to_csv(tmp_path / "extra.csv", index=False)
    extra_config = write_config(tmp_path, "extra.toml", train_file="extra.csv",
                                label_encoding="names", label_names=["joy", "anger"])
    config = write_config(tmp_path, train_file="primary.csv", dev_file="primary_dev.csv",
                          id_column="id", val_fraction=0.25,
                          extra_datasets=[str(extra_config)], dataset_temperature=1000.0)
    alone = load_data(load_config(write_config(tmp_path, "alone.toml", train_file="primary.csv",
                                               id_column="id", val_fraction=0.25)), None)
    cfg = load_config(config)
    splits = load_data(cfg, None)
    assert splits.train.label_names == ("anger", "fear", "joy")  # Track A's names: its order
    src = splits.train_sources
    assert np.bincount(src).tolist() == [30, 160]
    assert list(splits.val.ids) == list(alone.val.ids)  # validation: the primary's rows
    np.testing.assert_array_equal(splits.train.mask[src == 0], [[0, 1, 1]] * 30)
    np.testing.assert_array_equal(splits.train.mask[src == 1], [[1, 0, 1]] * 160)
    np.testing.assert_array_equal(splits.val.mask[:, 0], 0)  # anger unknown for primary rows
    assert splits.dev.label_names == splits.train.label_names
    share = row_weights(cfg, splits.train, src)[src == 0].sum()
    assert share == pytest.approx(0.5, abs=0.01)  # T = 1000: about one half each
    cfg.data.dataset_temperature = 1.0
    assert row_weights(cfg, splits.train, src) is None  # no weighting at all: as read
    run = tmp_path / "run"
    rc, out, err = run_cli(["train", "--config", config, "--run-dir", run,
                            *[a for s in TINY_MODEL for a in ("--set", s)]])
    assert rc == 0, err[-3000:]
    assert "rows per dataset and epoch" in out
    assert json.loads((run / "thresholds.json").read_text())["label_names"] == [
        "anger", "fear", "joy"]


def test_validating_on_dev_says_dev_is_not_held_out(goemotions_sample, tmp_path):
    """`data.validation = "dev"`: train keeps every row, thresholds and early stopping
    use dev, and report.json, thresholds.json and the console say dev is not held out."""
    run = tmp_path / "run"
    sets = TINY_MODEL + [f"data.data_dir=\"{goemotions_sample}\"", "data.validation=\"dev\"",
                         "data.label_groups_file=\"ekman_mapping.json\""]
    rc, out, err = run_cli(["train", "--config", ROOT / "configs" / "goemotions.toml",
                            "--run-dir", run, *[a for s in sets for a in ("--set", s)]])
    assert rc == 0, err[-3000:]
    assert "validation (dev, NOT held out)" in out and "400 train" in out
    report = json.loads((run / "report.json").read_text())
    assert "NOT held out" in report["meta"]["validation"]
    assert report["meta"]["train_rows"] == 400 and report["meta"]["val_rows"] == 80
    assert json.loads((run / "thresholds.json").read_text())["fitted_on"] == \
        "dev split (not held out)"
    names = json.loads((run / "thresholds.json").read_text())["label_names"]
    assert names == ["anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral"]
