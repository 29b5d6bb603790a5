"""What every command that predicts takes: one trained run or an ensemble of runs.

`Predictor` is the interface `predict`, `evaluate`, `report`, `explain` and `export`
use; `kemo.prediction.trained_run.Run` (one model) and `kemo.prediction.ensemble_run.EnsembleRun` (members averaged)
implement it. `load_predictor(run_dir)` reads either kind of run directory.

Example:
    run = load_predictor("runs/ens")                 # a Run or an EnsembleRun
    probs = run.predict_probs(texts, langs=["eng"] * len(texts))
    decisions = run.decide(probs, langs=["eng"] * len(texts))
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np


class Predictor(Protocol):
    """A finished run that predicts: its directory, config, labels and thresholds."""

    path: Path
    config: object  # kemo.config.Config: data settings (languages, buckets, batch size)
    thresholds: object  # kemo.prediction.thresholds.ThresholdSearch the run decides with
    language_labels: dict  # language -> the labels it was validated on

    @property
    def label_names(self) -> list[str]: ...

    def predict_probs(self, texts, batch_size: int = 64, rows=None,
                      langs=None) -> np.ndarray:
        """Sigmoid probabilities (rows x labels); `rows` names rows in errors, `langs`
        (one code per row) lets an ensemble average the members trained on it."""

    def decide(self, probs, langs=None) -> np.ndarray:
        """0/1 decisions at the run's thresholds (per language where it has them)."""

    def predict(self, texts, batch_size: int = 64,
                langs=None) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, decisions)."""


def load_predictor(run_dir) -> Predictor:
    """The run in `run_dir`: an `EnsembleRun` if it holds `ensemble.json`, else a `Run`
    (every file validated first; one `InputError` naming the file and field)."""
    from kemo.run.ensemble_file import is_ensemble_dir

    if is_ensemble_dir(run_dir):
        from kemo.prediction.ensemble_run import load_ensemble

        return load_ensemble(run_dir)
    from kemo.prediction.trained_run import load_run

    return load_run(run_dir)
