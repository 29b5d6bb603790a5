"""Predictions for new texts, the official Track A submission layout, and its scorer.

Predicting (`predict_files`): each input CSV is either a Track A file (`<lang>.csv`
with columns id,text,<labels>; test files have blank labels) or a plain file with
columns id,text. For a Track A file the output is the official submission file
`pred_<lang>.csv` with the organisers' header, `id,<the language's own label columns,
in its file order, capitalised>` (eng: `id,Anger,Fear,Joy,Sadness,Surprise`), integer
0/1 at the run's tuned thresholds, every input id once, in input order; the
probabilities go to `probs_<lang>.csv` (id, p_<label> for every label of the model);
`submission.zip` holds `track_a/pred_<lang>.csv` for every language. A language label
the model was never trained on (e.g. afr's disgust for an eng-only model) is refused,
or written as 0 with `untrained="zero"` (`--untrained-labels zero`). A plain file gives
`<name>.predictions.csv` (id, p_<label>..., <label>...) over the model's labels.

Scoring (`score_submission`) follows the SemEval-2025 Task 11 organisers' scorer
(github.com/emotion-analysis-project/SemEval2025-Task11, Evaluation/utils.py):
header equal to the gold file's `id,<labels>` (case-insensitive, same order), rows
matched by id, `sklearn.metrics.f1_score(average="macro", zero_division=0)` over the
label columns per language (theirs leaves zero_division at its default, which scores 0
with a warning they silence); the overall score is the mean over languages. Where the
organisers' script would silently score something odd (a cell other than 0/1 counts as
an all-zero row; a duplicated id drops that row) this module refuses with `InputError`.

Example:
    run = load_run("runs/tiny")
    out = predict_files(run, split_files(data_dir, "test", ["eng"]), "runs/tiny/test")
    out["zip"]                                   # runs/tiny/test/submission.zip
    predict_files(run, split_files(data_dir, "dev", ["eng"]), "runs/tiny/dev")
    scores = score_submission("runs/tiny/dev/submission.zip", data_dir / "dev", ["eng"])
    scores["overall"]["macro_f1"]
"""

from __future__ import annotations

import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kemo.data.brighter import (
    LABELS, LANGUAGES, decode_csv, parse_csv, read_track_a_csv, resolve_data_dir,
)
from kemo.errors import InputError

SUBMISSION_FOLDER = "track_a"
ZIP_NAME = "submission.zip"
_PRED_NAME = re.compile(r"^pred_([a-z]+)(?:_a)?\.csv$")


# ---------------------------------------------------------------------------- inputs

def _read_csv_text(path: Path, data: bytes | None = None) -> pd.DataFrame:
    """All cells as strings; InputError for unreadable, non-UTF-8 or empty files."""
    return parse_csv(path, decode_csv(path, data))


def _check_ids(path, df: pd.DataFrame) -> pd.Series:
    ids = df["id"].str.strip()
    blank = np.flatnonzero(ids == "")
    if len(blank):
        raise InputError(f"{path}, row {blank[0] + 1}, column 'id': blank id")
    dup = ids.duplicated(keep="first")
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        first = int(np.flatnonzero(ids == ids.iat[row])[0])
        raise InputError(f"{path}, row {row + 1} (id {ids.iat[row]!r}), column 'id': "
                         f"duplicated id (first seen in row {first + 1})")
    return ids


