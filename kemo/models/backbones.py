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

from pathlib import Path

import keras_hub

from kemo.config import ModelConfig
from kemo.errors import InputError
from kemo.models import mpnet  # also registers the kemo>MPNet* classes for loading
from kemo.models import vocab_prune  # noqa: F401  (registers kemo>PrunedTokenizer for loading)
from kemo.models.backbone_layers import max_positions, token_embedding
from kemo.presets import resolve_preset

BERT_SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
MAX_INLINE_PARAMETERS = 2**31 - 1  # int32 element counts; 8 GB of float32 weights


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


def check_sequence_length(backbone, sequence_length: int, source: str) -> None:
    """InputError when `model.sequence_length` exceeds `backbone`'s position table."""
    limit = max_positions(backbone)
    if limit is not None and sequence_length > limit:
        raise InputError(
            f"config key 'model.sequence_length': {sequence_length} is above the "
            f"{limit} positions of {source!r}; expected <= {limit}")


def load_backbone(cfg: ModelConfig, vocabulary_size: int | None = None):
    """The backbone: pretrained from `cfg.preset`, else a random inline BERT.

    Checks what depends on the backbone: `model.sequence_length` fits its position
    table, `model.freeze_token_embeddings` finds a token embedding.
    """
    if cfg.preset:
        backbone = _from_preset(keras_hub.models.Backbone, cfg.preset)
        check_sequence_length(backbone, cfg.sequence_length, cfg.preset)
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
