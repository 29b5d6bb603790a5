"""Vocabulary pruning: keep only the token-embedding rows a run's texts use.

multilingual-e5-small's 250k-row SentencePiece embedding is 96M of its 118M weights,
but all BRIGHTER texts (28 languages; train, dev and test) use about 83k ids.
`model.prune_vocabulary = true` keeps those rows plus the special tokens:

- `used_token_ids` collects the ids (a pure function of tokenised arrays);
- `prune_backbone` copies the kept rows, in id order, into a backbone of the same class
  whose `vocabulary_size` is the number kept (row i of the new table is old row keep[i]);
- `PrunedTokenizer` wraps the tokenizer so the preprocessor gives the new ids. It
  segments text exactly as the wrapped tokenizer does, then maps each id through
  `TokenIdRemap` (an id outside the kept set becomes the unknown token). The packer
  takes its start/end/pad ids from it, so they are remapped too.

- `prune` applies a choice of ids to a preprocessor, backbone and token arrays.

The tokenizer is part of the preprocessor's config, so the run's `preprocessor/`,
`kemo predict`, `kemo explain` and the exported SavedModel's raw-text graph all give the
pruned ids, and outputs on the run's texts equal the unpruned model's. Which ids a run
keeps (its texts; `vocabulary_keep.npy` on resume) is training's business:
`kemo.training.vocabulary`. Here nothing reads a file.

Example:
    keep = used_token_ids([text_token_ids(texts, tokenizer)], special_token_ids(tokenizer))
    pruned_tokenizer = PrunedTokenizer(tokenizer, keep)
    backbone = prune_backbone(backbone, keep)
    preprocessor = with_tokenizer(preprocessor, pruned_tokenizer)
"""

from __future__ import annotations

import logging
import sys

import keras
import keras_hub
import numpy as np
from keras_hub.src.layers.preprocessing.preprocessing_layer import PreprocessingLayer

from kemo.models.backbone_layers import token_embedding

log = logging.getLogger(__name__)

_SPECIAL_ATTRS = ("start", "end", "pad", "unk", "mask", "cls", "sep", "bos", "eos")


def special_token_ids(tokenizer) -> list[int]:
    """Every special-token id `tokenizer` defines (start, end, pad, unknown, mask...)."""
    ids = set()
    try:
        ids.update(int(i) for i in tokenizer.special_token_ids)
    except (AttributeError, ValueError):
        pass
    for name in _SPECIAL_ATTRS:
        value = getattr(tokenizer, f"{name}_token_id", None)
        if value is not None:
            ids.add(int(value))
    ids.add(unknown_token_id(tokenizer))
    return sorted(ids)


def unknown_token_id(tokenizer) -> int:
    """The id `tokenizer` gives a piece it does not know (`[UNK]`, `<unk>`)."""
    value = getattr(tokenizer, "unk_token_id", None)
    if value is None and getattr(tokenizer, "oov_token", None):  # WordPiece
        value = tokenizer.token_to_id(tokenizer.oov_token)
    if value is None:
        raise ValueError(f"{type(tokenizer).__name__} names no unknown token")
    return int(value)


def used_token_ids(arrays, special_ids) -> np.ndarray:
    """The sorted distinct ids in `arrays` (id arrays of any shapes) and `special_ids`.

    >>> used_token_ids([np.array([[0, 7, 7, 1]]), np.array([5])], [0, 1, 2, 3]).tolist()
    [0, 1, 2, 3, 5, 7]
    """
    parts = [np.unique(np.asarray(a, dtype=np.int64).ravel()) for a in arrays]
    parts.append(np.asarray(list(special_ids), dtype=np.int64))
    ids = np.unique(np.concatenate(parts))
    if ids.size and ids[0] < 0:
        raise ValueError(f"token ids must be >= 0, got {int(ids[0])}")
    return ids.astype(np.int32)