def read_texts_csv(path, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """A plain input file: columns id and text (others ignored); returns id, text.
    `frame`: the file already parsed by `parse_csv` (then checked, not read again).

    Example: read_texts_csv("my_texts.csv")["text"].tolist()
    """
    path = Path(path)
    df = _read_csv_text(path) if frame is None else frame
    columns = [str(c) for c in df.columns]
    for required in ("id", "text"):
        if required not in columns:
            raise InputError(f"{path}, header: missing column '{required}' "
                             f"(found: {', '.join(columns)}; expected id,text)")
    if len(df) == 0:
        raise InputError(f"{path}: header only, no data rows")
    return pd.DataFrame({"id": _check_ids(path, df), "text": df["text"]})


@dataclass
class InputFile:
    """One CSV to predict: its rows and, for a Track A file, its language and labels."""

    path: Path
    ids: list[str]
    texts: list[str]
    lang: str | None = None  # set for Track A files
    label_columns: tuple[str, ...] = ()  # the file's own label columns, in file order

    @property
    def is_track_a(self) -> bool:
        return self.lang is not None


def read_input_file(path) -> InputFile:
    """Read a Track A `<lang>.csv` (labels may be blank) or a plain id,text CSV; the file
    is read and parsed once."""
    path = Path(path)
    frame = _read_csv_text(path)
    header = [str(c) for c in frame.columns]
    if not any(c in LABELS for c in header):
        df = read_texts_csv(path, frame)
        return InputFile(path, df["id"].tolist(), df["text"].tolist())
    if path.stem not in LANGUAGES:
        raise InputError(
            f"{path}: a Track A file (label columns {', '.join(c for c in header if c in LABELS)})"
            f" must be named <lang>.csv with a BRIGHTER language code (one of "
            f"{' '.join(LANGUAGES)}), to know its submission file; drop the label columns to "
            "predict it as a plain id,text file")
    df = read_track_a_csv(path, labelled=False, frame=frame)
    labels = tuple(c for c in df.columns if c in LABELS)
    return InputFile(path, df["id"].tolist(), df["text"].tolist(), path.stem, labels)


def split_files(data_dir, split: str, languages, configured=None) -> list[Path]:
    """`<root>/<split>/<lang>.csv` for each language; the root is `data_dir`, else
    $KEMO_DATA_DIR, else `configured` (the run's data.data_dir): `resolve_data_dir`."""
    root = resolve_data_dir(data_dir, configured)
    files = []
    for lang in languages:
        if lang not in LANGUAGES:
            raise InputError(f"--languages: unknown language code {lang!r} "
                             f"(known: {' '.join(LANGUAGES)})")
        path = root / split / f"{lang}.csv"
        if not path.is_file():
            raise InputError(f"{path}: file not found (no {split} file for {lang} "
                             f"in data directory {root})")
        files.append(path)
    return files


# ------------------------------------------------------------------------- predicting

def _format_probs(probs: np.ndarray) -> np.ndarray:
    return np.round(probs.astype("float64"), 6)


def check_trained_labels(inp: InputFile, label_names, untrained: str = "error") -> list[str]:
    """The language's label columns the model lacks; InputError unless `untrained="zero"`."""
    missing = [c for c in inp.label_columns if c not in list(label_names)]
    if missing and untrained != "zero":
        raise InputError(
            f"{inp.path}, header: label column(s) {', '.join(repr(m) for m in missing)} of "
            f"{inp.lang} are not labels the model was trained on (its labels: "
            f"{', '.join(label_names)}); the submission file needs every column. Train on "
            f"data that annotates {', '.join(missing)}, or pass --untrained-labels zero to "
            "write 0 for them")
    return missing


def submission_frame(inp: InputFile, label_names, decisions, untrained: str = "error"):
    """The `pred_<lang>.csv` table: id + the language's own label columns as int 0/1,
    named as in the organisers' sample submission (`Anger`, `Fear`, ...).

    A column the model was not trained on raises InputError, or is written as 0 with
    `untrained="zero"`.
    """
    label_names = list(label_names)
    check_trained_labels(inp, label_names, untrained)
    df = pd.DataFrame({"id": inp.ids})
    for c in inp.label_columns:
        df[c.capitalize()] = (decisions[:, label_names.index(c)].astype(int) if c in label_names
                 else np.zeros(len(inp.ids), int))
    return df


def predict_files(run, paths, out_dir, untrained: str = "error", batch_size: int = 64,
                  zip_name: str = ZIP_NAME, tokens=None) -> dict:
    """Predict every file in `paths` (paths, or `InputFile`s already read) with `run`;
    write the outputs under `out_dir`.

    Returns {"files": [written paths], "zip": zip path or None, "untrained": {lang: [..]},
    "zero_shot": [Track A languages not among the run's `data.languages`]}. A Track A
    file decides with its language's thresholds when the run has them (per-language
    runs), else with the global ones (zero-shot languages, plain files).
    All inputs are read and checked before anything is predicted or written.
    With `tokens` (a `kemo.data.token_cache.TokenCache` of the run's tokenizer) each
    file's rows are taken from it, found by the file's sha256, instead of tokenised.
    """
    inputs = [p if isinstance(p, InputFile) else read_input_file(p) for p in paths]
    seen: dict[str, Path] = {}
    for inp in inputs:
        key = f"pred_{inp.lang}" if inp.is_track_a else f"{inp.path.stem}.predictions"
        if key in seen:
            raise InputError(f"{inp.path}: writes the same output ({key}.csv) as {seen[key]}; "
                             "predict them in separate calls or with different --out")
        seen[key] = inp.path
    names = run.label_names
    untrained_by_lang = {}
    for inp in inputs:  # fail on untrained labels before predicting anything
        gaps = check_trained_labels(inp, names, untrained) if inp.is_track_a else []
        if gaps:
            untrained_by_lang[inp.lang] = gaps
    token_arrays = [tokens.file_arrays(i.path, i.ids) if tokens else None for i in inputs]
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"output directory {out_dir}: cannot create ({e.strerror})") from None
    # One model call for all files not in the token cache: the tokenizer is traced once,
    # not once per file (seconds each; 28 languages for a full submission).
    plain = [k for k, arrays in enumerate(token_arrays) if arrays is None]
    texts = [t for k in plain for t in inputs[k].texts]
    cuts = np.cumsum([len(inputs[k].texts) for k in plain])[:-1]
    plain_probs = dict(zip(plain, np.split(run.predict_probs(texts, batch_size), cuts)
                           if texts else []))
    written, submission = [], []
    for k, (inp, arrays) in enumerate(zip(inputs, token_arrays)):
        langs = [inp.lang] * len(inp.texts) if inp.is_track_a else None  # per-language thresholds
        if arrays is None:
            probs = plain_probs[k]
            dec = run.decide(probs, langs)
        else:
            probs, dec = run.predict_tokens(arrays, batch_size, langs)
        p = pd.DataFrame({"id": inp.ids})
        for j, n in enumerate(names):
            p[f"p_{n}"] = _format_probs(probs[:, j])
        if inp.is_track_a:
            pred = submission_frame(inp, names, dec, untrained)
            path = out_dir / f"pred_{inp.lang}.csv"
            pred.to_csv(path, index=False)
            p.to_csv(out_dir / f"probs_{inp.lang}.csv", index=False)
            written += [path, out_dir / f"probs_{inp.lang}.csv"]
            submission.append(path)
        else:
            for j, n in enumerate(names):
                p[n] = dec[:, j].astype(int)
            path = out_dir / f"{inp.path.stem}.predictions.csv"
            p.to_csv(path, index=False)
            written.append(path)
    zip_path = None
    if submission:
        zip_path = out_dir / zip_name
        write_submission_zip(submission, zip_path)
        written.append(zip_path)
    trained = list(run.config.data.languages)
    zero_shot = [i.lang for i in inputs if i.is_track_a and i.lang not in trained]
    return {"files": written, "zip": zip_path, "untrained": untrained_by_lang,
            "zero_shot": list(dict.fromkeys(zero_shot))}


