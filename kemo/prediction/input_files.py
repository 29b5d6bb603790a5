"""Predictions for new texts and the official Track A submission layout.

Predicting (`predict_files`): each input CSV is either a Track A file (`<lang>.csv`
with columns id,text,<labels>; test files have blank labels) or a plain file with
columns id,text. For a Track A file the output is the official submission file
`pred_<lang>.csv` with the organisers' header, `id,<the language's own label columns,
in its file order, capitalised>` (eng: `id,Anger,Fear,Joy,Sadness,Surprise`), integer
0/1 at the run's tuned thresholds, every input id once, in input order; the
probabilities go to `probs_<lang>.csv` (id, p_<label> for every label of the model);
`submission.zip` holds `track_a/pred_<lang>.csv` for every language the run predicted
into that folder (`zip_members`: a later subset keeps the others in it). A language label
the model was never trained on (e.g. a label afr has that an eng-only model lacks) is refused,
or written as 0 with `untrained="zero"` (`--untrained-labels zero`). A plain file gives
`<name>.predictions.csv` (id, p_<label>..., <label>...) over the model's labels.

Scoring: `kemo.evaluation.scoring`.

Example:
    run = load_predictor("runs/tiny")   # kemo.prediction.predictor: a run or an ensemble
    out = predict_files(run, split_files(data_dir, "test", ["eng"]), "runs/tiny/test")
    out["zip"]                                   # runs/tiny/test/submission.zip
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from kemo.data.brighter import (
    LANGUAGES, check_language, decode_csv, is_language, label_order, parse_csv,
    read_track_a_csv, resolve_data_dir, split_file, track_a_label_columns,
)
from kemo.atomic import atomic_path, write_csv
from kemo.errors import InputError
from kemo.run.predictions_marker import mark_written, written_here

log = logging.getLogger(__name__)

SUBMISSION_FOLDER = "track_a"
INTENSITY_FOLDER = "track_b"  # an intensity run's zip: track_b/pred_<lang>.csv
ZIP_NAME = "submission.zip"
def zip_members(out_dir, new_preds, run_path) -> list[Path]:
    """What `submission.zip` holds: the `pred_<lang>.csv` just written and every other
    one in `out_dir` this run wrote earlier (a subset prediction never drops the other
    languages' files of the same run); sorted by name."""
    run = str(Path(run_path).resolve())
    earlier = [Path(out_dir) / n for n, r in written_here(out_dir).items()
               if r == run and n.startswith("pred_") and n.endswith(".csv")
               and (Path(out_dir) / n).is_file()]
    return sorted({Path(p) for p in [*new_preds, *earlier]}, key=lambda p: p.name)


# ---------------------------------------------------------------------------- inputs

def read_csv_cells(path: Path, data: bytes | None = None) -> pd.DataFrame:
    """All cells as strings; InputError for unreadable, non-UTF-8 or empty files."""
    return parse_csv(path, decode_csv(path, data))


def check_ids(path, df: pd.DataFrame) -> pd.Series:
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
    df = read_csv_cells(path) if frame is None else frame
    columns = [str(c) for c in df.columns]
    for required in ("id", "text"):
        if required not in columns:
            raise InputError(f"{path}, header: missing column '{required}' "
                             f"(found: {', '.join(columns)}; expected id,text)")
    if len(df) == 0:
        raise InputError(f"{path}: header only, no data rows")
    return pd.DataFrame({"id": check_ids(path, df), "text": df["text"]})


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


def read_input_file(path, max_value: int = 1) -> InputFile:
    """Read a Track A `<lang>.csv` (labels may be blank; `max_value` K > 1: Track B's
    intensities 0..K) or a plain id,text CSV; the file is read and parsed once."""
    path = Path(path)
    frame = read_csv_cells(path)
    header = [str(c) for c in frame.columns]
    if not track_a_label_columns(header):
        df = read_texts_csv(path, frame)
        return InputFile(path, df["id"].tolist(), df["text"].tolist())
    if not is_language(path.stem):
        raise InputError(
            f"{path}: a Track A file (label columns {', '.join(track_a_label_columns(header))})"
            f" must be named <lang>.csv with a BRIGHTER language code (one of "
            f"{' '.join(LANGUAGES)}), to know its submission file; drop the label columns to "
            "predict it as a plain id,text file")
    df = read_track_a_csv(path, labelled=False, frame=frame, max_value=max_value)
    labels = track_a_label_columns(df.columns)
    return InputFile(path, df["id"].tolist(), df["text"].tolist(), path.stem, labels)


def split_files(data_dir, split: str, languages, configured=None, recorded=None) -> list[Path]:
    """`<root>/<split>/<lang>.csv` for each language; the root is `data_dir`, else
    $KEMO_DATA_DIR, else `configured` (the run's data.data_dir), else `recorded` (where
    the run's training read its data): `resolve_data_dir`."""
    root = resolve_data_dir(data_dir, configured, recorded)
    files = []
    for lang in languages:
        path = split_file(root, split, check_language(lang, "--languages"))
        if not path.is_file():
            raise InputError(f"{path}: file not found (no {split} file for {lang} "
                             f"in data directory {root})")
        files.append(path)
    return files


# ------------------------------------------------------------------------- predicting

def _format_probs(probs: np.ndarray) -> np.ndarray:
    return np.round(probs.astype("float64"), 6)


def run_label_columns(run, inp: InputFile) -> InputFile:
    """`inp` with the label columns its submission file gets: the run's own labels for
    the language (what it was validated on), whatever columns the input holds or in
    which order; a language the run never saw keeps the input's columns, in kemo's
    label order (the organisers')."""
    if not inp.is_track_a:
        return inp
    own = (getattr(run, "language_labels", None) or {}).get(inp.lang)
    columns = tuple(own) if own else tuple(label_order(inp.label_columns))
    return replace(inp, label_columns=columns)


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
    inputs = _read_inputs(run, paths)
    untrained_by_lang = {}
    for inp in inputs:  # fail on untrained labels before predicting anything
        gaps = check_trained_labels(inp, run.label_names, untrained) if inp.is_track_a else []
        if gaps:
            untrained_by_lang[inp.lang] = gaps
    token_arrays = [tokens.file_arrays(i.path, i.ids) if tokens else None for i in inputs]
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"output directory {out_dir}: cannot create ({e.strerror})") from None
    decided = _predict_inputs(run, inputs, token_arrays, batch_size)
    folder = INTENSITY_FOLDER if getattr(run, "intensity", False) else SUBMISSION_FOLDER
    written, zip_path = _write_outputs(run.label_names, inputs, decided, out_dir, untrained,
                                       zip_name, run.path, folder)
    trained = list(run.config.data.languages)
    zero_shot = [i.lang for i in inputs if i.is_track_a and i.lang not in trained]
    zipped = [] if zip_path is None else [
        n[len(SUBMISSION_FOLDER) + 1:] for n in zipfile.ZipFile(zip_path).namelist()]
    return {"files": written, "zip": zip_path, "untrained": untrained_by_lang,
            "zero_shot": list(dict.fromkeys(zero_shot)), "zipped": zipped}


