"""MPNet's relative position bias: one learnt scalar per head and distance bucket.

For query `i` and key `j` the bucket depends on `n = i - j`: keys after the query use
the upper half of the buckets; `|n|` below `num_buckets // 4` gets its own bucket, and
larger distances share logarithmically wider buckets up to `max_distance`, beyond which
all fall into the last one (T5's bucketing, as in Hugging Face's
`MPNetEncoder.relative_position_bucket`). The bias is computed once per sequence length
and added to every layer's attention scores, as in HF.

Distances are mapped to buckets through a table computed once in numpy with HF's own
float32 formula, so the result is integer-exact (also under bfloat16 and in an exported
SavedModel with a dynamic sequence length).

Example:
    bias = MPNetRelativePositionBias(num_heads=12)(hidden_states)  # (1, 12, L, L)
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops


def relative_position_bucket_table(num_buckets: int = 32, max_distance: int = 128) -> np.ndarray:
    """Bucket of each absolute distance 0..max_distance, for one direction (int32).

    Uses HF's formula in float32: `max_exact + int(log(n / max_exact) /
    log(max_distance / max_exact) * (half - max_exact))`, capped at `half - 1`, where
    `half = num_buckets // 2` and `max_exact = half // 2`.
    """
    half = num_buckets // 2
    max_exact = half // 2
    n = np.arange(max_distance + 1)
    scaled = (np.log(np.maximum(n, 1).astype(np.float32) / np.float32(max_exact))
              / np.float32(math.log(max_distance / max_exact)) * np.float32(half - max_exact))
    large = np.minimum(max_exact + scaled.astype(np.int64), half - 1)
    return np.where(n < max_exact, n, large).astype(np.int32)


@keras.saving.register_keras_serializable(package="kemo")
class MPNetRelativePositionBias(keras.layers.Layer):
    """Maps a (batch, seq, dim) input to its (1, num_heads, seq, seq) attention bias.

    Args:
        num_heads: int. Attention heads (one bias per head).
        num_buckets: int. Distance buckets, both directions together.
        max_distance: int. Distances from here on share the last bucket.
        initializer: the (num_buckets, num_heads) table's initializer.
    """

    def __init__(self, num_heads, num_buckets=32, max_distance=128,
                 initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.num_buckets = int(num_buckets)
        self.max_distance = int(max_distance)
        self.initializer = keras.initializers.get(initializer)
        self._table = relative_position_bucket_table(self.num_buckets, self.max_distance)

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            name="embeddings", shape=(self.num_buckets, self.num_heads),
            initializer=self.initializer, trainable=True,
        )
        self.built = True

    def buckets(self, length):
        """The (length, length) bucket ids; row = query position, column = key."""
        positions = ops.arange(length, dtype="int32")
        n = positions[:, None] - positions[None, :]  # query - key (HF: -(memory - context))
        direction = ops.cast(n < 0, "int32") * (self.num_buckets // 2)
        distance = ops.minimum(ops.abs(n), self.max_distance)
        return direction + ops.take(ops.convert_to_tensor(self._table), distance, axis=0)

    def call(self, inputs):
        values = ops.take(self.embeddings, self.buckets(ops.shape(inputs)[1]), axis=0)
        return ops.expand_dims(ops.transpose(values, (2, 0, 1)), 0)

    def compute_output_shape(self, input_shape):
        return (1, self.num_heads, input_shape[1], input_shape[1])

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "num_buckets": self.num_buckets,
            "max_distance": self.max_distance,
            "initializer": keras.initializers.serialize(self.initializer),
        }