def write_submission_zip(pred_files, zip_path) -> Path:
    """Zip `pred_<lang>.csv` files as `track_a/pred_<lang>.csv` (the upload layout)."""
    zip_path = Path(zip_path)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in pred_files:
            zf.write(f, f"{SUBMISSION_FOLDER}/{Path(f).name}")
    return zip_path


def format_text_predictions(texts, label_names, probs, decisions, thresholds) -> str:
    """A readable table for `kemo predict --text`: predicted labels, then all probabilities."""
    lines = []
    for i, text in enumerate(texts):
        chosen = [f"{n} ({probs[i, j]:.2f})" for j, n in enumerate(label_names) if decisions[i, j]]
        short = text if len(text) <= 70 else text[:67] + "..."
        lines.append(f"[{i + 1}] {short}")
        lines.append(f"    predicted: {', '.join(chosen) if chosen else '(none)'}")
        lines.append("    " + "  ".join(f"{n} {probs[i, j]:.3f}/{thresholds[j]:.2f}"
                                          for j, n in enumerate(label_names))
                     + "   (probability/threshold)")
    return "\n".join(lines)


# -------------------------------------------------------------------------- scoring

@dataclass
class LabelTable:
    """A gold or prediction file as read: its name, label columns (as written) and cells."""

    name: str
    labels: list[str]
    cells: pd.DataFrame  # "id" + the label columns, all strings
    role: str  # "gold" or "prediction"

    def ids(self) -> list[str]:
        return _check_ids(self.name, self.cells).tolist()

    def values(self) -> np.ndarray:
        """The label cells as int 0/1; InputError naming row and column otherwise."""
        out = np.zeros((len(self.cells), len(self.labels)), int)
        for j, c in enumerate(self.labels):
            cells = self.cells[c].str.strip()
            bad = ~cells.isin(["0", "1"])
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                hint = (" (gold labels are blank: a test split has no labels)"
                        if self.role == "gold" and cells.iat[row] == "" else "")
                raise InputError(f"{self.name}, row {row + 1} (id {self.cells['id'].iat[row]!r}), "
                                 f"column '{c}': expected 0 or 1, got "
                                 f"{self.cells[c].iat[row]!r}{hint}")
            out[:, j] = cells.astype(int).to_numpy()
        return out


