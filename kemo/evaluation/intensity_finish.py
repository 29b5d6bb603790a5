"""Finishing an intensity run (Track B): cut points, report, prediction files.

The analogue of `kemo.evaluation.finish` for `data.label_kind = "intensity"`: cut points are
tuned on validation (never dev; `thresholds.tune = false`: rounding), the report holds
validation and dev scored by the official measure, of the continuous scores and of the
integers, with a confusion table per label; `cut_points.json` replaces
`thresholds.json`; the prediction files hold the continuous score (`p_<label>`
columns) beside the integer intensity, and `predictions/dev/pred_<lang>.csv` is the
official Track B layout (id + capitalised emotion columns, integers 0..K, zipped).

Example:
    cuts, splits = finish_intensity(cfg, val, dev, {"val": s_val, "dev": s_dev})
    write_intensity_decisions(run_dir, cuts, val, dev, scores)
"""

from __future__ import annotations

import json
import logging

from kemo.evaluation.intensity import fit_cut_points, intensity_report
from kemo.run import layout as L
from kemo.run.report_file import DEV, VALIDATION

log = logging.getLogger(__name__)


def finish_intensity(cfg, val, dev, scores: dict):
    """(CutPoints, {VALIDATION: ..., DEV: ...}: report.json's split scores) for the
    continuous `scores`."""
    k = cfg.data.max_intensity
    cuts = fit_cut_points(scores["val"], val, k, cfg.thresholds.tune)
    splits = {VALIDATION: intensity_report(val, scores["val"], cuts.cuts, k)}
    if dev is not None:
        splits[DEV] = intensity_report(dev, scores["dev"], cuts.cuts, k)
    return cuts, splits


def write_intensity_decisions(run_dir, cuts, val, dev, scores) -> None:
    """`cut_points.json`, `predictions_val.csv`, with dev `predictions_dev.csv` and
    `predictions/dev/` (pred_<lang>.csv, probs_<lang>.csv, a zip), each whole or absent."""
    from kemo.atomic import write_text
    from kemo.prediction.split_files import write_split_predictions, write_split_submission

    write_text(run_dir / L.CUT_POINTS, json.dumps(cuts.to_dict(), indent=2))
    write_split_predictions(run_dir / L.PREDICTIONS_VAL, val, scores["val"], cuts)
    if dev is not None:
        write_split_predictions(run_dir / L.PREDICTIONS_DEV, dev, scores["dev"], cuts)
        write_split_submission(run_dir / L.PREDICTIONS / "dev", dev, scores["dev"], cuts)


def refuse_intensity_run(run_dir, command: str) -> None:
    """InputError if `run_dir` holds an intensity run, for the commands that do not
    handle one yet (`kemo export`, `kemo explain`, `kemo ensemble`)."""
    from pathlib import Path

    from kemo.config import load_config
    from kemo.errors import InputError

    config = Path(run_dir) / L.CONFIG
    if not config.is_file():
        return  # the command names what is missing
    try:
        kind = load_config(config).data.label_kind
    except InputError:
        return  # the command's own reading names the fault
    if kind == "intensity":
        raise InputError(f"{config}: data.label_kind is \"intensity\" (Track B): kemo "
                         f"{command} does not handle intensity runs yet (kemo predict, "
                         "evaluate, report and the run's report.json do)")
