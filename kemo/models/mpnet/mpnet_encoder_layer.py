"""One MPNet transformer block: self-attention with a position bias, then a feedforward.

Post-LayerNorm like BERT (`x = LN(x + attention(x))`, `x = LN(x + ffn(x))`); the
attention scores get the shared relative position bias added per head before the key
padding mask and the softmax (computed in float32 also under mixed precision). The
weights map one to one onto Hugging Face's `MPNetLayer` (`attention.attn.{q,k,v,o}`,
`attention.LayerNorm`, `intermediate.dense`, `output.dense`, `output.LayerNorm`).

Example:
    layer = MPNetEncoderLayer(num_heads=12, intermediate_dim=3072)
    y = layer(x, padding_mask=mask, position_bias=bias)   # x: (batch, seq, 768)
"""

from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kemo")
class MPNetEncoderLayer(keras.layers.Layer):
    """An MPNet encoder block.

    Args:
        num_heads: int. Attention heads; the input width must divide by it.
        intermediate_dim: int. Width of the feedforward's hidden layer.
        dropout: float. Dropout on the attention probabilities and on both residual
            branches (HF's `attention_probs_dropout_prob` and `hidden_dropout_prob`).
        activation: the feedforward activation; `"gelu"` is the exact (erf) GELU, as HF.
        layer_norm_epsilon: float.
        kernel_initializer: initializer of the dense kernels.

    Call arguments:
        inputs: (batch, seq, dim) hidden states.
        padding_mask: (batch, seq), true/1 for real tokens; padded keys are ignored.
        position_bias: (1 or batch, num_heads, seq, seq), added to the scores.
    """

    def __init__(self, num_heads, intermediate_dim, dropout=0.1, activation="gelu",
                 layer_norm_epsilon=1e-5, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.intermediate_dim = int(intermediate_dim)
        self.dropout = float(dropout)
        self.activation = keras.activations.get(activation)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.supports_masking = True

    def _dense(self, units, name, activation=None):
        return keras.layers.Dense(
            units, activation=activation, name=name, dtype=self.dtype_policy,
            kernel_initializer=keras.initializers.get(
                keras.initializers.serialize(self.kernel_initializer)),
        )

    def build(self, inputs_shape, padding_mask_shape=None, position_bias_shape=None):
        hidden_dim = inputs_shape[-1]
        if hidden_dim % self.num_heads:
            raise ValueError(f"hidden width {hidden_dim} does not divide by "
                             f"num_heads={self.num_heads}")
        self.hidden_dim = hidden_dim
        self.head_dim = hidden_dim // self.num_heads
        self.query_dense = self._dense(hidden_dim, "query")
        self.key_dense = self._dense(hidden_dim, "key")
        self.value_dense = self._dense(hidden_dim, "value")
        self.output_dense = self._dense(hidden_dim, "attention_output")
        for layer in (self.query_dense, self.key_dense, self.value_dense, self.output_dense):
            layer.build(inputs_shape)
        self.attention_dropout = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="attention_dropout")
        self.attention_output_dropout = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="attention_output_dropout")
        self.attention_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy,
            name="attention_layer_norm")
        self.attention_layer_norm.build(inputs_shape)
        self.intermediate_dense = self._dense(self.intermediate_dim, "intermediate",
                                              activation=self.activation)
        self.intermediate_dense.build(inputs_shape)
        self.feedforward_output_dense = self._dense(hidden_dim, "feedforward_output")
        self.feedforward_output_dense.build((*inputs_shape[:-1], self.intermediate_dim))
        self.feedforward_dropout = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="feedforward_dropout")
        self.feedforward_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy,
            name="feedforward_layer_norm")
        self.feedforward_layer_norm.build(inputs_shape)
        self.built = True

    def _heads(self, x, batch, length):
        return ops.reshape(x, (batch, length, self.num_heads, self.head_dim))

    def call(self, inputs, padding_mask=None, position_bias=None, training=None):
        batch, length = ops.shape(inputs)[0], ops.shape(inputs)[1]
        q = self._heads(self.query_dense(inputs), batch, length)
        k = self._heads(self.key_dense(inputs), batch, length)
        v = self._heads(self.value_dense(inputs), batch, length)
        scores = ops.einsum("bqhd,bkhd->bhqk", q, k)
        scores = ops.cast(scores, "float32") / math.sqrt(self.head_dim)
        if position_bias is not None:
            scores = scores + ops.cast(position_bias, "float32")
        if padding_mask is not None:
            keep = ops.cast(padding_mask, "bool")[:, None, None, :]
            scores = ops.where(keep, scores, ops.full_like(scores, -1e9))
        probs = ops.cast(ops.softmax(scores, axis=-1), self.compute_dtype)
        probs = self.attention_dropout(probs, training=training)
        context = ops.einsum("bhqk,bkhd->bqhd", probs, v)
        context = ops.reshape(context, (batch, length, self.hidden_dim))
        attended = self.attention_output_dropout(self.output_dense(context), training=training)
        x = self.attention_layer_norm(inputs + attended)
        h = self.feedforward_output_dense(self.intermediate_dense(x))
        h = self.feedforward_dropout(h, training=training)
        return self.feedforward_layer_norm(x + h)

    def compute_output_shape(self, inputs_shape, *args, **kwargs):
        return inputs_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
            "activation": keras.activations.serialize(self.activation),
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }
