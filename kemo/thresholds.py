"""Per-label decision thresholds, searched post hoc on held-out predictions.

For each label, the threshold maximising F1 on the precision-recall curve
(`sklearn.metrics.precision_recall_curve`) of the validation split's probabilities.
Fit them on the validation split carved from train; report on dev: never fit
thresholds on the split they are scored on.

Example:
    search = ThresholdSearch().fit(val_probs, val.labels, val.mask, val.label_names)
    decisions = search.apply(dev_probs)
    search.save(run_dir / "thresholds.json")
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.metrics import precision_recall_curve

from kemo import run_files as rf


@dataclass
class ThresholdSearch:
    """Per-label thresholds (0.5 until `fit`), with the validation F1 each reached."""

    thresholds: list[float] = field(default_factory=list)
    label_names: list[str] = field(default_factory=list)
    val_f1: list[float] = field(default_factory=list)
    default: float = 0.5

    def fit(self, probs, labels, mask, label_names):
        self.label_names = list(label_names)
        self.thresholds, self.val_f1 = [], []
        for j in range(probs.shape[1]):
            known = mask[:, j] > 0
            t, f1 = best_f1_threshold(labels[known, j], probs[known, j], self.default)
            self.thresholds.append(t)
            self.val_f1.append(f1)
        return self

    def apply(self, probs) -> np.ndarray:
        """0/1 decisions: prob >= threshold per label."""
        t = np.asarray(self.thresholds or [self.default] * probs.shape[1], "float32")
        return (probs >= t[None, :]).astype("int32")

    def to_dict(self) -> dict:
        return {"label_names": self.label_names, "thresholds": self.thresholds,
                "val_f1": self.val_f1, "fitted_on": "validation split of train"}

    def save(self, path):
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path, label_names=None, source: str = ""):
        """Read and validate `thresholds.json`: one finite threshold in [0, 1] per label;
        with `label_names` (the run's own labels, read from `source`), its
        `label_names` must equal them."""
        d = rf.read_json(path)
        names = rf.label_names(rf.field(d, "label_names", path, list), path, "label_names",
                               label_names, source)
        thresholds = rf.numbers(rf.field(d, "thresholds", path, list), path, "thresholds",
                                len(names), 0.0, 1.0)
        val_f1 = rf.field(d, "val_f1", path, list, optional=True, default=[])
        if val_f1:
            rf.numbers(val_f1, path, "val_f1", len(names), 0.0, 1.0)
        return cls([float(t) for t in thresholds], names, [float(f) for f in val_f1])


def best_f1_threshold(y_true, probs, default: float = 0.5) -> tuple[float, float]:
    """(threshold, F1) maximising F1 on the PR curve; `default` if no positives."""
    y_true = np.asarray(y_true)
    if y_true.size == 0 or y_true.sum() == 0:
        return default, 0.0
    precision, recall, thresholds = precision_recall_curve(y_true, probs)
    p, r = precision[:-1], recall[:-1]
    f1 = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)
    best = int(np.argmax(f1))
    return float(thresholds[best]), float(f1[best])