def _read_inputs(run, paths) -> list[InputFile]:
    """Every input read and given its submission columns; two writing one output refused."""
    inputs = [p if isinstance(p, InputFile) else read_input_file(p) for p in paths]
    inputs = [run_label_columns(run, i) for i in inputs]
    seen: dict[str, Path] = {}
    for inp in inputs:
        key = f"pred_{inp.lang}" if inp.is_track_a else f"{inp.path.stem}.predictions"
        if key in seen:
            raise InputError(f"{inp.path}: writes the same output ({key}.csv) as {seen[key]}; "
                             "predict them in separate calls or with different --out")
        seen[key] = inp.path
    return inputs


def _predict_inputs(run, inputs, token_arrays, batch_size: int) -> list[tuple]:
    """(probabilities, decisions) per input, every one predicted and checked finite
    before any is written. One model call for all files not in the token cache: the
    tokenizer is traced once, not once per file (seconds each; 28 for a submission)."""
    plain = [k for k, arrays in enumerate(token_arrays) if arrays is None]
    texts = [t for k in plain for t in inputs[k].texts]
    rows = [row for k in plain for row in _row_names(inputs[k])]
    langs = [inputs[k].lang if inputs[k].is_track_a else None  # an ensemble averages by it
             for k in plain for _ in inputs[k].texts]
    cuts = np.cumsum([len(inputs[k].texts) for k in plain])[:-1]
    plain_probs = dict(zip(plain, np.split(run.predict_probs(texts, batch_size, rows, langs),
                                           cuts) if texts else []))
    decided = []
    for k, (inp, arrays) in enumerate(zip(inputs, token_arrays)):
        langs = [inp.lang] * len(inp.texts) if inp.is_track_a else None  # per-language thresholds
        if arrays is None:
            decided.append((plain_probs[k], run.decide(plain_probs[k], langs)))
        else:
            decided.append(run.predict_tokens(arrays, batch_size, langs, _row_names(inp)))
    return decided


