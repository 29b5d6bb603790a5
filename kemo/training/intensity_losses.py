"""Masked losses for intensity heads (`kemo.models.intensity_heads`).

Targets are intensities 0..K, -1 where a label is unknown (skipped, as in
`kemo.training.losses`); the per-example mean over known labels and the batch mean over rows
with a known label are `MaskedBinaryCrossentropy`'s.

Example:
    model.compile(optimizer="adamw", loss=make_intensity_loss("ordinal", max_intensity=3))
"""

from __future__ import annotations

import keras
from keras import ops

from kemo.training.losses import MaskedBinaryCrossentropy, bce_from_logits


@keras.saving.register_keras_serializable(package="kemo")
class MaskedIntensityMSE(MaskedBinaryCrossentropy):
    """Squared error of the intensity, divided by K^2 (so it lies in [0, 1])."""

    def __init__(self, max_intensity=3, name="masked_intensity_mse", **kwargs):
        super().__init__(name=name, **kwargs)
        self.max_intensity = int(max_intensity)

    def elementwise(self, y_true, y_pred):
        y = ops.maximum(ops.cast(y_true, "float32"), 0.0)
        diff = (ops.cast(y_pred, "float32") - y) / float(self.max_intensity)
        return diff * diff

    def get_config(self):
        return {**super().get_config(), "max_intensity": self.max_intensity}


@keras.saving.register_keras_serializable(package="kemo")
class CumulativeOrdinalLoss(MaskedBinaryCrossentropy):
    """Mean over k = 0..K-1 of the binary cross-entropy of logit_k against [y > k]
    (CORAL's loss); predictions (batch, labels, K)."""

    def __init__(self, max_intensity=3, name="cumulative_ordinal_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.max_intensity = int(max_intensity)

    def elementwise(self, y_true, logits):
        y = ops.cast(y_true, "float32")[:, :, None]
        # target k of an emotion: 1 when its (integer) intensity reaches k + 1, i.e. y > k
        reaches = ops.arange(1, self.max_intensity + 1, dtype="float32")[None, None, :]
        above = ops.cast(ops.greater_equal(y, reaches), "float32")
        return ops.mean(bce_from_logits(above, logits), axis=-1)

    def get_config(self):
        return {**super().get_config(), "max_intensity": self.max_intensity}


def make_intensity_loss(head: str, max_intensity: int) -> MaskedBinaryCrossentropy:
    """The loss of a head: "regression" -> MSE, "ordinal" -> cumulative BCE."""
    if head == "regression":
        return MaskedIntensityMSE(max_intensity)
    if head == "ordinal":
        return CumulativeOrdinalLoss(max_intensity)
    raise ValueError(f"unknown intensity head {head!r}")
