"""BRIGHTER Track A reading: label space, masks, splits and CSV validation."""

from pathlib import Path

import numpy as np
import pytest

from kemo.data.brighter import DATA_DIR_ENV, LABELS, load_split, read_track_a_csv, resolve_data_dir
from kemo.data.splits import train_val_split
from kemo.errors import InputError

ALL_SIX = ("anger", "disgust", "fear", "joy", "sadness", "surprise")


@pytest.fixture(scope="module")
def train3(data_dir):
    return load_split(data_dir, "train", ["eng", "afr", "hin"])


# ---------------------------------------------------------------- real data

def test_label_space_is_union_in_fixed_order(train3):
    assert LABELS == ALL_SIX
    assert train3.label_names == ALL_SIX
    n = len(train3)
    assert train3.labels.shape == train3.mask.shape == (n, 6)
    assert train3.labels.dtype == train3.mask.dtype == np.float32
    assert len(train3.ids) == len(train3.texts) == len(train3.langs) == n
    assert set(np.unique(train3.langs)) == {"eng", "afr", "hin"}
    assert train3.has_labels


@pytest.mark.parametrize("lang, unknown", [("eng", "disgust"), ("afr", "surprise"), ("hin", None)])
def test_masks_per_language(train3, lang, unknown):
    rows = train3.langs == lang
    assert rows.sum() > 100
    expected = np.array([0.0 if name == unknown else 1.0 for name in ALL_SIX], "float32")
    np.testing.assert_array_equal(train3.mask[rows], np.broadcast_to(expected, (rows.sum(), 6)))
    assert train3.language_labels(lang) == tuple(n for n in ALL_SIX if n != unknown)


def test_y_is_minus_one_exactly_where_unknown(train3):
    y = train3.y
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y == -1, train3.mask == 0)
    known = train3.mask > 0
    np.testing.assert_array_equal(y[known], train3.labels[known])
    assert set(np.unique(y[known])) <= {0.0, 1.0}
    # labels of unknown cells are 0 (never used)
    assert (train3.labels[~known] == 0).all()
    # every known label has some positives in this data
    assert (train3.labels.sum(axis=0) > 0).all()


def test_ids_prefixed_by_language(train3):
    for i, lang in zip(train3.ids, train3.langs):
        assert i.startswith(f"{lang}_")
    assert len(set(train3.ids)) == len(train3)


def test_eng_alone_has_five_labels(data_dir):
    eng = load_split(data_dir, "train", ["eng"])
    assert eng.label_names == ("anger", "fear", "joy", "sadness", "surprise")
    assert (eng.mask == 1).all()
    assert (eng.y >= 0).all()


def test_duplicate_language_codes_are_read_once(data_dir):
    once = load_split(data_dir, "dev", ["eng"])
    twice = load_split(data_dir, "dev", ["eng", "eng"])
    assert len(once) == len(twice)


def test_test_split_is_unlabelled(data_dir):
    test = load_split(data_dir, "test", ["eng", "afr"])
    assert test.has_labels is False
    assert len(test) > 0
    assert (test.labels == 0).all()
    assert test.label_names == ALL_SIX


def test_bad_split_name(data_dir):
    with pytest.raises(ValueError):
        load_split(data_dir, "validation", ["eng"])


def test_unknown_language_code(data_dir):
    with pytest.raises(InputError, match="xxx") as e:
        load_split(data_dir, "train", ["eng", "xxx"])
    assert "data.languages" in str(e.value)
    with pytest.raises(InputError, match="data.languages"):
        load_split(data_dir, "train", [])


# ---------------------------------------------------------------- train/val split

def _positive_rate(ex):
    return (ex.labels * ex.mask).sum(axis=0) / np.maximum(ex.mask.sum(axis=0), 1)


def test_train_val_split_disjoint_and_complete(train3):
    train, val = train_val_split(train3, 0.15, seed=0)
    assert len(train) + len(val) == len(train3)
    assert not set(train.ids) & set(val.ids)
    assert set(train.ids) | set(val.ids) == set(train3.ids)
    assert 0.13 < len(val) / len(train3) < 0.17
    assert train.label_names == val.label_names == train3.label_names
    # rows keep their labels, masks and language
    by_id = {i: k for k, i in enumerate(train3.ids)}
    for part in (train, val):
        idx = np.array([by_id[i] for i in part.ids])
        np.testing.assert_array_equal(part.labels, train3.labels[idx])
        np.testing.assert_array_equal(part.mask, train3.mask[idx])
        np.testing.assert_array_equal(part.langs, train3.langs[idx])
        np.testing.assert_array_equal(part.texts, train3.texts[idx])


