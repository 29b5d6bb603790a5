"""The official Track A scorer: prediction files against gold files, per language.

Scoring (`score_submission`) follows the SemEval-2025 Task 11 organisers' scorer
(github.com/emotion-analysis-project/SemEval2025-Task11, Evaluation/utils.py):
header equal to the gold file's `id,<labels>` (case-insensitive, same order), rows
matched by id, `sklearn.metrics.f1_score(average="macro", zero_division=0)` over the
label columns per language (theirs leaves zero_division at its default, which scores 0
with a warning they silence); the overall score is the mean over languages. Where the
organisers' script would silently score something odd (a cell other than 0/1 counts as
an all-zero row; a duplicated id drops that row) this module refuses with `InputError`.

Example:
    scores = score_submission("runs/tiny/predictions/submission.zip", data_dir / "dev", ["eng"])
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

from kemo.errors import InputError
from kemo.prediction.input_files import SUBMISSION_FOLDER, check_ids, read_csv_cells

_PRED_NAME = re.compile(r"^pred_([a-z]+)(?:_a)?\.csv$")


@dataclass
class LabelTable:
    """A gold or prediction file as read: its name, label columns (as written) and cells."""

    name: str
    labels: list[str]
    cells: pd.DataFrame  # "id" + the label columns, all strings
    role: str  # "gold" or "prediction"
    max_value: int = 1  # Track B: intensities 0..max_value

    def ids(self) -> list[str]:
        return check_ids(self.name, self.cells).tolist()

    def values(self) -> np.ndarray:
        """The label cells as int 0/1 (intensities: 0..max_value); InputError naming
        row and column otherwise."""
        out = np.zeros((len(self.cells), len(self.labels)), int)
        allowed = [str(v) for v in range(self.max_value + 1)]
        expected = "0 or 1" if self.max_value == 1 else f"an intensity 0..{self.max_value}"
        for j, c in enumerate(self.labels):
            cells = self.cells[c].str.strip()
            bad = ~cells.isin(allowed)
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                hint = (" (gold labels are blank: a test split has no labels)"
                        if self.role == "gold" and cells.iat[row] == "" else "")
                raise InputError(f"{self.name}, row {row + 1} (id {self.cells['id'].iat[row]!r}), "
                                 f"column '{c}': expected {expected}, got "
                                 f"{self.cells[c].iat[row]!r}{hint}")
            out[:, j] = cells.astype(int).to_numpy()
        return out


def _read_label_table(name: str, data: bytes | None, path: Path | None, role: str,
                      max_value: int = 1) -> LabelTable:
    """Read a gold (id[,text],labels) or prediction (id,labels) file."""
    df = read_csv_cells(Path(name) if path is None else path, data)
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
    return LabelTable(name, label_cols, df[["id", *label_cols]], role, max_value)


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
    """Macro-F1 (the task's ranking score), micro-F1 and per-label P/R/F1 for one language.

    The same numbers as `sklearn.metrics.precision_recall_fscore_support` and `f1_score`
    with `zero_division=0` (tests/test_light_commands.py checks them against sklearn),
    counted in numpy: `kemo evaluate` then starts without importing sklearn (~1.2 s).
    """
    y_true, y_pred = align(pred, gold)
    out = {"rows": int(len(y_true)), "labels": [c.lower() for c in gold.labels]}
    t, q = np.asarray(y_true) == 1, np.asarray(y_pred) == 1
    tp, fp, fn = ((t & q).sum(0), (~t & q).sum(0), (t & ~q).sum(0))
    p, r, f = _prf(tp, fp, fn)
    out["macro_f1"] = float(f.mean()) if len(f) else 0.0
    out["macro_precision"], out["macro_recall"] = float(p.mean()), float(r.mean())
    mp, mr, mf = _prf(tp.sum(keepdims=True), fp.sum(keepdims=True), fn.sum(keepdims=True))
    out["micro_f1"], out["micro_precision"], out["micro_recall"] = (
        float(mf[0]), float(mp[0]), float(mr[0]))
    out["per_label"] = {n: {"precision": float(a), "recall": float(b), "f1": float(c),
                            "support": int(d)}
                        for n, a, b, c, d in zip(out["labels"], p, r, f, tp + fn)}
    return out


def score_intensity_tables(pred: LabelTable, gold: LabelTable) -> dict:
    """Track B's official measure for one language: Pearson r per label between the
    predicted and gold intensities (0 where undefined), averaged over the labels."""
    from kemo.evaluation.intensity import pearson_r

    y_true, y_pred = align(pred, gold)
    labels = [c.lower() for c in gold.labels]
    per = {n: pearson_r(y_true[:, j], y_pred[:, j]) for j, n in enumerate(labels)}
    return {"rows": int(len(y_true)), "labels": labels, "per_label": per,
            "pearson_r": float(np.mean(list(per.values()))) if per else 0.0}


def _prf(tp, fp, fn):
    """Precision, recall, F1 per column from counts; 0 where a denominator is 0
    (sklearn's zero_division=0; F1 as 2tp / (2tp + fp + fn), as sklearn computes it)."""
    tp, fp, fn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn))

    def ratio(num, den):
        return np.divide(num, den, out=np.zeros_like(num), where=den > 0)

    return ratio(tp, tp + fp), ratio(tp, tp + fn), ratio(2 * tp, 2 * tp + fp + fn)


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