def _read_label_table(name: str, data: bytes | None, path: Path | None, role: str) -> LabelTable:
    """Read a gold (id[,text],labels) or prediction (id,labels) file."""
    df = _read_csv_text(Path(name) if path is None else path, data)
    columns = [str(c) for c in df.columns]
    if not columns or columns[0].strip().lower() != "id":
        raise InputError(f"{name}, header: the first column must be 'id' "
                         f"(found: {','.join(columns)})")
    label_cols = [c for c in columns[1:] if not (role == "gold" and c.lower() == "text")]
    if not label_cols:
        raise InputError(f"{name}, header: no label columns (found: {','.join(columns)})")
    if len(df) == 0:
        raise InputError(f"{name}: header only, no data rows")
    df = df.rename(columns={columns[0]: "id"})
    return LabelTable(name, label_cols, df[["id", *label_cols]], role)


def align(pred: LabelTable, gold: LabelTable) -> tuple[np.ndarray, np.ndarray]:
    """(y_true, y_pred) in gold row order, after the organisers' checks, in their order:
    header, then ids (each prediction id in gold, none missing), then the 0/1 cells.
    The gold file itself is checked first (unique ids, 0/1 labels)."""
    y_true, gold_ids = gold.values(), gold.ids()
    want = ["id"] + [c.lower() for c in gold.labels]
    got = ["id"] + [c.lower() for c in pred.labels]
    if got != want:
        raise InputError(f"{pred.name}, header: expected {','.join(want)} (the columns of "
                         f"gold file {gold.name}, in this order), got {','.join(got)}")
    pred_ids = pred.ids()
    index = {i: r for r, i in enumerate(gold_ids)}
    for r, i in enumerate(pred_ids):
        if i not in index:
            raise InputError(f"{pred.name}, row {r + 1}, column 'id': id {i!r} is not in "
                             f"gold file {gold.name}")
    if len(pred_ids) != len(gold_ids):
        have = set(pred_ids)
        missing = [i for i in gold_ids if i not in have]
        raise InputError(f"{pred.name}: {len(missing)} id(s) of gold file {gold.name} have no "
                         f"prediction (first: {', '.join(missing[:3])})")
    values = pred.values()
    y_pred = np.empty_like(values)
    y_pred[np.array([index[i] for i in pred_ids])] = values
    return y_true, y_pred


def score_tables(pred: LabelTable, gold: LabelTable) -> dict:
    """Macro-F1 (the task's ranking score), micro-F1 and per-label P/R/F1 for one language."""
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    y_true, y_pred = align(pred, gold)
    out = {"rows": int(len(y_true)), "labels": [c.lower() for c in gold.labels]}
    for avg in ("macro", "micro"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average=avg,
                                                     zero_division=0)
        out[f"{avg}_f1"] = float(f1_score(y_true, y_pred, average=avg, zero_division=0))
        out[f"{avg}_precision"], out[f"{avg}_recall"] = float(p), float(r)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    out["per_label"] = {n: {"precision": float(a), "recall": float(b), "f1": float(c),
                            "support": int(d)}
                        for n, a, b, c, d in zip(out["labels"], p, r, f, s)}
    return out


def score_files(pred_path, gold_path) -> dict:
    """Score one `pred_<lang>.csv` against one gold `<lang>.csv` (see `score_tables`)."""
    pred_path, gold_path = Path(pred_path), Path(gold_path)
    return score_tables(_read_label_table(str(pred_path), None, pred_path, "prediction"),
                        _read_label_table(str(gold_path), None, gold_path, "gold"))


