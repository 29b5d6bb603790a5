"""Reading one table file of a dataset (CSV, TSV, JSON Lines or Parquet) into `Examples`.

The file is read by pandas (Parquet through pyarrow); every cell is then checked, so a
fault stops with one `InputError` naming the file, the 1-based data row and the column:
a blank text, a duplicated id, a 0/1 label cell holding something else, a label list
that does not parse, an unknown label name, an index out of range. Labels come either
as one 0/1 column per label (`encoding="columns"`) or as one column holding a list of
label names (`"names"`) or of 0-based indices into the label names (`"indices"`): a
string split at `separator` (`"0,15"`), a JSON list string (`'["calm", "tense"]'`) or,
in JSON Lines and Parquet, a real list. An empty list cell means "no label".

Example:
    spec = TableSpec(text="text", id="id", encoding="indices", labels_column="labels")
    frame = read_table(Path("dev.tsv"), "tsv", header=False, columns=["text", "labels", "id"])
    ex = table_examples(frame, Path("dev.tsv"), spec, label_names, labelled=True)
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kemo.data.examples import Examples
from kemo.errors import InputError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
           ".parquet": "parquet", ".pq": "parquet"}


@dataclass
class TableSpec:
    """Which columns of a table file hold what (see the module docstring)."""

    text: str = "text"
    id: str = ""  # empty: the 1-based row number
    language_column: str = ""  # empty: every row is `language`
    language: str = "und"
    encoding: str = "columns"  # "columns", "names" or "indices"
    label_columns: tuple[str, ...] = ()  # "columns": empty = every other column
    labels_column: str = "labels"
    separator: str = ","

    def own_columns(self) -> set[str]:
        return {c for c in (self.text, self.id, self.language_column) if c}


def table_format(path: Path, given: str = "") -> str:
    """`given`, else the format its extension names; InputError if neither says."""
    if given:
        return given
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: cannot tell the format from the extension "
                         f"{path.suffix or '(none)'!r}; set config key 'data.format' "
                         "(csv, tsv, jsonl or parquet)")
    return fmt


def read_table(path: Path, fmt: str, header: bool = True, columns=()) -> pd.DataFrame:
    """The file as a DataFrame (csv/tsv: every cell a string, blanks ""); with
    `header=False` its columns are named `columns`, in file order."""
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        if fmt in ("csv", "tsv"):
            df = _read_delimited(path, "," if fmt == "csv" else "\t", header, columns)
        elif fmt == "jsonl":
            df = _read_json_lines(path)
        else:
            df = pd.read_parquet(path)
    except InputError:
        raise
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not valid UTF-8 (byte {e.start})") from None
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: empty file") from None
    except (ValueError, OSError, ImportError) as e:  # ParserError, ArrowInvalid are ValueErrors
        raise InputError(f"{path}: cannot read as {fmt} ({_first_line(e)})") from None
    if len(df) == 0:
        raise InputError(f"{path}: no data rows")
    names = [str(c) for c in df.columns]
    twice = sorted({c for c in names if names.count(c) > 1})
    if twice:
        raise InputError(f"{path}, header: duplicated column names ({', '.join(twice)})")
    df.columns = names
    return df.reset_index(drop=True)


def _read_delimited(path: Path, sep: str, header: bool, columns) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        df = pd.read_csv(path, sep=sep, header=0 if header else None,
                         names=None if header else list(columns), dtype=str,
                         keep_default_na=False, index_col=False, encoding="utf-8-sig",
                         skip_blank_lines=True)
    if header:
        mangled = [c for c in df.columns if c not in _header(path, sep)]
        if mangled:  # pandas renames a repeated column "x" to "x.1"
            raise InputError(f"{path}, header: duplicated column names "
                             f"({', '.join(sorted({c.rsplit('.', 1)[0] for c in mangled}))})")
    return df


def _header(path: Path, sep: str) -> list[str]:
    import csv

    with open(path, encoding="utf-8-sig", newline="") as f:
        return next(csv.reader(f, delimiter=sep), [])


def _read_json_lines(path: Path) -> pd.DataFrame:
    """One JSON object per line; a line that is not one is named."""
    rows = []
    with open(path, encoding="utf-8-sig") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}, line {number}: not a JSON object ({e.msg})") from None
            if not isinstance(row, dict):
                raise InputError(f"{path}, line {number}: expected a JSON object, got "
                                 f"{type(row).__name__}")
            rows.append(row)
    return pd.DataFrame.from_records(rows)


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def table_examples(df: pd.DataFrame, path: Path, spec: TableSpec, label_names,
                   labelled: bool) -> Examples:
    """`Examples` of a table read by `read_table`, every cell checked (module docstring).

    `label_names`: the dataset's labels, in order (with `encoding="columns"` and none
    given: the label columns). `labelled=False`: a split without gold (its label cells
    are ignored, whatever they hold; `has_labels` is False)."""
    columns = list(df.columns)
    for key, column in (("data.text_column", spec.text), ("data.id_column", spec.id),
                        ("data.language_column", spec.language_column)):
        if column and column not in columns:
            raise InputError(f"{path}, header: no column {column!r} (config key {key!r}; "
                             f"columns: {', '.join(columns)})")
    ids = (_cells(df[spec.id]) if spec.id
           else np.array([str(i) for i in range(1, len(df) + 1)], dtype=object))
    fail = _Failure(path, ids)
    texts = _cells(df[spec.text])
    blank = np.flatnonzero([not t.strip() for t in texts])
    if len(blank):
        fail(blank[0], spec.text, "blank text")
    if spec.id:
        _check_ids(ids, spec.id, fail)
    langs = (_cells(df[spec.language_column]) if spec.language_column
             else np.full(len(df), spec.language, dtype=object))
    if spec.language_column:
        empty = np.flatnonzero([not v.strip() for v in langs])
        if len(empty):
            fail(empty[0], spec.language_column, "blank language code")
    names = tuple(label_names)
    labels = np.zeros((len(df), len(names)), "float32")
    if labelled and spec.encoding == "columns":
        labels = _column_labels(df, names, fail)
    elif labelled:
        labels = _list_labels(df, spec, names, fail)
    mask = np.ones_like(labels)
    return Examples(ids, texts, langs, labels, mask, names, has_labels=labelled)


def label_columns(df: pd.DataFrame, path: Path, spec: TableSpec) -> tuple[str, ...]:
    """The 0/1 label columns of a table: `spec.label_columns`, each present, or every
    column that is not text, id or language."""
    if spec.label_columns:
        missing = [c for c in spec.label_columns if c not in df.columns]
        if missing:
            raise InputError(f"{path}, header: no label column {missing[0]!r} (config key "
                             f"'data.label_columns'; columns: {', '.join(df.columns)})")
        return tuple(spec.label_columns)
    found = tuple(c for c in df.columns if c not in spec.own_columns())
    if not found:
        raise InputError(f"{path}, header: no label columns (every column besides "
                         f"{', '.join(sorted(spec.own_columns()))} is a 0/1 label)")
    return found


class _Failure:
    """Raises the InputError of one cell: file, row, id, column."""

    def __init__(self, path: Path, ids):
        self.path, self.ids = path, ids

    def __call__(self, row: int, column: str, what: str):
        raise InputError(f"{self.path}, row {int(row) + 1} (id {self.ids[row]!r}), "
                         f"column '{column}': {what}")


def _cells(series: pd.Series) -> np.ndarray:
    """A column as strings (missing values: "")."""
    return np.array(["" if _missing(v) else str(v) for v in series], dtype=object)


def _missing(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return False


def _check_ids(ids: np.ndarray, column: str, fail) -> None:
    blank = np.flatnonzero([not i.strip() for i in ids])
    if len(blank):
        fail(blank[0], column, "blank id")
    seen = {}
    for row, rid in enumerate(ids):
        if rid in seen:
            fail(row, column, f"duplicated id (first seen in row {seen[rid] + 1})")
        seen[rid] = row


_ONES, _ZEROS = {"1", "1.0", "true", "True"}, {"0", "0.0", "false", "False"}


def _column_labels(df: pd.DataFrame, names, fail) -> np.ndarray:
    labels = np.zeros((len(df), len(names)), "float32")
    for j, name in enumerate(names):
        if name not in df.columns:
            raise InputError(f"{fail.path}, header: no label column {name!r} (the dataset's "
                             f"labels: {', '.join(names)})")
        for row, v in enumerate(df[name]):
            text = "" if _missing(v) else str(v).strip()
            if text in _ONES:
                labels[row, j] = 1.0
            elif text not in _ZEROS:
                fail(row, name, f"expected 0 or 1, got {v!r}")
    return labels


def _list_labels(df: pd.DataFrame, spec: TableSpec, names, fail) -> np.ndarray:
    column = spec.labels_column
    if column not in df.columns:
        raise InputError(f"{fail.path}, header: no column {column!r} (config key "
                         f"'data.labels_column'; columns: {', '.join(df.columns)})")
    labels = np.zeros((len(df), len(names)), "float32")
    index = {n: j for j, n in enumerate(names)}
    for row, cell in enumerate(df[column]):
        for item in _list_items(cell, spec.separator, row, column, fail):
            labels[row, _label_index(item, spec.encoding, names, index, row, column, fail)] = 1
    return labels


def _list_items(cell, separator: str, row: int, column: str, fail) -> list:
    """The items of one list cell: [] for an empty cell."""
    if isinstance(cell, (list, tuple, np.ndarray)):
        return list(cell)
    if _missing(cell):
        return []
    if isinstance(cell, (int, np.integer)) and not isinstance(cell, bool):
        return [int(cell)]
    if not isinstance(cell, str):
        fail(row, column, f"expected a list of labels, got {cell!r}")
    text = cell.strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as e:
            fail(row, column, f"cannot parse {cell!r} as a JSON list ({e.msg})")
        if not isinstance(items, list):
            fail(row, column, f"expected a list of labels, got {cell!r}")
        return items
    items = [t.strip() for t in text.split(separator)]
    if "" in items:
        fail(row, column, f"cannot parse {cell!r}: an empty item (separator {separator!r})")
    return items


def _label_index(item, encoding: str, names, index: dict, row: int, column: str, fail) -> int:
    if encoding == "names":
        if not isinstance(item, str) or item not in index:
            fail(row, column, f"unknown label {item!r} (labels: {', '.join(names)})")
        return index[item]
    if isinstance(item, str) and item.lstrip("-").isdigit():
        item = int(item)
    if isinstance(item, bool) or not isinstance(item, (int, np.integer)):
        fail(row, column, f"cannot parse {item!r} as a label index")
    if not 0 <= item < len(names):
        fail(row, column, f"label index {item} out of range (0..{len(names) - 1}: "
                          f"{len(names)} labels)")
    return int(item)


def found_label_names(df: pd.DataFrame, path: Path, spec: TableSpec) -> tuple[str, ...]:
    """The label names a list column holds (encoding "names" without given names),
    sorted."""
    if spec.labels_column not in df.columns:
        raise InputError(f"{path}, header: no column {spec.labels_column!r} (config key "
                         f"'data.labels_column'; columns: {', '.join(df.columns)})")
    fail = _Failure(path, np.arange(1, len(df) + 1).astype(str))
    found = set()
    for row, cell in enumerate(df[spec.labels_column]):
        for item in _list_items(cell, spec.separator, row, spec.labels_column, fail):
            if not isinstance(item, str) or not item:
                fail(row, spec.labels_column, f"expected a label name, got {item!r}")
            found.add(item)
    if not found:
        raise InputError(f"{path}, column '{spec.labels_column}': no label names in any row")
    return tuple(sorted(found))
