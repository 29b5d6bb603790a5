"""MPNet's absolute position embedding: RoBERTa-style positions counted from the mask.

Token `i` of a row gets position `padding_idx + (number of real tokens up to i)`; padded
tokens get `padding_idx` itself. With `padding_idx=1` a row `<s> a b </s> <pad>` has
positions `2 3 4 5 1`, exactly as Hugging Face's `create_position_ids_from_input_ids`
computes them from the token ids. The table has `max_sequence_length + padding_idx + 1`
rows (514 for MPNet-base), so HF weights load unchanged.

Example:
    layer = MPNetPositionEmbedding(max_sequence_length=512, hidden_dim=768)
    layer(np.array([[1, 1, 1, 0]]))  # (1, 4, 768): rows 2, 3, 4 and 1 of the table
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kemo")
class MPNetPositionEmbedding(keras.layers.Layer):
    """Looks up position embeddings for positions derived from `padding_mask`.

    Args:
        max_sequence_length: int. The longest sequence (special tokens included).
        hidden_dim: int. The embedding width.
        padding_idx: int. The position of padded tokens; real tokens count from
            `padding_idx + 1`.
        initializer: the table's initializer.
    """

    def __init__(self, max_sequence_length, hidden_dim, padding_idx=1,
                 initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.max_sequence_length = int(max_sequence_length)
        self.hidden_dim = int(hidden_dim)
        self.padding_idx = int(padding_idx)
        self.initializer = keras.initializers.get(initializer)

    @property
    def table_size(self) -> int:
        return self.max_sequence_length + self.padding_idx + 1

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            name="embeddings", shape=(self.table_size, self.hidden_dim),
            initializer=self.initializer, trainable=True,
        )
        self.built = True

    def call(self, padding_mask):
        mask = ops.cast(padding_mask, "int32")
        positions = ops.cumsum(mask, axis=1) * mask + self.padding_idx
        return ops.take(self.embeddings, positions, axis=0)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.hidden_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "max_sequence_length": self.max_sequence_length,
            "hidden_dim": self.hidden_dim,
            "padding_idx": self.padding_idx,
            "initializer": keras.initializers.serialize(self.initializer),
        }
