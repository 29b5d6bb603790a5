"""Reading back what a training run wrote: model, preprocessor, thresholds, config.

Example:
    run = load_run("runs/tiny-20261127-231500")
    probs = run.predict_probs(["I am so happy today!"])
    decisions = run.thresholds.apply(probs)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from kemo.config import Config, load_config
from kemo.errors import InputError
from kemo.thresholds import ThresholdSearch

# Importing these registers the custom objects a saved model needs.
from kemo import losses as _losses, metrics as _metrics  # noqa: F401
from kemo.models import classifier as _classifier  # noqa: F401


@dataclass
class Run:
    """A finished run: its directory, config, model, preprocessor and thresholds."""

    path: Path
    config: Config
    model: keras.Model
    preprocessor: object
    thresholds: ThresholdSearch

    @property
    def label_names(self) -> list[str]:
        return list(self.thresholds.label_names)

    def predict_probs(self, texts, batch_size: int = 64) -> np.ndarray:
        """Sigmoid probabilities, shape (len(texts), num_labels)."""
        from kemo.data.pipeline import tokenize
        from kemo.training import predict_probs

        arrays = tokenize([str(t) for t in texts], self.preprocessor)
        return predict_probs(self.model, arrays, batch_size, self.config.data.length_buckets)

    def predict(self, texts, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, 0/1 decisions at the run's tuned thresholds)."""
        probs = self.predict_probs(texts, batch_size)
        return probs, self.thresholds.apply(probs)


def load_run(run_dir) -> Run:
    """Load a run directory written by `kemo.training.train` (Keras safe mode on)."""
    import keras_hub  # noqa: F401  (registers the preprocessor classes)

    path = Path(run_dir)
    needed = ["config.toml", "model.keras", "thresholds.json", "preprocessor"]
    if not path.is_dir():
        raise InputError(f"run directory {path}: not found")
    missing = [n for n in needed if not (path / n).exists()]
    if missing:
        raise InputError(f"run directory {path}: missing {', '.join(missing)} "
                         "(not a finished kemo run)")
    config = load_config(path / "config.toml")
    try:
        model = keras.models.load_model(path / "model.keras", compile=False, safe_mode=True)
    except Exception as e:
        raise InputError(f"{path / 'model.keras'}: cannot load model "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
                         ) from None
    if config.model.fused_attention:  # not kept by model.keras: as in training
        from kemo.models.backbones import use_fused_attention

        use_fused_attention(model)
    preprocessor = _load_preprocessor(path / "preprocessor")
    thresholds = ThresholdSearch.load(path / "thresholds.json")
    return Run(path, config, model, preprocessor, thresholds)


def _load_preprocessor(preset: Path):
    """The preprocessor saved by `save_to_preset` (preprocessor.json + assets/).

    `TextClassifierPreprocessor.from_preset` needs the backbone's config.json, which a
    run directory does not hold, so the layer is deserialised directly.
    """
    try:
        config = json.loads((preset / "preprocessor.json").read_text())
        preprocessor = keras.saving.deserialize_keras_object(config)
        preprocessor.load_preset_assets(str(preset))
    except Exception as e:
        raise InputError(f"{preset}: cannot load preprocessor "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
                         ) from None
    return preprocessor


def read_report(run_dir) -> dict:
    return json.loads((Path(run_dir) / "report.json").read_text())
