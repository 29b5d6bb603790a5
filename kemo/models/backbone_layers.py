"""Parts of a keras-hub backbone that kemo finds or changes: its token embedding, its
position table's length, its lower layers (frozen), its attention (fused).

Generic over keras-hub text backbones (BERT, RoBERTa/XLM-R, DeBERTa, kemo's MPNet): they
are found through the backbone's attributes and graph order, never by class.

Example:
    token_embedding(backbone).trainable = False   # model.freeze_token_embeddings
    freeze_lower_layers(backbone, 6)              # model.freeze_layers
"""

from __future__ import annotations

from kemo.errors import InputError


def max_positions(backbone) -> int | None:
    """The longest sequence `backbone`'s position table holds (None: no table found)."""
    limit = getattr(backbone, "max_sequence_length", None)
    if limit is None:
        for layer in backbone.layers:
            if layer.name == "position_embedding":
                limit = getattr(layer, "sequence_length", None)
    return int(limit) if limit else None


def token_embedding(backbone):
    """The backbone's token-embedding layer (one row per vocabulary id), or None.

    BERT-like backbones hold it as the top-level layer `token_embedding`; RoBERTa and
    XLM-R nest it inside `embeddings` (a `TokenAndPositionEmbedding`), where
    `backbone.get_layer("token_embedding")` does not find it. keras-hub backbones (and
    kemo's MPNet) expose it either way as the attribute `token_embedding`.

    Example:
        token_embedding(backbone).trainable = False  # model.freeze_token_embeddings
    """
    import keras

    layer = getattr(backbone, "token_embedding", None)
    if not isinstance(layer, keras.layers.Layer):
        layer = next((x for x in backbone.layers if x.name == "token_embedding"), None)
    return layer


def freeze_lower_layers(backbone, num_layers: int) -> int:
    """Fix the embeddings and the lowest `num_layers` transformer layers of `backbone`.

    Every layer of the backbone's graph that comes before its `num_layers`-th
    transformer layer (embeddings, their normalisation, MPNet's relative position bias)
    and those transformer layers become non-trainable; the layers above stay as they
    were. A train step then neither updates nor back-propagates through the fixed part.
    Returns the number of trainable transformer layers left.

    Example:
        freeze_lower_layers(backbone, 6)  # e5-small: 6 of 12 layers train
    """
    blocks = list(getattr(backbone, "transformer_layers", None) or [])
    if not blocks:
        raise InputError("config key 'model.freeze_layers': the backbone "
                         f"{type(backbone).__name__} has no transformer_layers")
    if num_layers > len(blocks):
        raise InputError(f"config key 'model.freeze_layers': {num_layers} is above the "
                         f"backbone's {len(blocks)} transformer layers")
    if num_layers == 0:
        return len(blocks)
    order = list(backbone.layers)
    first_kept = order.index(blocks[num_layers]) if num_layers < len(blocks) else None
    for i, layer in enumerate(order):
        if layer in blocks[:num_layers] or (first_kept is not None and i < first_kept
                                            and layer not in blocks[num_layers:]):
            layer.trainable = False
    if first_kept is None:  # every transformer layer fixed: all but what follows them
        last = order.index(blocks[-1])
        for layer in order[:last + 1]:
            layer.trainable = False
    return len(blocks) - num_layers


def use_fused_attention(model) -> int:
    """Turn off attention-probability dropout in every `MultiHeadAttention` of `model`.

    Keras' `MultiHeadAttention` computes softmax(QK^T) explicitly whenever its dropout
    is above 0, even at inference; at 0 it calls `keras.ops.dot_product_attention`,
    which is fused (cuDNN flash attention on GPU, one XLA op on CPU). Hidden and
    embedding dropout are untouched. A saved model does not keep this (the layers'
    configs still hold the backbone's dropout): `kemo.prediction.trained_run.load_run` applies it again
    from the run's config. Returns the number of attention layers changed.

    Example:
        backbone = load_backbone(cfg.model)
        use_fused_attention(backbone)  # 6 for MiniLM-L6
    """
    import keras

    count = 0
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if isinstance(layer, keras.layers.MultiHeadAttention):
            if not hasattr(layer, "_dropout") or not hasattr(layer, "_dropout_layer"):
                raise RuntimeError("keras.layers.MultiHeadAttention no longer has _dropout: "
                                   "model.fused_attention needs updating for this Keras")
            layer._dropout = 0.0
            layer._dropout_layer.rate = 0.0
            count += 1
    return count
