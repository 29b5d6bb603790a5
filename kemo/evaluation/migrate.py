"""The per-language comparison for runs trained before it: fill report.json's gaps.

A run trained before per-language thresholds has a `report.json` without the
`per_language_thresholds` settings and `mean_over_languages`, and no
`predictions_val.csv`. `backfill_report` adds them without changing anything the run
wrote: per-language thresholds are tuned on the validation split re-created and
re-predicted by `kemo.evaluation.split_probs.validation_probs` (only when it reproduces
training's rows and macro-F1; never on dev), and scored on validation and on dev
(dev probabilities from `predictions_dev.csv`, 6 decimals, checked against the
decisions written there). `save_backfill` writes the completed `report.json` in place
(atomically, holding the run's lock) and `predictions_val.csv` beside it.

Example:
    val = validation_probs(run_dir, data_dir)
    fill = backfill_report(run_dir, state.report, state.thresholds, val, data_dir)
    if fill.changed:
        save_backfill(run_dir, fill)  # report.json completed in place
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

from kemo.errors import InputError
from kemo.evaluation.report import add_language_means, setting_report
from kemo.run import layout as L
from kemo.evaluation.split_probs import SplitProbs, dev_probs
from kemo.prediction.thresholds import ThresholdSearch
from kemo.evaluation.finish import PER_LANGUAGE


@dataclass
class Backfill:
    """The completed report, what was added to it, and notes on how (or why not)."""

    report: dict
    added: list[str] = field(default_factory=list)  # e.g. "dev.per_language_thresholds"
    notes: list[str] = field(default_factory=list)
    val: SplitProbs | None = None  # to write predictions_val.csv from
    thresholds: ThresholdSearch | None = None  # the run's own (its decisions)

    @property
    def changed(self) -> bool:
        """Whether `save_backfill` has anything to write."""
        return bool(self.added) or self.val is not None


def backfill_report(run_dir, report: dict, thresholds: ThresholdSearch,
                    val: SplitProbs | None, data_dir=None) -> Backfill:
    """`report` with its missing means and per-language settings added (a copy)."""
    run_dir = Path(run_dir)
    fill = Backfill(copy.deepcopy(report), thresholds=thresholds)
    reproduced = val is not None and val.split == "validation" and val.reproduced
    if reproduced and not (run_dir / L.PREDICTIONS_VAL).exists():
        fill.val = val
    splits = [s for s in ("validation", "dev") if s in fill.report]
    for split in splits:
        if add_language_means(fill.report[split]):
            fill.added.append(f"{split}.mean_over_languages")
    missing = [s for s in splits if PER_LANGUAGE not in fill.report[s]]
    if not missing:
        return fill
    if not reproduced:
        why = ("the validation split could not be re-created" if val is None or
               val.split != "validation" else "the re-created validation split does not "
               "reproduce training's")
        fill.notes.append(f"per-language thresholds not computed: {why} (they are tuned "
                          "on validation only; pass --data-dir with the run's training data)")
        return fill
    glob = thresholds.global_only()
    per_lang = glob.tuned_per_language(val.probs, val.labels, val.mask, val.langs)
    if "validation" in missing:
        fill.report["validation"][PER_LANGUAGE] = setting_report(
            val.examples, per_lang.apply(val.probs, val.langs))
        fill.added.append(f"validation.{PER_LANGUAGE}")
    how = f"tuned on the validation split re-predicted ({len(val.probs)} rows)"
    if "dev" in missing:
        try:
            dev = dev_probs(run_dir, data_dir)
            if dev.label_names != glob.label_names:
                raise InputError(f"{run_dir / L.PREDICTIONS_DEV}: labels "
                                 f"{', '.join(dev.label_names)}, the run's "
                                 f"{', '.join(glob.label_names)}")
        except InputError as e:
            fill.notes.append(f"dev: per-language thresholds not scored ({e})")
        else:
            fill.report["dev"][PER_LANGUAGE] = setting_report(
                dev.examples, per_lang.apply(dev.probs, dev.langs))
            fill.added.append(f"dev.{PER_LANGUAGE}")
            how += f"; dev scored from {dev.note}"
            if dev.decisions is not None:  # the file's decisions: the run's thresholds
                same = thresholds.apply(dev.probs, dev.langs) == dev.decisions
                how += (f" (checked: its decisions reproduced in all {same.size} cells)"
                        if same.all() else f" (WARNING: its decisions reproduced in "
                        f"{int(same.sum())} of {same.size} cells only)")
    meta = fill.report.setdefault("meta", {})
    meta.setdefault("per_language_thresholds", per_lang.per_language)
    meta["backfilled"] = {"by": "kemo report", "added": list(fill.added), "how": how}
    fill.notes.append(f"per-language thresholds {how}")
    return fill


def save_backfill(run_dir, fill: Backfill) -> list[Path]:
    """Write `fill.report` over `report.json` (atomically, under the run lock) and,
    when missing, `predictions_val.csv`; returns the paths written."""
    from kemo.run.lock import RunLock

    run_dir = Path(run_dir)
    written = []
    with RunLock(run_dir):
        if fill.val is not None and not (run_dir / L.PREDICTIONS_VAL).exists():
            from kemo.prediction.split_files import write_split_predictions

            write_split_predictions(run_dir / L.PREDICTIONS_VAL, fill.val.examples,
                                    fill.val.probs, fill.thresholds)
            written.append(run_dir / L.PREDICTIONS_VAL)
        if fill.added:  # the migration of a format-1 report: it is format 2 now
            from kemo.evaluation.finish import write_report

            write_report(run_dir, fill.report)
            written.append(run_dir / L.REPORT)
    return written
