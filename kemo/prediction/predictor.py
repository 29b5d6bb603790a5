"""What every command that predicts takes: one trained run or an ensemble of runs.

`Predictor` is the interface `predict`, `evaluate`, `report`, `explain` and `export`
use; `kemo.prediction.trained_run.Run` (one model) and
`kemo.prediction.ensemble_run.EnsembleRun` (members averaged) implement it.
`load_predictor(run_dir)` reads either kind of run directory, and
`validation_examples(run_dir)` re-creates the rows either kind tuned its thresholds on.

Example:
    run = load_predictor("runs/ens")                 # a Run or an EnsembleRun
    probs = run.predict_probs(texts, langs=["eng"] * len(texts))
    decisions = run.decide(probs, langs=["eng"] * len(texts))
    val = validation_examples("runs/ens")            # no model loaded
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from kemo.config import load_config
from kemo.prediction.ensemble_data import ensemble_data
from kemo.prediction.ensemble_run import load_ensemble
from kemo.run import layout as L
from kemo.run.ensemble_file import is_ensemble_dir, read_ensemble_file
from kemo.run.manifest import recorded_data_dir


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
    from kemo.prediction.trained_run import load_run  # loads Keras

    return load_ensemble(run_dir) if is_ensemble_dir(run_dir) else load_run(run_dir)


def validation_examples(run_dir, data_dir=None):
    """The validation rows (`Examples`) the run in `run_dir` tuned its thresholds on,
    re-created from its config as training did (`kemo.data.splits.load_data`: same
    config, same seed); an ensemble's: the rows its members share, as
    `kemo.ensemble.build_ensemble` took them. No model is loaded."""
    from kemo.data.splits import load_data  # loads pandas
    from kemo.prediction.trained_run import read_run_state  # loads Keras

    if is_ensemble_dir(run_dir):
        paths = [Path(p) for p in read_ensemble_file(Path(run_dir))["paths"]]
        return ensemble_data([read_run_state(p) for p in paths], paths, data_dir).val
    return load_data(load_config(Path(run_dir) / L.CONFIG), data_dir,
                     recorded_data_dir(run_dir)).val
