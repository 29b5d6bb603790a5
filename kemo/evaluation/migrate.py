"""The per-language comparison for runs trained before it: report.json's gaps, filled in memory.

A run trained before per-language thresholds has a `report.json` without the
`Setting.PER_LANGUAGE` settings and `mean_over_languages`, and no
`predictions_val.csv`. `backfill_report` adds them to a copy of its `Report` (for
`kemo report`'s page; the run directory is not changed): per-language thresholds are
tuned on the validation split re-created and re-predicted by
`kemo.evaluation.split_probs.validation_probs` (only when it reproduces training's rows
and macro-F1; never on dev), and scored on validation and on dev (dev probabilities
from `predictions_dev.csv`, 6 decimals, checked against the decisions written there).

Example:
    val = validation_probs(run_dir, data_dir)
    fill = backfill_report(run_dir, state.report, state.thresholds, val, data_dir)
    fill.report, fill.added, fill.notes   # the completed Report, what was added, how
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

from kemo.errors import InputError
from kemo.evaluation.classification_scores import add_language_means, setting_report
from kemo.run import layout as L
from kemo.evaluation.split_probs import SplitProbs, dev_probs
from kemo.prediction.thresholds import ThresholdSearch
from kemo.run.report_file import ABSENT, DEV, MEAN, SPLITS, VALIDATION, Report, Setting

PER_LANGUAGE = Setting.PER_LANGUAGE


@dataclass
class Backfill:
    """The completed report, what was added to it, and notes on how (or why not)."""

    report: Report
    added: list[str] = field(default_factory=list)  # e.g. "dev.per_language_thresholds"
    notes: list[str] = field(default_factory=list)


def backfill_report(run_dir, report: Report, thresholds: ThresholdSearch,
                    val: SplitProbs | None, data_dir=None) -> Backfill:
    """`report` with its missing means and per-language settings added (a copy)."""
    run_dir = Path(run_dir)
    fill = Backfill(copy.deepcopy(report))
    reproduced = val is not None and val.split == VALIDATION and val.reproduced
    splits = [s for s in SPLITS if fill.report.split(s) is not None]
    for split in splits:
        if add_language_means(fill.report.split(split)):
            fill.added.append(f"{split}.{MEAN}")
    missing = [s for s in splits if fill.report.section(s, PER_LANGUAGE) is None]
    if not missing:
        return fill
    if not reproduced:
        why = ("the validation split could not be re-created" if val is None or
               val.split != VALIDATION else "the re-created validation split does not "
               "reproduce training's")
        fill.notes.append(f"per-language thresholds not computed: {why} (they are tuned "
                          "on validation only; pass --data-dir with the run's training data)")
        return fill
    glob = thresholds.global_only()
    per_lang = glob.tuned_per_language(val.probs, val.labels, val.mask, val.langs)
    if VALIDATION in missing:
        fill.report.split(VALIDATION)[PER_LANGUAGE] = setting_report(
            val.examples, per_lang.apply(val.probs, val.langs))
        fill.added.append(f"{VALIDATION}.{PER_LANGUAGE}")
    how = f"tuned on the validation split re-predicted ({len(val.probs)} rows)"
    if DEV in missing:
        how += _backfill_dev(fill, run_dir, data_dir, thresholds, per_lang)
    if fill.report.meta.per_language_thresholds is ABSENT:
        fill.report.meta.per_language_thresholds = per_lang.per_language
    fill.report.meta.backfilled = {"by": "kemo report", "added": list(fill.added), "how": how}
    fill.notes.append(f"per-language thresholds {how}")
    return fill


def _backfill_dev(fill: Backfill, run_dir: Path, data_dir, thresholds, per_lang) -> str:
    """Dev scored at `per_lang` from `predictions_dev.csv`; returns how (for the note)."""
    glob = thresholds.global_only()
    try:
        dev = dev_probs(run_dir, data_dir)
        if dev.label_names != glob.label_names:
            raise InputError(f"{run_dir / L.PREDICTIONS_DEV}: labels "
                             f"{', '.join(dev.label_names)}, the run's "
                             f"{', '.join(glob.label_names)}")
    except InputError as e:
        fill.notes.append(f"dev: per-language thresholds not scored ({e})")
        return ""
    fill.report.split(DEV)[PER_LANGUAGE] = setting_report(
        dev.examples, per_lang.apply(dev.probs, dev.langs))
    fill.added.append(f"{DEV}.{PER_LANGUAGE}")
    how = f"; dev scored from {dev.note}"
    if dev.decisions is not None:  # the file's decisions: the run's thresholds
        same = thresholds.apply(dev.probs, dev.langs) == dev.decisions
        how += (f" (checked: its decisions reproduced in all {same.size} cells)"
                if same.all() else f" (WARNING: its decisions reproduced in "
                f"{int(same.sum())} of {same.size} cells only)")
    return how
