"""Finishing a run: thresholds, the report, the prediction files, and `report.json` last.

Training (`kemo.training`) and ensembles (`kemo.ensemble`) finish alike: the
thresholds are tuned on validation or not as the config's `thresholds` table says
(`decides_with` is the one place that reads it), the run decides with one setting,
the report holds validation (and dev) at 0.5, at the tuned global thresholds and at
per-language ones, and every file is written whole or not at all (`kemo.atomic`).
`report.json` is written last (`kemo.run.report_file.Report.write`): its presence
marks a finished run.

Example:
    fin = finish(cfg.thresholds, val, dev, {"val": val_probs, "dev": dev_probs})
    write_decisions(run_dir, fin, val, dev, probs)   # thresholds.json, predictions
    ...                                               # the run's own files
    Report(fin.splits, Meta(val_rows=len(val), **fin.meta_fields())).write(run_dir)
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from kemo.run import layout as L
from kemo.run.report_file import DEV, VALIDATION, Setting

log = logging.getLogger(__name__)


def decides_with(tcfg, warn: bool = False) -> Setting:
    """The setting a run decides with, from its config's `thresholds` table: at 0.5
    without tuning, else per language or global as `per_language` says."""
    if tcfg.per_language and not tcfg.tune and warn:
        log.warning("note: thresholds.per_language needs thresholds.tune = true: the run "
                    "decides at 0.5")
    if not tcfg.tune:
        return Setting.AT_HALF
    return Setting.PER_LANGUAGE if tcfg.per_language else Setting.GLOBAL


@dataclass
class Finish:
    """The thresholds tuned on validation and the split scores they give."""

    search: object  # ThresholdSearch: the global thresholds (0.5 without tuning)
    per_language: object  # ThresholdSearch with per-language thresholds (for the report)
    decides_with: Setting
    splits: dict  # VALIDATION (and DEV) -> `classification_scores.full_report`

    @property
    def decide(self):
        """The thresholds the run decides with (written to thresholds.json)."""
        return self.per_language if self.decides_with == Setting.PER_LANGUAGE else self.search

    def meta_fields(self) -> dict:
        """report.json's `Meta` fields on how the run decides."""
        return dict(decides_with=self.decides_with,
                    per_language_thresholds=self.per_language.per_language)


def finish(tcfg, val, dev, probs, warn: bool = False) -> Finish:
    """Tune on `val` (or not), and report `val` and `dev` (None: no dev) with
    `probs` = {"val": ..., "dev": ...} (probabilities, rows x labels)."""
    from kemo.evaluation.classification_scores import full_report
    from kemo.prediction.thresholds import tune_on_validation

    search, per_lang = tune_on_validation(probs["val"], val, tcfg.tune)
    splits = {VALIDATION: full_report(val, probs["val"], search, per_lang)}
    if dev is not None:
        splits[DEV] = full_report(dev, probs["dev"], search, per_lang)
    return Finish(search, per_lang, decides_with(tcfg, warn), splits)


def write_decisions(run_dir, fin: Finish, val, dev, probs, dataset=None) -> None:
    """`thresholds.json`, `predictions_val.csv`, and with dev `predictions_dev.csv` and
    `predictions/dev/` (the official pred_<lang>.csv files of Track A; a table dataset's
    dev file in its own shape, `kemo.prediction.dataset_files`), each whole or absent."""
    from kemo.atomic import write_text
    from kemo.prediction.split_files import write_split_predictions, write_split_submission

    decide = fin.decide
    write_text(run_dir / L.THRESHOLDS, json.dumps(decide.to_dict(), indent=2))
    write_split_predictions(run_dir / L.PREDICTIONS_VAL, val, probs["val"], decide)
    if dev is not None:
        write_split_predictions(run_dir / L.PREDICTIONS_DEV, dev, probs["dev"], decide)
        if dataset is not None and dataset.layout != "track_a":
            from kemo.prediction.dataset_files import write_dataset_predictions

            write_dataset_predictions(run_dir / L.PREDICTIONS / "dev", dataset, "dev", dev,
                                      probs["dev"], decide.apply(probs["dev"], dev.langs))
        else:
            write_split_submission(run_dir / L.PREDICTIONS / "dev", dev, probs["dev"], decide)