def find_prediction_files(source) -> dict[str, tuple[str, bytes]]:
    """{lang: (name, bytes)} from a zip, a folder (or its track_a/), or pred_<lang>.csv files.

    Accepts `pred_<lang>.csv` and the organisers' `pred_<lang>_a.csv` names.
    """
    sources = [Path(s) for s in (source if isinstance(source, (list, tuple)) else [source])]
    found: dict[str, tuple[str, bytes]] = {}

    def add(lang, name, read):
        if lang in found:
            raise InputError(f"{name}: a second prediction file for {lang} "
                             f"(first: {found[lang][0]})")
        try:
            found[lang] = (name, read())
        except OSError as e:
            raise InputError(f"{name}: cannot read ({e.strerror})") from None

    for src in sources:
        if not src.exists():
            raise InputError(f"{src}: not found")
        if src.is_file() and (zipfile.is_zipfile(src) or src.suffix.lower() == ".zip"):
            for lang, name, data in _zip_members(src):
                add(lang, name, lambda d=data: d)
        elif src.is_dir():
            folder = src / SUBMISSION_FOLDER if (src / SUBMISSION_FOLDER).is_dir() else src
            for f in sorted(folder.iterdir()):
                m = _PRED_NAME.match(f.name)
                if m and f.is_file():
                    add(m.group(1), str(f), f.read_bytes)
        else:
            m = _PRED_NAME.match(src.name)
            if not m:
                raise InputError(f"{src}: a prediction file must be named pred_<lang>.csv "
                                 "(or be a zip or folder of them)")
            add(m.group(1), str(src), src.read_bytes)
    if not found:
        raise InputError(f"{', '.join(map(str, sources))}: no pred_<lang>.csv files found "
                         f"(looked in the zip / folder and its {SUBMISSION_FOLDER}/)")
    return found


def _zip_members(src: Path) -> list[tuple[str, str, bytes]]:
    """(lang, name, bytes) of each pred_<lang>.csv in a zip; InputError if it is damaged."""
    members, name = [], str(src)
    try:
        with zipfile.ZipFile(src) as zf:
            for info in zf.infolist():
                m = _PRED_NAME.match(Path(info.filename).name)
                if m and not info.is_dir():
                    name = f"{src}:{info.filename}"
                    members.append((m.group(1), name, zf.read(info)))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
            RuntimeError, NotImplementedError, ValueError) as e:
        why = " ".join(str(e).split()) or type(e).__name__
        raise InputError(f"{name}: damaged or not a zip file ({why})") from None
    return members


def score_submission(predictions, gold_dir, languages=None) -> dict:
    """Score prediction files against `<gold_dir>/<lang>.csv`, per language and overall.

    `predictions`: a zip, a folder, or a list of pred files. `languages`: those that must
    be scored (each needs a prediction file); default every language predicted.
    Returns {"per_language": {lang: score_tables(...)}, "overall": {"macro_f1", ...}}.
    """
    found = find_prediction_files(predictions)
    gold_dir = Path(gold_dir)
    if not gold_dir.is_dir():
        raise InputError(f"gold directory {gold_dir}: not found")
    if languages:
        missing = [lang for lang in languages if lang not in found]
        if missing:
            raise InputError(f"{predictions}: no prediction file for "
                             f"{', '.join(missing)} (expected "
                             f"{', '.join(f'pred_{m}.csv' for m in missing)}; found "
                             f"{', '.join(sorted(found)) or 'none'})")
        langs = list(dict.fromkeys(languages))
    else:
        langs = sorted(found)
    per_language = {}
    for lang in langs:
        gold_path = gold_dir / f"{lang}.csv"
        if not gold_path.is_file():
            raise InputError(f"{gold_path}: gold file not found for {lang} "
                             f"(predicted in {found[lang][0]})")
        name, data = found[lang]
        per_language[lang] = score_tables(
            _read_label_table(name, data, None, "prediction"),
            _read_label_table(str(gold_path), None, gold_path, "gold"))
    overall = {key: float(np.mean([s[key] for s in per_language.values()]))
               for key in ("macro_f1", "micro_f1")}
    overall["languages"] = len(per_language)
    return {"per_language": per_language, "overall": overall}


def format_scores(scores: dict) -> str:
    """A plain-text table: one row per language, then the mean."""
    lines = [f"{'language':<10}{'rows':>7}{'macro-F1':>10}{'micro-F1':>10}  per-label F1"]
    for lang, s in scores["per_language"].items():
        per = " ".join(f"{n} {m['f1']:.4f}" for n, m in s["per_label"].items())
        lines.append(f"{lang:<10}{s['rows']:>7}{s['macro_f1']:>10.4f}{s['micro_f1']:>10.4f}  {per}")
    o = scores["overall"]
    lines.append(f"{'mean':<10}{'':>7}{o['macro_f1']:>10.4f}{o['micro_f1']:>10.4f}  "
                 f"({o['languages']} language{'s' if o['languages'] != 1 else ''})")
    return "\n".join(lines)
