"""`Examples`: the texts of a split with their ids, languages, labels and label mask.

Every reader (Track A's `kemo.data.brighter`, any table's `kemo.data.table`) returns
`Examples`; `labels` and `mask` are (rows, labels) float32 arrays, `mask` 0 where a
label is unknown for a row (a label a Track A language does not annotate; a label only another
dataset of the run has), which losses and metrics skip.

Example:
    ex = Examples(ids, texts, langs, labels, np.ones_like(labels), ("calm", "tense"))
    ex.subset([0, 2]).y   # labels, -1 where unknown
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# y value for a label the example's language does not annotate (see `Examples.y`).
UNKNOWN = -1.0


@dataclass
class Examples:
    """A labelled (or unlabelled) set of texts from one or more languages.

    `labels` and `mask` are float32 arrays of shape (n, len(label_names)); `mask` is 1
    where the label is annotated for that row's language. Unlabelled splits (test)
    have `has_labels=False` and all-zero labels.
    """

    ids: np.ndarray
    texts: np.ndarray
    langs: np.ndarray
    labels: np.ndarray
    mask: np.ndarray
    label_names: tuple[str, ...]
    has_labels: bool = True

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def y(self) -> np.ndarray:
        """Labels with unknown entries set to `UNKNOWN` (-1): the model's target."""
        return np.where(self.mask > 0, self.labels, UNKNOWN).astype("float32")

    def subset(self, index) -> "Examples":
        index = np.asarray(index)
        return Examples(
            self.ids[index], self.texts[index], self.langs[index], self.labels[index],
            self.mask[index], self.label_names, self.has_labels,
        )

    def language_labels(self, lang: str) -> tuple[str, ...]:
        """The label columns annotated for `lang` (its own columns, in file order)."""
        rows = self.mask[self.langs == lang]
        known = rows.max(axis=0) if len(rows) else np.zeros(len(self.label_names))
        return tuple(n for n, k in zip(self.label_names, known) if k > 0)


def concat_examples(parts) -> Examples:
    """One `Examples` of `parts` in order (the same label names; labelled if all are)."""
    parts = list(parts)
    names = parts[0].label_names
    if any(p.label_names != names for p in parts):
        raise ValueError("concat_examples: parts with different label names")
    return Examples(*(np.concatenate([getattr(p, k) for p in parts])
                      for k in ("ids", "texts", "langs", "labels", "mask")),
                    names, all(p.has_labels for p in parts))


def align_labels(ex: Examples, label_names) -> Examples:
    """Re-index `ex` to `label_names` (labels it lacks become unknown)."""
    cols = [ex.label_names.index(n) if n in ex.label_names else None for n in label_names]
    labels = np.stack([ex.labels[:, c] if c is not None else np.zeros(len(ex)) for c in cols], 1)
    mask = np.stack([ex.mask[:, c] if c is not None else np.zeros(len(ex)) for c in cols], 1)
    return Examples(ex.ids, ex.texts, ex.langs, labels.astype("float32"),
                    mask.astype("float32"), tuple(label_names), ex.has_labels)
