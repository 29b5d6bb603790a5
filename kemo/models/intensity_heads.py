"""Heads for emotion intensities 0..K (Track B): a scaled regression or cumulative logits.

`model.head = "regression"`: one output per label, `K * sigmoid(z)`, the intensity
itself (trained with `kemo.training.intensity_losses.MaskedIntensityMSE`).
`model.head = "ordinal"`: per label K cumulative logits, `sigmoid(logit_k) = P(y > k)`,
one shared projection per label plus K ordered offsets (CORAL, Cao et al. 2020; trained
with `CumulativeOrdinalLoss`); the continuous intensity is the expected value
`sum_k P(y > k)`. `intensity_scores` turns either output into that (rows, labels) score.

Example:
    model = build_intensity_model(backbone, num_labels=6, max_intensity=3, head="ordinal")
    scores = intensity_scores(model.predict(x))   # (rows, 6), each in [0, 3]
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from kemo.models.classifier import MaskedPooling

HEADS = ("regression", "ordinal")


@keras.saving.register_keras_serializable(package="kemo")
class ScaledSigmoid(keras.layers.Layer):
    """`max_intensity * sigmoid(x)`: a regression output bounded to [0, K]."""

    def __init__(self, max_intensity=3, **kwargs):
        super().__init__(**kwargs)
        self.max_intensity = int(max_intensity)

    def call(self, x):
        return self.max_intensity * ops.sigmoid(ops.cast(x, "float32"))

    def compute_output_shape(self, shape):
        return shape

    def get_config(self):
        return {**super().get_config(), "max_intensity": self.max_intensity}


@keras.saving.register_keras_serializable(package="kemo")
class CumulativeLogits(keras.layers.Layer):
    """(batch, dim) -> (batch, labels, K) logits of P(y > k): one projection per label
    (shared by its K thresholds, CORAL's rank consistency) plus K offsets kept in
    decreasing order (offset_k = b_1 - sum of softplus steps), so P(y > k) never rises
    with k."""

    def __init__(self, num_labels, max_intensity=3, **kwargs):
        super().__init__(**kwargs)
        self.num_labels, self.max_intensity = int(num_labels), int(max_intensity)

    def build(self, input_shape):
        k = self.max_intensity
        self.kernel = self.add_weight(shape=(input_shape[-1], self.num_labels),
                                      initializer="glorot_uniform", name="kernel")
        first = np.full((self.num_labels, 1), (k - 1) / 2, "float32")  # start: ~rounding
        steps = np.full((self.num_labels, k - 1), np.log(np.e - 1), "float32")  # softplus 1
        self.first = self.add_weight(shape=(self.num_labels, 1), name="first_offset",
                                     initializer=keras.initializers.Constant(first))
        self.steps = self.add_weight(shape=(self.num_labels, k - 1), name="offset_steps",
                                     initializer=keras.initializers.Constant(steps))

    def call(self, x):
        score = ops.matmul(ops.cast(x, "float32"), ops.cast(self.kernel, "float32"))
        drops = ops.cumsum(ops.softplus(self.steps), axis=-1)
        offsets = ops.concatenate([self.first, self.first - drops], axis=-1)
        return score[:, :, None] + offsets[None, :, :]

    def compute_output_shape(self, shape):
        return (shape[0], self.num_labels, self.max_intensity)

    def get_config(self):
        return {**super().get_config(), "num_labels": self.num_labels,
                "max_intensity": self.max_intensity}


def build_intensity_model(backbone, num_labels: int, max_intensity: int,
                          head: str = "regression", pooling: str = "cls",
                          dropout: float = 0.1, name: str = "intensity_model") -> keras.Model:
    """A keras-hub backbone under an intensity head (`HEADS`), a functional model."""
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}")
    inputs = backbone.input
    outputs = backbone(inputs)
    sequence = outputs["sequence_output"] if isinstance(outputs, dict) else outputs
    pooled = MaskedPooling(pooling, name="pooling")(sequence, inputs["padding_mask"])
    pooled = keras.layers.Dropout(dropout, name="head_dropout")(pooled)
    if head == "ordinal":
        out = CumulativeLogits(num_labels, max_intensity, name="cumulative_logits",
                               dtype="float32")(pooled)
    else:
        z = keras.layers.Dense(num_labels, name="logits", dtype="float32")(pooled)
        out = ScaledSigmoid(max_intensity, name="intensity", dtype="float32")(z)
    return keras.Model(inputs, out, name=name)


def intensity_scores(outputs):
    """The continuous intensity (rows, labels) of either head's output: the output
    itself (regression) or sum_k sigmoid(logit_k) (ordinal, 3-D). keras.ops in, out."""
    outputs = ops.cast(outputs, "float32")
    if len(outputs.shape) == 3:
        return ops.sum(ops.sigmoid(outputs), axis=-1)
    return outputs