def _write_outputs(names, inputs, decided, out_dir: Path, untrained: str, zip_name: str,
                   run_path, folder: str = SUBMISSION_FOLDER):
    """Each input's files (pred_/probs_<lang>.csv or <name>.predictions.csv) and the
    submission zip, each whole or not at all (`kemo.atomic`); an interruption says
    what is there. Returns (written paths, zip path or None)."""
    written, submission, zip_path = [], [], None
    try:
        for inp, (probs, dec) in zip(inputs, decided):
            p = pd.DataFrame({"id": inp.ids})
            for j, n in enumerate(names):
                p[f"p_{n}"] = _format_probs(probs[:, j])
            if inp.is_track_a:
                path = out_dir / f"pred_{inp.lang}.csv"
                write_csv(submission_frame(inp, names, dec, untrained), path)
                written.append(path)
                write_csv(p, out_dir / f"probs_{inp.lang}.csv")
                written.append(out_dir / f"probs_{inp.lang}.csv")
                submission.append(path)
            else:
                for j, n in enumerate(names):
                    p[n] = dec[:, j].astype(int)
                path = out_dir / f"{inp.path.stem}.predictions.csv"
                write_csv(p, path)
                written.append(path)
        mark_written(out_dir, written, run_path)
        if submission:
            zip_path = out_dir / zip_name
            write_submission_zip(zip_members(out_dir, submission, run_path), zip_path, folder)
            written.append(zip_path)
            mark_written(out_dir, [zip_path], run_path)
    except KeyboardInterrupt:
        left = ", ".join(f.name for f in written) or "no file"
        log.warning(f"interrupted: {out_dir}: wrote {left} in full; no file is half-written "
                    f"(the others are as they were before)")
        raise
    return written, zip_path


def _row_names(inp: InputFile) -> list[str]:
    """How a message names each row of `inp`: `<file>, row <n> (id '<id>')`."""
    return [f"{inp.path}, row {r + 1} (id {i!r})" for r, i in enumerate(inp.ids)]


def write_submission_zip(pred_files, zip_path, folder: str = SUBMISSION_FOLDER) -> Path:
    """Zip `pred_<lang>.csv` files as `track_a/pred_<lang>.csv` (the upload layout;
    `folder`: `track_b` for an intensity run's, `track_c` for Track C's)."""
    zip_path = Path(zip_path)
    with atomic_path(zip_path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in pred_files:
            zf.write(f, f"{folder}/{Path(f).name}")
    return zip_path


def text_predictions_json(texts, label_names, probs, decisions, thresholds) -> str:
    """`kemo predict --text ... --json`: one JSON object per text and line, e.g.
    {"text": "...", "labels": ["gratitude"], "probabilities": {"gratitude": 0.91, ...},
    "thresholds": {"gratitude": 0.42, ...}} (a row's language is unknown: global thresholds)."""
    import json

    rows = []
    for i, text in enumerate(texts):
        rows.append(json.dumps({
            "text": text,
            "labels": [n for j, n in enumerate(label_names) if decisions[i, j]],
            "probabilities": {n: round(float(probs[i, j]), 6) for j, n in enumerate(label_names)},
            "thresholds": {n: float(thresholds[j]) for j, n in enumerate(label_names)}},
            ensure_ascii=False))
    return "\n".join(rows)


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


def format_text_intensities(texts, label_names, scores, intensities, as_json=False) -> str:
    """`kemo predict --text` for an intensity run: each label's integer intensity 0..K
    (from the run's cut points) and the continuous score it came from."""
    if as_json:
        import json

        return json.dumps([{"text": t, "intensities": {n: int(intensities[i, j])
                                                       for j, n in enumerate(label_names)},
                            "scores": {n: round(float(scores[i, j]), 4)
                                       for j, n in enumerate(label_names)}}
                           for i, t in enumerate(texts)], ensure_ascii=False, indent=1)
    lines = []
    for i, text in enumerate(texts):
        lines.append(f"[{i + 1}] {text if len(text) <= 70 else text[:67] + '...'}")
        lines.append("    " + "  ".join(f"{n} {int(intensities[i, j])} ({scores[i, j]:.2f})"
                                          for j, n in enumerate(label_names))
                     + "   (intensity 0..K (score))")
    return "\n".join(lines)
