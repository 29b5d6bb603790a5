"""`TrainContext`: what every step of one training reads, settled once.

The caller's request (config, run directory, resume, overwrite, progress) and the two
facts decided from the checked inputs: what early stopping monitors and which input
path feeds the model. Frozen: a step reads it and returns what it makes.

Example:
    ctx = TrainContext(cfg, Path("runs/tiny"), started=time.time(),
                       monitor="val_macro_f1", tf_data=True)
    ctx.intensity   # False: 0/1 labels
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kemo import multiprocess
from kemo.config import Config
from kemo.evaluation.intensity import LANGUAGE_MEAN_R_KEY
from kemo.evaluation.classification_scores import LANGUAGE_MEAN_KEY
from kemo.training.validation_callback import monitor_key


@dataclass(frozen=True)
class TrainContext:
    """One training's settled facts.

    `monitor`: the log early stopping reads (`run_monitor`). `tf_data`: True feeds
    batches through tf.data (the run tokenised its texts, so TensorFlow is loaded),
    False through numpy (a token cache: TensorFlow is never imported); decided once,
    by `kemo.training.trainer`, and passed as it is to every batch source.
    """

    cfg: Config
    run_dir: Path
    started: float  # time.time() when the training began (report.json's total_seconds)
    monitor: str
    tf_data: bool
    resume: bool = False
    overwrite: bool = False
    keep_checkpoints: bool = False
    verbose: int = 2  # Keras' progress: 0 none, 1 a bar, 2 a line per epoch

    @property
    def intensity(self) -> bool:
        """Whether the run's labels are intensities 0..K (Track B), not 0/1."""
        return is_intensity(self.cfg)

    @property
    def several_languages(self) -> bool:
        """Whether early stopping reads a mean over languages (one validation pass,
        `kemo.training.validation_callback`)."""
        return self.monitor in (LANGUAGE_MEAN_KEY, LANGUAGE_MEAN_R_KEY)

    @property
    def writer(self) -> bool:
        """Whether this process writes the run (process 0 of several; the only one)."""
        return multiprocess.is_writer()


def is_intensity(cfg: Config) -> bool:
    """Whether the run's labels are intensities 0..K (Track B), not 0/1."""
    return cfg.data.label_kind == "intensity"


def run_monitor(cfg: Config, languages) -> str:
    """What early stopping reads: val macro-F1 or, for intensities, val Pearson r; with
    several languages the mean over languages (the shared task's number)."""
    if not is_intensity(cfg):
        return monitor_key(languages)
    return LANGUAGE_MEAN_R_KEY if len(set(languages)) > 1 else "val_pearson_r"
