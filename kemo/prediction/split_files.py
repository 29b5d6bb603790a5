"""The prediction files a run writes for its own labelled splits (validation, dev).

- `predictions_<split>.csv` (`write_split_predictions`): id, lang, p_<label> for every
  label of the run (6 decimals), then its 0/1 decision per label; read back by
  `kemo report` (`kemo.evaluation.split_probs`, `kemo.evaluation.migrate`).
- `predictions/<split>/pred_<lang>.csv` + `probs_<lang>.csv` (`write_split_submission`):
  the official Track A layout `kemo predict` writes for test files (header `id,Anger,...`,
  each language's own label columns), so `kemo evaluate <run>/predictions/dev --split dev`
  scores the run's dev decisions without predicting again.

Both decide with the run's thresholds (`ThresholdSearch.apply`, per language where the
search has them).

Example:
    write_split_predictions(run_dir / "predictions_dev.csv", dev, probs, search)
    write_split_submission(run_dir / "predictions" / "dev", dev, probs, search)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kemo.atomic import write_csv
from kemo.data.brighter import Examples
from kemo.prediction.cut_points import CutPoints
from kemo.prediction.input_files import (INTENSITY_FOLDER, SUBMISSION_FOLDER, InputFile,
                                         submission_frame, write_submission_zip)
from kemo.run.predictions_marker import mark_written
from kemo.prediction.thresholds import ThresholdSearch


def write_split_predictions(path, ex: Examples, probs, search: ThresholdSearch) -> Path:
    """`predictions_<split>.csv`: id, lang, p_<label> (6 decimals), then 0/1 per label."""
    dec = search.apply(probs, ex.langs)  # per language when the search has them
    df = pd.DataFrame({"id": ex.ids, "lang": ex.langs})
    for j, n in enumerate(ex.label_names):
        df[f"p_{n}"] = np.round(probs[:, j], 6)
    for j, n in enumerate(ex.label_names):
        df[n] = dec[:, j]
    write_csv(df, path)
    return Path(path)


def write_split_submission(out_dir, ex: Examples, probs, search: ThresholdSearch) -> list[Path]:
    """`pred_<lang>.csv` (the official layout: id + the language's own label columns,
    capitalised, 0/1), `probs_<lang>.csv` (id, p_<label> for every label of the run) and
    `submission.zip` under `out_dir`, one language at a time in `ex`'s order."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dec = search.apply(probs, ex.langs)
    written, preds = [], []
    for lang in dict.fromkeys(ex.langs.tolist()):
        rows = ex.langs == lang
        inp = InputFile(out_dir / f"{lang}.csv", ex.ids[rows].tolist(), ex.texts[rows].tolist(),
                        str(lang), ex.language_labels(lang))
        pred = out_dir / f"pred_{lang}.csv"
        write_csv(submission_frame(inp, ex.label_names, dec[rows]), pred)
        p = pd.DataFrame({"id": inp.ids})
        for j, n in enumerate(ex.label_names):
            p[f"p_{n}"] = np.round(probs[rows, j].astype("float64"), 6)
        write_csv(p, out_dir / f"probs_{lang}.csv")
        written += [pred, out_dir / f"probs_{lang}.csv"]
        preds.append(pred)
    folder = INTENSITY_FOLDER if isinstance(search, CutPoints) else SUBMISSION_FOLDER
    written.append(write_submission_zip(preds, out_dir / "submission.zip", folder))
    mark_written(out_dir, written, out_dir.parents[1])  # <run>/predictions/<split>
    return written
