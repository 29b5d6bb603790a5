"""Masked multi-label losses computed from logits: binary cross-entropy and focal loss.

Targets use -1 for a label the example's language does not annotate (see
`kemo.data.brighter.UNKNOWN`); such entries contribute nothing. Each example's loss is
the mean over its known labels; the batch loss is the mean over examples that have at
least one known label (rows with none, such as evaluation padding, do not count).

Example:
    loss = FocalLoss(gamma=2.0, alpha=[1.2, 0.8, 1.0, 1.0, 1.0])
    model.compile(optimizer="adamw", loss=loss)
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def known_mask(y_true):
    """1.0 where the label is annotated (target 0 or 1), 0.0 where it is -1."""
    return ops.cast(ops.greater_equal(y_true, 0.0), "float32")


def bce_from_logits(y_true, logits):
    """Element-wise binary cross-entropy, stable for any logit: max(x,0) - xy + log1p(e^-|x|)."""
    logits = ops.cast(logits, "float32")
    y = ops.clip(ops.cast(y_true, "float32"), 0.0, 1.0)
    return ops.relu(logits) - logits * y + ops.log1p(ops.exp(-ops.abs(logits)))


@keras.saving.register_keras_serializable(package="kemo")
class MaskedBinaryCrossentropy(keras.losses.Loss):
    """Binary cross-entropy from logits over the known labels of each example."""

    def __init__(self, name="masked_bce", reduction="sum_over_batch_size", **kwargs):
        super().__init__(name=name, reduction=reduction, dtype="float32", **kwargs)

    def elementwise(self, y_true, logits):
        """The (batch, labels) loss before masking and averaging."""
        return bce_from_logits(y_true, logits)

    def call(self, y_true, y_pred):
        mask = known_mask(y_true)
        per_label = self.elementwise(y_true, y_pred) * mask
        known = ops.sum(mask, axis=-1)
        per_example = ops.sum(per_label, axis=-1) / ops.maximum(known, 1.0)
        # Rows with no known label (evaluation padding) must not dilute the batch mean:
        # scale so Keras' mean over the batch is the mean over rows with labels.
        rows = ops.cast(ops.shape(known)[0], "float32")
        has_labels = ops.cast(known > 0, "float32")
        return per_example * rows / ops.maximum(ops.sum(has_labels), 1.0)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}


@keras.saving.register_keras_serializable(package="kemo")
class FocalLoss(MaskedBinaryCrossentropy):
    """Focal loss `alpha_c * (1 - p_t)^gamma * BCE` from logits, masked.

    `p_t` is the probability given to the true value (p for 1, 1-p for 0), computed
    stably as exp(-BCE). `alpha` is one weight per class (e.g. from
    `inverse_frequency_alpha`) or None for 1.0 everywhere.
    """

    def __init__(self, gamma=2.0, alpha=None, name="focal_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.gamma = float(gamma)
        self.alpha = None if alpha is None else [float(a) for a in alpha]

    def elementwise(self, y_true, logits):
        bce = bce_from_logits(y_true, logits)
        loss = bce
        if self.gamma != 0.0:
            # Clamped away from 0 so d/dx (1-p_t)^gamma stays finite for gamma < 1.
            p_t = ops.exp(-bce)
            loss = ops.power(ops.maximum(1.0 - p_t, 1e-12), self.gamma) * bce
        if self.alpha is not None:
            loss = loss * ops.convert_to_tensor(np.asarray(self.alpha, "float32"))
        return loss

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma, "alpha": self.alpha}


def inverse_frequency_alpha(labels: np.ndarray, mask: np.ndarray) -> list[float]:
    """Per-class alpha proportional to 1 / positive rate (over known rows), mean 1.

    A class with no positives gets the largest alpha seen (it cannot be estimated).
    """
    known = np.maximum(mask.sum(axis=0), 1.0)
    rate = (labels * mask).sum(axis=0) / known
    inv = np.where(rate > 0, 1.0 / np.maximum(rate, 1e-12), np.nan)
    inv = np.where(np.isnan(inv), np.nanmax(inv) if np.isfinite(inv).any() else 1.0, inv)
    return [float(a) for a in inv / inv.mean()]


def make_loss(name: str, gamma: float = 2.0, alpha=None) -> MaskedBinaryCrossentropy:
    """The loss named in a config: "bce" or "focal"."""
    if name == "bce":
        return MaskedBinaryCrossentropy()
    if name == "focal":
        return FocalLoss(gamma=gamma, alpha=alpha)
    raise ValueError(f"unknown loss {name!r}")
