"""The MPNet encoder (Song et al. 2020) as a keras-hub `Backbone`.

Architecture as Hugging Face's `MPNetModel`: token embedding plus a RoBERTa-style
absolute position embedding (positions start after `padding_idx`), LayerNorm, dropout;
then `num_layers` post-LayerNorm blocks whose attention scores all get one shared
relative position bias (T5-style buckets). Exact GELU, LayerNorm epsilon 1e-5. Inputs
`token_ids` and `padding_mask`; the output is the sequence of last hidden states
(batch, seq, hidden_dim), as keras-hub's `RobertaBackbone` returns. HF's pooler (a
tanh dense layer on the first token, unused by sentence-transformers) is left out.

Example:
    backbone = MPNetBackbone(vocabulary_size=30527, num_layers=2, num_heads=4,
                             hidden_dim=64, intermediate_dim=128)
    hidden = backbone({"token_ids": np.array([[0, 7, 2, 1]]),
                       "padding_mask": np.array([[1, 1, 1, 0]])})   # (1, 4, 64)
    backbone = kemo.models.mpnet.load_mpnet_backbone("/path/to/hf/all-mpnet-base-v2")
"""

from __future__ import annotations

import keras
import keras_hub
from keras.layers import ReversibleEmbedding

from kemo.models.mpnet.mpnet_encoder_layer import MPNetEncoderLayer
from kemo.models.mpnet.mpnet_position_embedding import MPNetPositionEmbedding
from kemo.models.mpnet.mpnet_relative_position_bias import MPNetRelativePositionBias


def mpnet_kernel_initializer(stddev=0.02):
    return keras.initializers.TruncatedNormal(stddev=stddev)


@keras.saving.register_keras_serializable(package="kemo")
class MPNetBackbone(keras_hub.models.Backbone):
    """An MPNet encoder network.

    Args:
        vocabulary_size: int. Size of the token vocabulary.
        num_layers: int. Transformer blocks.
        num_heads: int. Attention heads per block (divides `hidden_dim`).
        hidden_dim: int. Width of the hidden states.
        intermediate_dim: int. Width of each block's feedforward hidden layer.
        dropout: float. Embedding, attention-probability and residual dropout.
        max_sequence_length: int. Longest input, special tokens included (512 for
            HF's `max_position_embeddings=514` with `padding_idx=1`).
        num_buckets: int. Relative position buckets (HF: 32).
        max_distance: int. Relative distances from here on share a bucket (HF: 128).
        layer_norm_epsilon: float.
        padding_idx: int. Position (and HF token id) of padding.
        dtype: dtype policy for computations and weights.
    """

    def __init__(self, vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim,
                 dropout=0.1, max_sequence_length=512, num_buckets=32, max_distance=128,
                 layer_norm_epsilon=1e-5, padding_idx=1, dtype=None, **kwargs):
        # === Layers ===
        self.token_embedding = ReversibleEmbedding(
            input_dim=vocabulary_size, output_dim=hidden_dim,
            embeddings_initializer=mpnet_kernel_initializer(), dtype=dtype,
            name="token_embedding",
        )
        self.position_embedding = MPNetPositionEmbedding(
            max_sequence_length=max_sequence_length, hidden_dim=hidden_dim,
            padding_idx=padding_idx, initializer=mpnet_kernel_initializer(), dtype=dtype,
            name="position_embedding",
        )
        self.embeddings_add = keras.layers.Add(dtype=dtype, name="embeddings_add")
        self.embeddings_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=dtype, name="embeddings_layer_norm")
        self.embeddings_dropout = keras.layers.Dropout(
            dropout, dtype=dtype, name="embeddings_dropout")
        self.relative_position_bias = MPNetRelativePositionBias(
            num_heads=num_heads, num_buckets=num_buckets, max_distance=max_distance,
            initializer=mpnet_kernel_initializer(), dtype=dtype,
            name="relative_position_bias",
        )
        self.transformer_layers = [
            MPNetEncoderLayer(
                num_heads=num_heads, intermediate_dim=intermediate_dim, dropout=dropout,
                activation="gelu", layer_norm_epsilon=layer_norm_epsilon,
                kernel_initializer=mpnet_kernel_initializer(), dtype=dtype,
                name=f"transformer_layer_{i}",
            )
            for i in range(num_layers)
        ]

        # === Functional model ===
        token_id_input = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        padding_mask_input = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        x = self.embeddings_add((self.token_embedding(token_id_input),
                                 self.position_embedding(padding_mask_input)))
        x = self.embeddings_dropout(self.embeddings_layer_norm(x))
        position_bias = self.relative_position_bias(x)
        for layer in self.transformer_layers:
            x = layer(x, padding_mask=padding_mask_input, position_bias=position_bias)
        super().__init__(
            inputs={"token_ids": token_id_input, "padding_mask": padding_mask_input},
            outputs=x, dtype=dtype, **kwargs,
        )

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.max_sequence_length = max_sequence_length
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.layer_norm_epsilon = layer_norm_epsilon
        self.padding_idx = padding_idx

    def get_config(self):
        config = super().get_config()
        config.update({
            "vocabulary_size": self.vocabulary_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
            "max_sequence_length": self.max_sequence_length,
            "num_buckets": self.num_buckets,
            "max_distance": self.max_distance,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "padding_idx": self.padding_idx,
        })
        return config
