"""Reading and validating BRIGHTER / SemEval-2025 Task 11 Track A CSV files.

Layout: `<data_dir>/{train,dev,test}/<lang>.csv` with columns `id,text,<labels>`.
Languages carry different label columns (`eng` lacks disgust, `afr` lacks surprise).
When several languages are read together, the label space is the union of their
columns in the fixed order of `LABELS`; a label that a language's file lacks is
*unknown* for its rows: `Examples.mask` is 0 there, and losses and metrics skip it.

Example:
    train = load_split("../shared/data/brighter/track_a", "train", ["eng", "afr"])
    train.label_names   # ('anger', 'disgust', 'fear', 'joy', 'sadness', 'surprise')
    train.mask[0]       # eng row: disgust unknown -> [1, 0, 1, 1, 1, 1]
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from kemo.brighter_names import LABELS, LANGUAGES, label_order  # noqa: F401 (re-exported)
from kemo.data.examples import UNKNOWN, Examples, concat_examples  # noqa: F401 (re-exported)
from kemo.errors import InputError

SPLITS = ("train", "dev", "test")
DATA_DIR_ENV = "KEMO_DATA_DIR"
RECORDED = "the run's run.json"  # the last source of a resumed run's data root


def track_a_label_columns(header) -> tuple[str, ...]:
    """The columns of `header` that are Track A labels, in file order (none: not a
    Track A file)."""
    return tuple(str(c) for c in header if c in LABELS)


def is_language(code) -> bool:
    """Whether `code` is one of the 28 BRIGHTER language codes."""
    return code in LANGUAGES


def resolve_data_dir(data_dir: str | os.PathLike | None = None,
                     configured: str | os.PathLike | None = None,
                     recorded: str | None = None) -> Path:
    """The Track A root, by kemo's one data-root rule: `data_dir` (the `--data-dir`
    flag), else `$KEMO_DATA_DIR`, else `configured` (a config's `data.data_dir`), else
    `recorded` (where a run's training read its data, as its run.json says: asked when
    a command is given a run directory, `train --resume`, `predict`, `evaluate --config
    RUN`, `report`, `ensemble`); it must hold train/, dev/ or test/.

    Every command resolves its data through this rule, and a run's `config.toml` keeps
    the config's own `data.data_dir` (empty unless the config set one), so a run copied
    to another machine reads that machine's `$KEMO_DATA_DIR`.

    Example:
        resolve_data_dir(None, cfg.data.data_dir)   # $KEMO_DATA_DIR wins over the config
    """
    candidates = (("--data-dir", data_dir), (f"${DATA_DIR_ENV}", os.environ.get(DATA_DIR_ENV)),
                  ("config key 'data.data_dir'", configured), (RECORDED, recorded))
    source, value = next(((name, v) for name, v in candidates if v), (None, None))
    if not value:
        raise InputError(
            f"no data directory: pass --data-dir or set ${DATA_DIR_ENV} (or the config key "
            "data.data_dir) to the folder holding train/, dev/ and test/ "
            "(e.g. ../shared/data/brighter/track_a)"
        )
    path = Path(value)
    if not path.is_dir():
        raise InputError(f"data directory {path}: not found (from {source})")
    if not any((path / s).is_dir() for s in SPLITS):
        raise InputError(f"data directory {path}: holds none of {', '.join(SPLITS)}/ "
                         f"(from {source})")
    return path


def split_file(root, split: str, lang: str) -> Path:
    """The Track A file of one split and language: `<root>/<split>/<lang>.csv`.

    Example:
        split_file("../shared/data/brighter/track_a", "dev", "eng")  # .../dev/eng.csv
    """
    return Path(root) / split / f"{lang}.csv"


def check_language(lang, where: str = "config key 'data.languages'") -> str:
    """`lang` if it is a BRIGHTER language code, else InputError naming `where` (the
    config key, option or file field it came from)."""
    if lang not in LANGUAGES:
        raise InputError(f"{where}: unknown language code {lang!r} "
                         f"(known: {' '.join(LANGUAGES)})")
    return lang


def check_languages(languages, where: str = "config key 'data.languages'") -> list[str]:
    """`languages` checked (`check_language`), duplicates dropped, order kept."""
    if not languages:
        raise InputError(f"{where}: expected at least one language code")
    return list(dict.fromkeys(check_language(lang, where) for lang in languages))


def decode_csv(path: Path, data: bytes | None = None) -> str:
    """The text of a CSV file (or of `data`, read from it); a leading BOM is dropped.

    Raises `InputError` for a missing, unreadable, non-UTF-8 (naming the line) or
    empty file.
    """
    if data is None and not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        raw = path.read_bytes() if data is None else data
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise InputError(f"{path}, line {line}: not valid UTF-8 ({e.reason})") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror})") from None
    if not text.strip():
        raise InputError(f"{path}: empty file (expected a header row and data rows)")
    return text


def parse_csv(path: Path, text: str) -> pd.DataFrame:
    r"""`text` as a DataFrame of strings, one column per header field; blank cells stay "".

    The one CSV parse behind every reader (train/dev/test files, predict inputs, gold
    and prediction files). Quoted fields may hold commas, quotes ("") and line breaks;
    lines may end in LF, CRLF or CR; blank lines are skipped. Every data row must have
    the header's field count (a trailing comma would otherwise shift every column), and
    no column ever becomes the index. `df.attrs["header"]` keeps the header as written
    (the column names get pandas-style ".1" suffixes for duplicates). InputError names
    the file, the 1-based data row and its line.

    Example:
        parse_csv(Path("x.csv"), 'id,text\n1,"a, b"\n')["text"].tolist()   # ['a, b']
    """
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))  # long texts are fine
    lines = io.StringIO(text, newline="").readlines()  # split as the reader splits
    reader = csv.reader(iter(lines), strict=True)
    records, starts, start = [], [], 1
    try:
        for record in reader:
            if len(record) > 1 or (record and record[0].strip()):  # else a blank line
                records.append(record)
                starts.append(start)
            start = reader.line_num + 1
    except csv.Error as e:
        where = f"row {len(records)}" if records else "header"
        if str(e) == "unexpected end of data":
            opened = _open_quote_line(lines, start)
            raise InputError(f"{path}, {where} (line {start}): unterminated quote: the quoted "
                             f"field opened on line {opened} never closes") from None
        raise InputError(f"{path}, {where} (line {reader.line_num}): malformed quoting ({e}; "
                         'a quoted field must end at a comma or line end, "" inside it '
                         "stands for a quote)") from None
    if not records:
        raise InputError(f"{path}: empty file (expected a header row and data rows)")
    header = records[0]
    for row, (record, line) in enumerate(zip(records[1:], starts[1:]), 1):
        if len(record) != len(header):
            hint = ("" if len(record) < len(header) else " (a trailing comma?)"
                    if len(record) == len(header) + 1 and record[-1] == ""
                    else " (a text with an unquoted comma?)")
            raise InputError(f"{path}, row {row} (line {line}): header has {len(header)} "
                             f"fields, row {row} has {len(record)}{hint}")
    df = pd.DataFrame(records[1:], columns=_column_names(header), dtype=str)
    df.attrs["header"] = list(header)
    return df


def _column_names(header) -> list[str]:
    """pandas' names for a header: blank -> "Unnamed: i", repeats -> "name.1", ..."""
    names = []
    for i, name in enumerate(header):
        name = name or f"Unnamed: {i}"
        base, k = name, 0
        while name in names:
            k += 1
            name = f"{base}.{k}"
        names.append(name)
    return names


def _open_quote_line(lines, first: int) -> int:
    """The line (1-based) of the quote that never closes, in a record starting on `first`."""
    opened, quoted, field_start = first, False, True
    for number, line in enumerate(lines[first - 1:], first):
        i = 0
        while i < len(line):
            c = line[i]
            if quoted and c == '"':
                if line[i + 1:i + 2] == '"':
                    i += 1
                else:
                    quoted = False
            elif not quoted and c == '"' and field_start:
                quoted, opened = True, number
            field_start = not quoted and c in ",\r\n"
            i += 1
    return opened


def read_track_a_csv(path: str | os.PathLike, labelled: bool = True,
                     frame: pd.DataFrame | None = None, max_value: int = 1) -> pd.DataFrame:
    """Read one Track A CSV, checking every cell; returns id, text and label columns.

    Raises `InputError` naming the file, row (1-based data row) and column for a
    missing or unexpected column, a label not in {0, 1}, a blank text or id,
    duplicated ids, and for an empty, unreadable or non-UTF-8 file. With
    `labelled=False` (test files) label cells may be blank. `frame`: the file already
    parsed by `parse_csv` (it is then checked, not read again). `max_value` > 1: the
    cells are intensities, integers 0..max_value (Track B), anything else refused.
    """
    path = Path(path)
    df = parse_csv(path, decode_csv(path)) if frame is None else frame
    header = df.attrs["header"]
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated and "id" in header and "text" in header:  # else: "missing column" below
        raise InputError(f"{path}, header: duplicated column names ({', '.join(duplicated)})")
    columns = [str(c) for c in df.columns]
    for required in ("id", "text"):
        if required not in columns:
            raise InputError(
                f"{path}, header: missing column '{required}' (found: {', '.join(columns)}; "
                f"expected id,text,<labels among {', '.join(LABELS)}>)"
            )
    label_cols = [c for c in columns if c not in ("id", "text")]
    for c in label_cols:
        if c not in LABELS:
            raise InputError(
                f"{path}, header: unexpected column {c!r} (expected labels among "
                f"{', '.join(LABELS)})"
            )
    if not label_cols:
        raise InputError(f"{path}, header: no label columns (expected some of {', '.join(LABELS)})")
    if len(df) == 0:
        raise InputError(f"{path}: header only, no data rows")

    def fail(row: int, column: str, what: str):
        rid = df["id"].iat[row]
        raise InputError(f"{path}, row {row + 1} (id {rid!r}), column '{column}': {what}")

    ids = df["id"].str.strip()
    for row in np.flatnonzero(ids == ""):
        fail(row, "id", "blank id")
    dup = ids.duplicated(keep="first")
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        first = int(np.flatnonzero(ids == ids.iat[row])[0])
        fail(row, "id", f"duplicated id (first seen in row {first + 1})")
    blank = df["text"].str.strip() == ""
    if labelled and blank.any():
        fail(int(np.flatnonzero(blank)[0]), "text", "blank text")
    allowed = [str(v) for v in range(max_value + 1)]
    expected = "0 or 1" if max_value == 1 else f"an intensity 0..{max_value} (an integer)"
    for c in label_cols:
        cells = df[c].str.strip()
        ok = cells.isin(allowed) | (~labelled & (cells == ""))
        if not ok.all():
            row = int(np.flatnonzero(~ok)[0])
            fail(row, c, f"expected {expected}, got {df[c].iat[row]!r}")
        df[c] = cells
    df["id"] = ids
    return df


def load_split(data_dir, split: str, languages, max_value: int = 1) -> Examples:
    """Load `split` ("train", "dev" or "test") for `languages` from the Track A root
    (`max_value` > 1: Track B's intensities 0..max_value, see `read_track_a_csv`)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    root = resolve_data_dir(data_dir)
    languages = check_languages(languages)
    labelled = split != "test"
    frames = []
    for lang in languages:
        df = read_track_a_csv(split_file(root, split, lang), labelled=labelled,
                              max_value=max_value)
        frames.append((lang, df))
    present = {c for _, df in frames for c in df.columns}
    label_names = tuple(name for name in LABELS if name in present)
    ids, texts, langs, labels, mask = [], [], [], [], []
    for lang, df in frames:
        n = len(df)
        ids.append(df["id"].to_numpy(dtype=object))
        texts.append(df["text"].to_numpy(dtype=object))
        langs.append(np.full(n, lang, dtype=object))
        lab = np.zeros((n, len(label_names)), "float32")
        msk = np.zeros((n, len(label_names)), "float32")
        for j, name in enumerate(label_names):
            if name in df.columns:
                msk[:, j] = 1.0
                if labelled:
                    lab[:, j] = df[name].astype("float32").to_numpy()
        labels.append(lab)
        mask.append(msk)
    return Examples(
        np.concatenate(ids), np.concatenate(texts), np.concatenate(langs),
        np.concatenate(labels), np.concatenate(mask), label_names, has_labels=labelled,
    )