def score_submission(predictions, gold_dir, languages=None, max_intensity: int = 0) -> dict:
    """Score prediction files against `<gold_dir>/<lang>.csv`, per language and overall.

    `predictions`: a zip, a folder, or a list of pred files. `languages`: those that must
    be scored (each needs a prediction file); default every language predicted.
    Returns {"per_language": {lang: score_tables(...)}, "overall": {"macro_f1", ...}}.
    `max_intensity` K > 0: Track B, cells are intensities 0..K scored by Pearson r
    (`score_intensity_tables`; overall {"pearson_r": mean over languages, "languages"}).
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
        score = score_intensity_tables if max_intensity else score_tables
        k = max_intensity or 1
        per_language[lang] = score(
            _read_label_table(name, data, None, "prediction", k),
            _read_label_table(str(gold_path), None, gold_path, "gold", k))
    keys = ("pearson_r",) if max_intensity else ("macro_f1", "micro_f1")
    overall = {key: float(np.mean([s[key] for s in per_language.values()])) for key in keys}
    overall["languages"] = len(per_language)
    return {"per_language": per_language, "overall": overall}


def format_scores(scores: dict) -> str:
    """A plain-text table: one row per language, then the mean."""
    if "pearson_r" in scores["overall"]:
        return _format_intensity_scores(scores)
    lines = [f"{'language':<10}{'rows':>7}{'macro-F1':>10}{'micro-F1':>10}  per-label F1"]
    for lang, s in scores["per_language"].items():
        per = " ".join(f"{n} {m['f1']:.4f}" for n, m in s["per_label"].items())
        lines.append(f"{lang:<10}{s['rows']:>7}{s['macro_f1']:>10.4f}{s['micro_f1']:>10.4f}  {per}")
    o = scores["overall"]
    lines.append(f"{'mean':<10}{'':>7}{o['macro_f1']:>10.4f}{o['micro_f1']:>10.4f}  "
                 f"{_languages(o)}")
    return "\n".join(lines)


def _format_intensity_scores(scores: dict) -> str:
    lines = [f"{'language':<10}{'rows':>7}{'pearson_r':>11}  per-label r"]
    for lang, s in scores["per_language"].items():
        per = " ".join(f"{n} {r:.4f}" for n, r in s["per_label"].items())
        lines.append(f"{lang:<10}{s['rows']:>7}{s['pearson_r']:>11.4f}  {per}")
    o = scores["overall"]
    lines.append(f"{'mean':<10}{'':>7}{o['pearson_r']:>11.4f}  {_languages(o)}")
    return "\n".join(lines)


def _languages(overall: dict) -> str:
    """The mean row's note: `(3 languages)`."""
    n = overall["languages"]
    return f"({n} language{'s' if n != 1 else ''})"
