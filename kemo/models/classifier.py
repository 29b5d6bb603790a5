"""The multi-label emotion classifier: backbone -> pooling -> dropout -> Dense logits.

The model outputs one logit per label; `keras.ops.sigmoid` of it is the probability.
It is a functional `keras.Model` over the backbone's inputs, built from registered
layers, so `model.save("model.keras")` reloads with `keras.models.load_model`.

Example:
    model = build_classifier(backbone, num_labels=6, pooling="mean", dropout=0.1)
    logits = model.predict(preprocessor(["I love it"]))
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kemo")
class MaskedPooling(keras.layers.Layer):
    """Pools a (batch, seq, dim) sequence to (batch, dim).

    `mode="cls"` takes the first token; `mode="mean"` averages the tokens where
    `padding_mask` is true (the pooling sentence-embedding models were trained with).
    """

    def __init__(self, mode="cls", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("cls", "mean"):
            raise ValueError(f"pooling mode must be 'cls' or 'mean', got {mode!r}")
        self.mode = mode

    def call(self, sequence, padding_mask):
        if self.mode == "cls":
            return sequence[:, 0, :]
        mask = ops.cast(padding_mask, sequence.dtype)[:, :, None]
        total = ops.sum(sequence * mask, axis=1)
        return total / ops.maximum(ops.sum(mask, axis=1), 1.0)

    def compute_output_shape(self, sequence_shape, padding_mask_shape=None):
        return (sequence_shape[0], sequence_shape[-1])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def build_classifier(backbone, num_labels: int, pooling: str = "cls",
                     dropout: float = 0.1, name: str = "emotion_classifier") -> keras.Model:
    """Wrap a keras-hub backbone with a pooled multi-label logit head."""
    inputs = backbone.input
    outputs = backbone(inputs)
    sequence = outputs["sequence_output"] if isinstance(outputs, dict) else outputs
    pooled = MaskedPooling(pooling, name="pooling")(sequence, inputs["padding_mask"])
    pooled = keras.layers.Dropout(dropout, name="head_dropout")(pooled)
    logits = keras.layers.Dense(num_labels, name="logits", dtype="float32")(pooled)
    return keras.Model(inputs, logits, name=name)
