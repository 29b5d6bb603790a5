"""model.fused_attention: attention-probability dropout off, fused attention on."""

import keras
import keras_hub
import numpy as np
import pytest

import keras.src.backend.jax.nn as jax_nn  # where ops.dot_product_attention lands on JAX

from kemo.config import load_config
from kemo.models.backbone_layers import use_fused_attention
from kemo.models.classifier import build_classifier

pytestmark = pytest.mark.skipif(keras.backend.backend() != "jax", reason="JAX backend")


def _model(dropout=0.3, layers=2):
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=100, num_layers=layers, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=16, dropout=dropout)
    return build_classifier(backbone, 3, "mean", dropout)


def _inputs():
    rng = np.random.default_rng(0)
    lengths = np.array([16, 5, 9, 1])
    return {"token_ids": rng.integers(0, 100, (4, 16)).astype("int32"),
            "segment_ids": np.zeros((4, 16), "int32"),
            "padding_mask": (np.arange(16)[None, :] < lengths[:, None]).astype("int32")}


def test_fused_attention_routes_through_dot_product_attention(monkeypatch):
    calls = []
    real = jax_nn.dot_product_attention
    monkeypatch.setattr(jax_nn, "dot_product_attention",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    model, x = _model(layers=3), _inputs()
    before = np.asarray(model(x, training=False))
    assert calls == []  # dropout > 0: Keras computes softmax(QK^T) itself
    assert use_fused_attention(model) == 3
    after = np.asarray(model(x, training=False))
    assert len(calls) == 3
    np.testing.assert_allclose(after, before, atol=1e-6)  # the same function at inference
    mhas = [layer for layer in model._flatten_layers()
            if isinstance(layer, keras.layers.MultiHeadAttention)]
    assert [m._dropout for m in mhas] == [0.0] * 3
    # Hidden and embedding dropout are untouched.
    others = [layer.rate for layer in model._flatten_layers()
              if isinstance(layer, keras.layers.Dropout) and layer.rate > 0]
    assert others and all(rate == 0.3 for rate in others)


def test_fused_attention_trains_and_masks_padding():
    """Padding still masks: a padded position's token does not change the output."""
    model, x = _model(dropout=0.0), _inputs()
    use_fused_attention(model)
    y = np.asarray(model(x, training=True))
    x2 = {k: v.copy() for k, v in x.items()}
    x2["token_ids"][1, 10] = (x2["token_ids"][1, 10] + 1) % 100  # row 1 has 5 real tokens
    np.testing.assert_allclose(np.asarray(model(x2, training=True)), y, atol=1e-6)


def test_config_key(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('name = "x"\n[model]\nfused_attention = true\n')
    assert load_config(path).model.fused_attention is True
    assert load_config(path, ["model.fused_attention=false"]).model.fused_attention is False