def test_train_val_split_seeded(train3):
    a_train, a_val = train_val_split(train3, 0.15, seed=3)
    b_train, b_val = train_val_split(train3, 0.15, seed=3)
    np.testing.assert_array_equal(a_val.ids, b_val.ids)
    np.testing.assert_array_equal(a_train.ids, b_train.ids)
    _, c_val = train_val_split(train3, 0.15, seed=4)
    assert set(c_val.ids) != set(a_val.ids)


@pytest.mark.parametrize("seed", [0, 1])
def test_train_val_split_stratified(train3, seed):
    train, val = train_val_split(train3, 0.15, seed=seed)
    for lang in ("eng", "afr", "hin"):
        tr, va = (p.subset(np.flatnonzero(p.langs == lang)) for p in (train, val))
        full = train3.subset(np.flatnonzero(train3.langs == lang))
        # each language keeps its rows, split in proportion
        assert len(tr) + len(va) == len(full)
        assert abs(len(va) / len(full) - 0.15) < 0.02, lang
        # positive rate per label in val is close to train (stratification)
        rt, rv = _positive_rate(tr), _positive_rate(va)
        known = full.mask.max(axis=0) > 0
        np.testing.assert_allclose(rv[known], rt[known], atol=0.02, err_msg=lang)
        # positive counts are split in proportion too (a random split would not be this tight)
        pos_full = (full.labels * full.mask).sum(axis=0)
        pos_val = (va.labels * va.mask).sum(axis=0)
        assert (np.abs(pos_val - 0.15 * pos_full) <= 2).all(), (lang, pos_val, 0.15 * pos_full)


# ---------------------------------------------------------------- resolve_data_dir

def test_resolve_data_dir_argument_and_env(data_dir, monkeypatch, tmp_path):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    assert resolve_data_dir(data_dir) == Path(data_dir)
    with pytest.raises(InputError, match=DATA_DIR_ENV):
        resolve_data_dir(None)
    monkeypatch.setenv(DATA_DIR_ENV, str(data_dir))
    assert resolve_data_dir(None) == Path(data_dir)
    assert resolve_data_dir("") == Path(data_dir)
    # the argument wins over the environment
    (tmp_path / "train").mkdir()
    assert resolve_data_dir(tmp_path) == tmp_path


def test_resolve_data_dir_missing(monkeypatch, tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(InputError, match="not found") as e:
        resolve_data_dir(missing)
    assert str(missing) in str(e.value)
    monkeypatch.setenv(DATA_DIR_ENV, str(missing))
    with pytest.raises(InputError, match="not found"):
        resolve_data_dir(None)
    # a directory without train/dev/test
    with pytest.raises(InputError, match="none of") as e:
        resolve_data_dir(tmp_path)
    assert str(tmp_path) in str(e.value)


def test_load_split_missing_language_file(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(InputError, match="file not found") as e:
        load_split(tmp_path, "train", ["eng"])
    assert str(tmp_path / "train" / "eng.csv") in str(e.value)


# ---------------------------------------------------------------- CSV validation

GOOD = (
    "id,text,anger,fear,joy\n"
    "a1,Hello there,0,1,0\n"
    'a2,"Quoted, with comma",1,0,0\n'
    "a3,Third row,0,0,1\n"
)


def _write(tmp_path, content, name="eng.csv"):
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def _replace_cell(row: int, column: str, value: str) -> str:
    """GOOD with data row `row` (1-based) column `column` set to `value`."""
    lines = GOOD.splitlines()
    header = lines[0].split(",")
    import csv
    import io

    rows = list(csv.reader(io.StringIO(GOOD)))
    rows[row][header.index(column)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def test_good_csv(tmp_path):
    df = read_track_a_csv(_write(tmp_path, GOOD))
    assert list(df.columns) == ["id", "text", "anger", "fear", "joy"]
    assert list(df["id"]) == ["a1", "a2", "a3"]
    assert df["text"].iat[1] == "Quoted, with comma"
    assert list(df["fear"]) == ["1", "0", "0"]


def test_bom_accepted(tmp_path):
    path = _write(tmp_path, b"\xef\xbb\xbf" + GOOD.encode())
    df = read_track_a_csv(path)
    assert list(df.columns) == ["id", "text", "anger", "fear", "joy"]
    assert list(df["id"]) == ["a1", "a2", "a3"]


def test_crlf_and_whitespace_around_labels_accepted(tmp_path):
    path = _write(tmp_path, GOOD.replace("\n", "\r\n").replace(",0,1,0", ", 0 ,1,0"))
    df = read_track_a_csv(path)
    assert list(df["anger"]) == ["0", "1", "0"]


@pytest.mark.parametrize("row, column, value", [
    (2, "fear", "2"),
    (1, "joy", "-1"),
    (3, "anger", "0.5"),
    (2, "anger", "yes"),
    (3, "fear", ""),  # blank label in a labelled split
])
def test_bad_label_value(tmp_path, row, column, value):
    path = _write(tmp_path, _replace_cell(row, column, value))
    with pytest.raises(InputError) as e:
        read_track_a_csv(path)
    msg = str(e.value)
    assert str(path) in msg
    assert f"row {row} " in msg
    assert f"id 'a{row}'" in msg
    assert f"column '{column}'" in msg
    assert repr(value) in msg


def test_blank_label_allowed_when_unlabelled(tmp_path):
    path = _write(tmp_path, _replace_cell(2, "fear", ""))
    df = read_track_a_csv(path, labelled=False)
    assert df["fear"].iat[1] == ""
    # but a bad value is still rejected in a test file
    path = _write(tmp_path, _replace_cell(2, "fear", "2"))
    with pytest.raises(InputError, match="row 2 .*column 'fear'"):
        read_track_a_csv(path, labelled=False)


def test_first_bad_row_is_reported(tmp_path):
    text = _replace_cell(3, "joy", "7").replace("a2,\"Quoted, with comma\",1", 'a2,"Quoted, with comma",x')
    path = _write(tmp_path, text)
    with pytest.raises(InputError, match=r"row 2 \(id 'a2'\), column 'anger'"):
        read_track_a_csv(path)


def test_blank_text(tmp_path):
    path = _write(tmp_path, _replace_cell(2, "text", "   "))
    with pytest.raises(InputError) as e:
        read_track_a_csv(path)
    msg = str(e.value)
    assert str(path) in msg and "row 2 " in msg and "column 'text'" in msg and "blank" in msg


def test_blank_id(tmp_path):
    path = _write(tmp_path, _replace_cell(3, "id", ""))
    with pytest.raises(InputError) as e:
        read_track_a_csv(path)
    msg = str(e.value)
    assert str(path) in msg and "row 3 " in msg and "column 'id'" in msg and "blank id" in msg


def test_duplicated_id(tmp_path):
    path = _write(tmp_path, _replace_cell(3, "id", "a1"))
    with pytest.raises(InputError) as e:
        read_track_a_csv(path)
    msg = str(e.value)
    assert str(path) in msg and "row 3 " in msg and "column 'id'" in msg
    assert "duplicated" in msg and "row 1" in msg


def test_missing_column(tmp_path):
    path = _write(tmp_path, GOOD.replace("id,text,", "id,body,"))
    with pytest.raises(InputError) as e:
        read_track_a_csv(path)
    msg = str(e.value)
    assert str(path) in msg and "header" in msg and "'text'" in msg and "missing" in msg
    path = _write(tmp_path, "text,anger\nhello,1\n")
    with pytest.raises(InputError, match="missing column 'id'"):
        read_track_a_csv(path)


def test_renamed_label_column(tmp_path):
    path = _write(tmp_path, GOOD.replace(",joy\n", ",happiness\n", 1))
    with pytest.raises(InputError) as e:
        read_track_a_csv(path)
    msg = str(e.value)
    assert str(path) in msg and "header" in msg and "'happiness'" in msg


def test_duplicated_label_column(tmp_path):
    path = _write(tmp_path, "id,text,joy,joy\na1,hi,0,1\n")
    with pytest.raises(InputError, match="header") as e:
        read_track_a_csv(path)
    assert str(path) in str(e.value)


def test_no_label_columns(tmp_path):
    path = _write(tmp_path, "id,text\na1,hi\n")
    with pytest.raises(InputError, match="no label columns") as e:
        read_track_a_csv(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_file(tmp_path, content):
    path = _write(tmp_path, content)
    with pytest.raises(InputError, match="empty file") as e:
        read_track_a_csv(path)
    assert str(path) in str(e.value)


def test_header_only(tmp_path):
    path = _write(tmp_path, "id,text,anger,fear,joy\n")
    with pytest.raises(InputError, match="header only") as e:
        read_track_a_csv(path)
    assert str(path) in str(e.value)


def test_invalid_utf8(tmp_path):
    data = GOOD.encode().replace(b"Third row", b"Third \xff\xfe row")
    path = _write(tmp_path, data)
    with pytest.raises(InputError, match="UTF-8") as e:
        read_track_a_csv(path)
    msg = str(e.value)
    assert str(path) in msg
    assert "line 4" in msg  # header is line 1, 'a3' is on line 4


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_track_a_csv(tmp_path / "nope.csv")


def test_bad_cell_in_multilanguage_load_names_file(tmp_path, data_dir):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "hin.csv").write_bytes((data_dir / "train" / "hin.csv").read_bytes())
    path = _write(tmp_path / "train", _replace_cell(2, "joy", "2"), name="afr.csv")
    with pytest.raises(InputError) as e:
        load_split(tmp_path, "train", ["hin", "afr"])
    msg = str(e.value)
    assert str(path) in msg and "row 2 " in msg and "column 'joy'" in msg