def text_token_ids(texts, tokenizer, batch_size: int = 1024) -> np.ndarray:
    """The distinct ids `tokenizer` gives `texts` (untruncated), via tf.data."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(tf.constant([str(t) for t in texts], tf.string))

    def flat(x):
        ids = tokenizer(x)
        return ids.flat_values if isinstance(ids, tf.RaggedTensor) else tf.reshape(ids, [-1])

    ds = ds.batch(batch_size).map(flat, num_parallel_calls=tf.data.AUTOTUNE)
    seen = [np.unique(ids) for ids in ds.as_numpy_iterator()]
    return np.unique(np.concatenate(seen)) if seen else np.zeros(0, np.int32)


def check_keep(keep, where: str) -> np.ndarray:
    keep = np.asarray(keep)
    if keep.ndim != 1 or keep.size == 0 or not np.issubdtype(keep.dtype, np.integer):
        raise ValueError(f"{where}: expected a non-empty 1-D array of integer ids, got "
                         f"{keep.dtype} {keep.shape}")
    if keep[0] < 0 or np.any(np.diff(keep) <= 0):
        raise ValueError(f"{where}: ids must be >= 0, increasing and distinct")
    return keep.astype(np.int32)


@keras.saving.register_keras_serializable(package="kemo")
class TokenIdRemap(PreprocessingLayer):
    """Maps the ids of a full vocabulary to those of a pruned one.

    New id i stands for old id `keep[i]`; any other old id becomes the new id of
    `unknown_id` (an old id that `keep` must hold). Runs as TensorFlow ops on tf tensors,
    dense or ragged (tf.data, SavedModel graphs), and as numpy on arrays and lists.

    >>> TokenIdRemap(keep=[0, 3, 7], unknown_id=3)(np.array([[0, 7, 5]])).tolist()
    [[0, 2, 1]]
    """

    def __init__(self, keep, unknown_id, **kwargs):
        kwargs.setdefault("dtype", "int32")
        super().__init__(**kwargs)
        self.keep = check_keep(keep, "TokenIdRemap keep")
        self.unknown_id = int(unknown_id)
        position = np.searchsorted(self.keep, self.unknown_id)
        if position >= len(self.keep) or self.keep[position] != self.unknown_id:
            raise ValueError(f"TokenIdRemap: the unknown id {self.unknown_id} is not kept")
        # One entry past the largest kept id stands for every larger id: unknown.
        self.table = np.full(int(self.keep[-1]) + 2, position, dtype=np.int32)
        self.table[self.keep] = np.arange(len(self.keep), dtype=np.int32)

    def map_id(self, old_id: int) -> int:
        """The new id of one old id."""
        return int(self.table[min(int(old_id), len(self.table) - 1)])

    def call(self, ids):
        tf = sys.modules.get("tensorflow")  # tf tensors imply TensorFlow is loaded
        last = len(self.table) - 1
        if tf is not None and isinstance(ids, (tf.Tensor, tf.RaggedTensor)):
            table = tf.constant(self.table)

            def lookup(values):
                values = tf.minimum(tf.cast(values, tf.int32), last)
                return tf.cast(tf.gather(table, values), ids.dtype)

            return tf.ragged.map_flat_values(lookup, ids) if isinstance(
                ids, tf.RaggedTensor) else lookup(ids)
        if isinstance(ids, (list, tuple)) and ids and not np.isscalar(ids[0]):
            return [self.call(row) for row in ids]  # ragged python lists
        out = self.table[np.minimum(np.asarray(ids, dtype=np.int64), last)]
        return out.tolist() if isinstance(ids, (list, tuple, int)) else out

    def get_config(self):
        return {**super().get_config(), "keep": self.keep.tolist(),
                "unknown_id": self.unknown_id}


def _special_id_property(name: str):
    def get(self):
        value = getattr(self.tokenizer, name, None)
        return None if value is None else self.remap.map_id(value)
    return property(get, doc=f"The wrapped tokenizer's `{name}`, as a pruned id.")


def _special_token_property(name: str):
    return property(lambda self: getattr(self.tokenizer, name, None))


@keras.saving.register_keras_serializable(package="kemo")
class PrunedTokenizer(keras_hub.tokenizers.Tokenizer):
    """A tokenizer that segments like `tokenizer` and numbers the pieces by `keep`.

    Its vocabulary is `keep` (new id i = `tokenizer`'s id keep[i]); a piece outside it
    becomes the unknown token. Special-token ids (`start_token_id`, `pad_token_id`, ...)
    are the pruned ones, so keras-hub packers built on it pad and mark correctly. Its
    config holds the wrapped tokenizer's and `keep`; the wrapped tokenizer's assets
    (vocabulary, SentencePiece proto) are saved and loaded through it, under its own
    `assets/tokenizer/`.

    Example:
        tok = PrunedTokenizer(preprocessor.tokenizer, keep=[0, 1, 2, 3, 6, 41])
        tok(["hello"])          # ragged ids in [0, 6)
        tok.vocabulary_size()   # 6
    """

    def __init__(self, tokenizer, keep, unknown_id=None, **kwargs):
        if isinstance(tokenizer, dict):
            tokenizer = keras.saving.deserialize_keras_object(tokenizer)
        kwargs.setdefault("dtype", tokenizer.dtype_policy.name)
        super().__init__(**kwargs)
        # Not tracked as a sub-layer: keras-hub's preset saver and loader visit every
        # sub-layer, and the wrapped one would overwrite tokenizer.json with its own,
        # unpruned config. Its assets go through save_assets / load_preset_assets below.
        object.__setattr__(self, "tokenizer", tokenizer)
        if unknown_id is None:  # needs the wrapped tokenizer's vocabulary
            unknown_id = unknown_token_id(tokenizer)
        self.remap = TokenIdRemap(keep, unknown_id, name="remap")
        self.keep = self.remap.keep

    def tokenize(self, inputs, *args, **kwargs):
        return self.remap(self.tokenizer.tokenize(inputs, *args, **kwargs))

    def detokenize(self, inputs, *args, **kwargs):
        tf = sys.modules.get("tensorflow")
        if tf is not None and isinstance(inputs, (tf.Tensor, tf.RaggedTensor)):
            keep = tf.constant(self.keep)
            old = tf.ragged.map_flat_values(lambda v: tf.gather(keep, v), inputs) if isinstance(
                inputs, tf.RaggedTensor) else tf.gather(keep, inputs)
        else:
            old = self.keep[np.asarray(inputs)]
        return self.tokenizer.detokenize(old, *args, **kwargs)

    def vocabulary_size(self):
        return int(len(self.keep))

    def get_vocabulary(self):
        full = self.tokenizer.get_vocabulary()
        return [full[i] for i in self.keep]

    def id_to_token(self, id):
        return self.tokenizer.id_to_token(int(self.keep[int(id)]))

    def token_to_id(self, token):
        return self.remap.map_id(self.tokenizer.token_to_id(token))

    @property
    def special_tokens(self):
        return list(self.tokenizer.special_tokens)

    @property
    def special_token_ids(self):
        return sorted({self.remap.map_id(i) for i in self.tokenizer.special_token_ids})

    def save_assets(self, dir_path):
        self.tokenizer.save_assets(dir_path)

    def load_assets(self, dir_path):
        self.tokenizer.load_assets(dir_path)

    def load_preset_assets(self, preset):
        self.tokenizer.load_preset_assets(preset)

    def get_config(self):
        return {**super().get_config(),
                "tokenizer": keras.saving.serialize_keras_object(self.tokenizer),
                "keep": self.keep.tolist(), "unknown_id": self.remap.unknown_id}


for _name in _SPECIAL_ATTRS:  # start_token_id, pad_token_id, ...: the pruned ids
    setattr(PrunedTokenizer, f"{_name}_token_id", _special_id_property(f"{_name}_token_id"))
    setattr(PrunedTokenizer, f"{_name}_token", _special_token_property(f"{_name}_token"))
del _name


def with_tokenizer(preprocessor, tokenizer):
    """A fresh copy of a keras-hub preprocessor with `tokenizer` in place of its own."""
    config = preprocessor.get_config()
    config["tokenizer"] = tokenizer
    return type(preprocessor).from_config(config)


def prune_backbone(backbone, keep):
    """A backbone of the same class holding only token-embedding rows `keep`, in order.

    Every other weight is copied unchanged. The backbone's config must have
    `vocabulary_size` and its token embedding must be `token_embedding` (keras-hub's
    BERT-family backbones, kemo's MPNet).
    """
    keep = check_keep(keep, "prune_backbone keep")
    config = backbone.get_config()
    if "vocabulary_size" not in config:
        raise ValueError(f"{type(backbone).__name__} has no vocabulary_size to prune")
    vocab = int(config["vocabulary_size"])
    if keep[-1] >= vocab:
        raise ValueError(f"kept id {int(keep[-1])} is outside the {vocab}-row vocabulary")
    rows = {id(v) for v in _token_embedding(backbone).weights}
    pruned = type(backbone).from_config({**config, "vocabulary_size": len(keep)})
    old_vars, new_vars = backbone.weights, pruned.weights
    if [v.path for v in old_vars] != [v.path for v in new_vars]:
        raise RuntimeError("the pruned backbone's weights do not line up with the original's")
    for old, new in zip(old_vars, new_vars):
        value = keras.ops.convert_to_numpy(old)
        if id(old) in rows:
            value = value[keep] if value.shape[0] == vocab else value[..., keep]
        new.assign(value)
    for layer in backbone.layers:  # e.g. a frozen token embedding stays frozen
        pruned.get_layer(layer.name).trainable = layer.trainable
    _token_embedding(pruned).trainable = _token_embedding(backbone).trainable
    return pruned


def _token_embedding(backbone):
    """`kemo.models.backbone_layers.token_embedding`, required: a backbone without one
    cannot be pruned."""
    layer = token_embedding(backbone)
    if layer is None:
        raise ValueError(f"{type(backbone).__name__}: no token_embedding layer to prune")
    return layer


def prune(preprocessor, backbone, keep, arrays=None):
    """(preprocessor, backbone, token arrays) holding only the token ids `keep` (ids of
    the unpruned tokenizer, increasing), whatever chose them (`kemo.training.vocabulary`
    reads a run's texts). `arrays` tokenised with the unpruned tokenizer are remapped.
    A preprocessor whose tokenizer is a `PrunedTokenizer` already (of these ids: its
    arrays hold pruned ids) is kept, and so is a backbone built at `len(keep)` rows.
    ValueError when the backbone cannot be pruned.

    Example:
        preprocessor, backbone, arrays = prune(preprocessor, backbone, keep, arrays)
    """
    tokenizer = preprocessor.tokenizer
    full = tokenizer.tokenizer if isinstance(tokenizer, PrunedTokenizer) else tokenizer
    if not isinstance(tokenizer, PrunedTokenizer):
        pruned = PrunedTokenizer(tokenizer, keep)
        if arrays is not None:
            arrays = {name: {**a, "token_ids": pruned.remap.call(a["token_ids"]).astype(
                a["token_ids"].dtype)} for name, a in arrays.items()}
        preprocessor = with_tokenizer(preprocessor, pruned)
    if backbone.get_config().get("vocabulary_size") != len(keep):  # else built pruned (inline)
        backbone = _prune(backbone, keep, full)
    return preprocessor, backbone, arrays


def _prune(backbone, keep, tokenizer):
    pruned = prune_backbone(backbone, keep)
    log.info(f"vocabulary pruned to {len(keep)} of {tokenizer.vocabulary_size()} token ids: "
             f"{backbone.count_params():,} -> {pruned.count_params():,} backbone parameters")
    return pruned
