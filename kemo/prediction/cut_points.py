"""How an intensity (Track B) run decides: per-emotion cut points turn a continuous score
into an integer 0..K (intensity = how many cut points the score reaches), as thresholds
turn a probability into 0/1 (`kemo.prediction.thresholds`). Tuned on validation by
`kemo.evaluation.intensity.fit_cut_points`; untuned, they sit at k - 0.5 (rounding).

Example:
    cuts = CutPoints(("joy",), untuned_cut_points(1, 3), 3, tuned=False)
    cuts.apply(np.array([[0.4], [1.6], [2.9]]))      # [[0], [2], [3]]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def untuned_cut_points(num_labels: int, max_intensity: int) -> np.ndarray:
    """(labels, K) cut points at k - 0.5: rounding to the nearest intensity."""
    k = np.arange(1, max_intensity + 1)
    return np.tile((2 * k - 1) / 2, (num_labels, 1))  # k - 1/2


def apply_cut_points(scores, cuts) -> np.ndarray:
    """Integers 0..K (rows x labels): how many of each label's cut points the score reaches."""
    scores, cuts = np.asarray(scores, "float64"), np.asarray(cuts, "float64")
    return (scores[:, :, None] >= cuts[None, :, :]).sum(axis=-1).astype("int64")


@dataclass
class CutPoints:
    """A run's cut points (labels x K), applied as thresholds are (`apply`)."""

    label_names: tuple[str, ...]
    cuts: np.ndarray
    max_intensity: int
    tuned: bool = True

    def apply(self, scores, langs=None) -> np.ndarray:
        """Integers 0..K (rows x labels); `langs` is accepted as `ThresholdSearch.apply`'s."""
        return apply_cut_points(scores, self.cuts)

    def to_dict(self) -> dict:
        return {"max_intensity": self.max_intensity, "tuned_on": "validation" if self.tuned
                else "untuned (k - 0.5)", "cut_points": {
                    n: [round(float(c), 6) for c in row]
                    for n, row in zip(self.label_names, self.cuts)}}

    @classmethod
    def from_dict(cls, d: dict) -> "CutPoints":
        names = tuple(d["cut_points"])
        return cls(names, np.array([d["cut_points"][n] for n in names], "float64"),
                   int(d["max_intensity"]), d.get("tuned_on") == "validation")
