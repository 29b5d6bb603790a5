"""Backbones and their preprocessors, from a preset string or an inline architecture.

A preset is anything `keras_hub.models.Backbone.from_preset` takes: a Kaggle preset
name or handle (`bert_base_multi`, `kaggle://...`), an `hf://` handle, or a local
directory in keras-hub or Hugging Face format; or the name of an offline model that
`kemo.weights` materialises on first use (`minilm-l6-en`, `e5-small-multi`,
`mpnet-base-en`; beforehand: `kemo weights fetch`). Hugging Face MPNet checkpoints
(local or `hf://`), which keras-hub cannot convert, are loaded by `kemo.models.mpnet`.
With no preset, `[model]` describes a small BERT with random weights whose WordPiece
vocabulary is learnt from the training texts (tests and the `tiny` config).

Example:
    preprocessor = load_preprocessor(cfg.model, train_texts=train.texts)
    backbone = load_backbone(cfg.model, vocabulary_size=preprocessor.tokenizer.vocabulary_size())
"""

from __future__ import annotations

import os
from pathlib import Path

import keras_hub

from kemo.config import ModelConfig
from kemo.errors import InputError
from kemo.models import mpnet  # also registers the kemo>MPNet* classes for loading
from kemo.models import vocab_prune  # noqa: F401  (registers kemo>PrunedTokenizer for loading)

BERT_SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
MAX_INLINE_PARAMETERS = 2**31 - 1  # int32 element counts; 8 GB of float32 weights


def resolve_preset(preset: str) -> str:
    """Map an offline model name to its directory (materialising it on first use)
    and check local paths exist."""
    if preset.startswith(("hf://", "kaggle://", "gs://", "modelscope://")):
        return preset
    try:
        from kemo import weights
    except ImportError:  # pragma: no cover - weights module is optional
        weights = None
    if weights is not None and preset in getattr(weights, "OFFLINE_MODELS", {}):
        return str(weights.ensure(preset))  # materialised on first use
    looks_like_path = os.sep in preset or preset.startswith((".", "~"))
    if looks_like_path:
        path = Path(preset).expanduser()
        if not path.is_dir():
            raise InputError(f"config key 'model.preset': preset directory {preset!r} does not exist")
        if not ((path / "config.json").is_file() or (path / "metadata.json").is_file()):
            raise InputError(
                f"config key 'model.preset': {preset!r} holds no config.json "
                "(expected a keras-hub preset or a Hugging Face model directory)"
            )
        return str(path)
    return preset


def _mpnet_from_preset(cls, path: str, **kwargs):
    """`cls.from_preset(path)` for an HF MPNet checkpoint (keras-hub has no converter)."""
    for kemo_cls, load in [(mpnet.MPNetBackbone, mpnet.load_mpnet_backbone),
                           (mpnet.MPNetTextClassifierPreprocessor, mpnet.load_mpnet_preprocessor),
                           (mpnet.MPNetTokenizer, mpnet.load_mpnet_tokenizer)]:
        if issubclass(kemo_cls, cls):
            return load(path, **kwargs)
    raise InputError(f"config key 'model.preset': {path!r} is an MPNet checkpoint, "
                     f"which gives no {cls.__name__}")


def _from_preset(cls, preset: str, **kwargs):
    try:
        path = resolve_preset(preset)
        if mpnet.is_mpnet_preset(path):
            return _mpnet_from_preset(cls, path, **kwargs)
        return cls.from_preset(path, **kwargs)
    except InputError:
        raise
    except Exception as e:  # network, missing files, unsupported architecture
        raise InputError(
            f"config key 'model.preset': cannot load {preset!r} "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
        ) from None


def learn_vocabulary(texts, vocabulary_size: int) -> list[str]:
    """A lower-cased WordPiece vocabulary learnt from `texts` (special tokens first)."""
    import tensorflow as tf  # only here: the model code itself runs without TensorFlow

    ds = tf.data.Dataset.from_tensor_slices(tf.constant(list(texts), dtype=tf.string))
    return keras_hub.tokenizers.compute_word_piece_vocabulary(
        ds.batch(1000), vocabulary_size=vocabulary_size, lowercase=True,
        reserved_tokens=BERT_SPECIAL_TOKENS,
    )


def load_preprocessor(cfg: ModelConfig, train_texts=None):
    """The text preprocessor (tokeniser + packer) at `cfg.sequence_length`."""
    if cfg.preset:
        preprocessor = _from_preset(
            keras_hub.models.TextClassifierPreprocessor, cfg.preset,
            sequence_length=cfg.sequence_length,
        )
        path = resolve_preset(cfg.preset)
        if Path(path).is_dir():
            from kemo.weights import match_hf_tokenizer

            match_hf_tokenizer(preprocessor.tokenizer, path)
        return preprocessor
    if train_texts is None:
        raise ValueError("an inline backbone needs train_texts to learn its vocabulary")
    check_inline_architecture(cfg)
    vocab = learn_vocabulary(train_texts, cfg.vocabulary_size)
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocab, lowercase=True)
    return keras_hub.models.BertTextClassifierPreprocessor(
        tokenizer, sequence_length=cfg.sequence_length
    )


def save_preprocessor(preprocessor, backbone, path) -> None:
    """Save the preprocessor as a keras-hub preset directory without backbone weights.

    keras-hub finds a preset's classes through the backbone's `config.json`, so it is
    written beside the tokeniser (architecture only: the weights live in model.keras).
    Reload with `keras_hub.models.TextClassifierPreprocessor.from_preset(path)`.
    """
    import json

    import keras

    path = Path(path)
    preprocessor.save_to_preset(str(path))
    config = keras.saving.serialize_keras_object(backbone)
    (path / "config.json").write_text(json.dumps(config, indent=1))
    (path / "metadata.json").write_text(json.dumps({
        "keras_version": keras.__version__, "keras_hub_version": keras_hub.__version__,
        "parameter_count": backbone.count_params(), "note": "architecture only, no weights",
    }, indent=1))


def check_inline_architecture(cfg: ModelConfig) -> None:
    """Refuse an inline architecture keras-hub cannot build or the host cannot hold.

    Example:
        check_inline_architecture(cfg.model)  # InputError naming the key, or None
    """
    if cfg.vocabulary_size <= len(BERT_SPECIAL_TOKENS):
        raise InputError(
            f"config key 'model.vocabulary_size': {cfg.vocabulary_size} leaves no room for "
            f"words beside the {len(BERT_SPECIAL_TOKENS)} special tokens "
            f"({' '.join(BERT_SPECIAL_TOKENS)}); expected > {len(BERT_SPECIAL_TOKENS)}")
    if cfg.num_heads > cfg.hidden_dim:
        raise InputError(f"config key 'model.num_heads': {cfg.num_heads} heads need "
                         f"model.hidden_dim >= {cfg.num_heads}, got {cfg.hidden_dim}")
    h, i = cfg.hidden_dim, cfg.intermediate_dim
    params = (cfg.vocabulary_size + cfg.sequence_length + 2) * h \
        + cfg.num_layers * (4 * h * h + 2 * h * i + 9 * h + i)
    if params > MAX_INLINE_PARAMETERS:
        raise InputError(
            f"config keys 'model.num_layers', 'model.hidden_dim', 'model.intermediate_dim', "
            f"'model.vocabulary_size', 'model.sequence_length': an inline backbone of "
            f"~{params:.3g} parameters, above the {MAX_INLINE_PARAMETERS:.3g} allowed")


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


def load_backbone(cfg: ModelConfig, vocabulary_size: int | None = None):
    """The backbone: pretrained from `cfg.preset`, else a random inline BERT.

    Checks what depends on the backbone: `model.sequence_length` fits its position
    table, `model.freeze_token_embeddings` finds a token embedding.
    """
    if cfg.preset:
        backbone = _from_preset(keras_hub.models.Backbone, cfg.preset)
        limit = max_positions(backbone)
        if limit is not None and cfg.sequence_length > limit:
            raise InputError(
                f"config key 'model.sequence_length': {cfg.sequence_length} is above the "
                f"{limit} positions of {cfg.preset!r}; expected <= {limit}")
        if cfg.freeze_token_embeddings and token_embedding(backbone) is None:
            raise InputError(f"config key 'model.freeze_token_embeddings': {cfg.preset!r} has "
                             "no token embedding layer")
        return backbone
    check_inline_architecture(cfg)
    return keras_hub.models.BertBackbone(
        vocabulary_size=vocabulary_size,
        num_layers=cfg.num_layers,
        num_heads=cfg.num_heads,
        hidden_dim=cfg.hidden_dim,
        intermediate_dim=cfg.intermediate_dim,
        max_sequence_length=cfg.sequence_length,
        dropout=cfg.dropout,
    )


def use_fused_attention(model) -> int:
    """Turn off attention-probability dropout in every `MultiHeadAttention` of `model`.

    Keras' `MultiHeadAttention` computes softmax(QK^T) explicitly whenever its dropout
    is above 0, even at inference; at 0 it calls `keras.ops.dot_product_attention`,
    which is fused (cuDNN flash attention on GPU, one XLA op on CPU). Hidden and
    embedding dropout are untouched. A saved model does not keep this (the layers'
    configs still hold the backbone's dropout): `kemo.runs.load_run` applies it again
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
