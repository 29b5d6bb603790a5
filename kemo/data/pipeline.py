"""The tf.data input pipeline: tokenise once, sample, bucket by length, batch, prefetch.

1. `tokenize` runs the backbone's keras-hub preprocessor over the texts inside
   tf.data (once per run) and returns numpy arrays padded to `sequence_length`.
2. `epoch_indices` draws each epoch's example order: a seeded permutation, or with
   `strength > 0` a seeded weighted draw (with replacement) where examples carrying
   rare emotions are oversampled (`sampling_weights`). The order depends only on
   (seed, epoch), so a resumed run sees the same batches.
3. `batches` cuts an order into batches; with length buckets, examples of similar
   length are grouped and each batch is trimmed to the smallest bucket that holds its
   longest example, so XLA compiles one program per bucket, not per batch.
4. `BatchPlan` lists every batch of a run (by position); `batch_arrays` cuts one out.
   `make_dataset` serves them as a prefetched `tf.data.Dataset`;
   `kemo.data.numpy_batches.TokenBatches` serves the same batches without TensorFlow.

TensorFlow is imported only inside `tokenize` (`tokenize_splits`) and `make_dataset`:
importing this module, and everything else in it, runs without it.

Example:
    arrays = tokenize(train.texts, preprocessor)
    ds = make_dataset(arrays, train.y, batch_size=16, seed=0, epochs=10,
                      weights=sampling_weights(train.labels, train.mask, 1.0))
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # TensorFlow is imported where tf.data is used, not at import
    import tensorflow as tf


def tokenize(texts, preprocessor, batch_size: int = 512) -> dict[str, np.ndarray]:
    """Run a keras-hub text preprocessor over `texts` in tf.data; numpy outputs."""
    import tensorflow as tf  # here, not at import: the batching code runs without TF

    ds = tf.data.Dataset.from_tensor_slices(tf.constant(list(texts), dtype=tf.string))
    ds = ds.batch(batch_size).map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE)
    parts: dict[str, list] = {}
    for batch in ds.as_numpy_iterator():
        if isinstance(batch, tuple):  # (x,) from some preprocessors
            batch = batch[0]
        for key, value in batch.items():
            parts.setdefault(key, []).append(value)
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    if "padding_mask" in arrays:
        arrays["padding_mask"] = arrays["padding_mask"].astype("int32")
    return arrays


def tokenize_splits(texts: dict, preprocessor, batch_size: int = 512) -> dict[str, dict]:
    """`tokenize` over several splits (`{"train": texts, ...}`) in one tf.data pass (the
    preprocessor is traced once), cut back into one dict of arrays per split."""
    names = [n for n in texts]
    arrays = tokenize([t for n in names for t in texts[n]], preprocessor, batch_size)
    ends = np.cumsum([len(texts[n]) for n in names])
    return {n: {k: v[end - len(texts[n]):end] for k, v in arrays.items()}
            for n, end in zip(names, ends)}


def token_lengths(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Number of real (non-padding) tokens per example."""
    return arrays["padding_mask"].sum(axis=1).astype("int64")


def label_distribution(labels: np.ndarray, mask: np.ndarray, index=None) -> np.ndarray:
    """Positive rate per label over known rows (of `index`, if given)."""
    if index is not None:
        labels, mask = labels[index], mask[index]
    return (labels * mask).sum(axis=0) / np.maximum(mask.sum(axis=0), 1.0)


def sampling_weights(labels: np.ndarray, mask: np.ndarray, strength: float) -> np.ndarray:
    """Per-example sampling probabilities favouring rare emotions.

    An example's weight is `(1 / freq)^strength` for the rarest emotion it carries
    (emotion-free examples count as one more group with its own frequency).
    `strength=0` gives uniform weights; 1 gives full inverse frequency.
    """
    pos = labels * mask
    freq = label_distribution(labels, mask)
    none = pos.sum(axis=1) == 0
    freq_none = max(none.mean(), 1e-12)
    inv = np.where(freq > 0, 1.0 / np.maximum(freq, 1e-12), 0.0) ** strength
    weight = np.where(pos > 0, inv[None, :], 0.0).max(axis=1)
    weight = np.where(none, (1.0 / freq_none) ** strength, weight)
    return weight / weight.sum()


def language_weights(langs, temperature: float, weights=None) -> np.ndarray | None:
    """Per-example sampling probabilities that draw language `l` with probability
    proportional to `n_l^(1/temperature)` (its row count `n_l`), times `weights` (the
    label weighting, or uniform) within each language.

    Each example's weight is multiplied by `n_l^(1/T - 1)`: with uniform `weights` a
    language's share becomes `n_l^(1/T) / sum_k n_k^(1/T)`. `temperature == 1` returns
    `weights` itself (None stays None), so the epoch order is exactly the untempered one.

    Example:
        w = language_weights(train.langs, 3.0, sampling_weights(train.labels, train.mask, 0.5))
        order = epoch_indices(len(train), seed, epoch, w)
    """
    if temperature == 1:
        return weights
    langs = np.asarray(langs)
    _, inverse, counts = np.unique(langs, return_inverse=True, return_counts=True)
    factor = counts.astype("float64") ** (1.0 / temperature - 1.0)
    base = np.full(len(langs), 1.0 / len(langs)) if weights is None else np.asarray(weights)
    out = base * factor[inverse]
    return out / out.sum()


def language_shares(langs, weights=None) -> dict[str, float]:
    """{language: its expected share of an epoch's draws} under `weights` (None: uniform)."""
    langs = np.asarray(langs)
    w = np.full(len(langs), 1.0 / max(len(langs), 1)) if weights is None else np.asarray(weights)
    return {str(lang): float(w[langs == lang].sum()) for lang in dict.fromkeys(langs.tolist())}


def epoch_indices(n: int, seed: int, epoch: int, weights=None) -> np.ndarray:
    """The example order of one epoch: depends only on (seed, epoch)."""
    rng = np.random.default_rng([seed, epoch])
    if weights is None:
        return rng.permutation(n)
    return rng.choice(n, size=n, replace=True, p=weights)


def length_buckets(buckets, sequence_length: int) -> list[int]:
    """The padded lengths a batch may take: `buckets` below the max, then the max."""
    return sorted({int(b) for b in (buckets or []) if 0 < int(b) < sequence_length}) + \
        [int(sequence_length)]


def bucket_for(length: int, buckets: list[int]) -> int:
    """The smallest bucket that holds `length` tokens (the largest bucket caps)."""
    for b in buckets:
        if length <= b:
            return b
    return buckets[-1]


def batches(order: np.ndarray, lengths: np.ndarray, batch_size: int, buckets: list[int],
            drop_remainder: bool, rng=None, window: int = 50):
    """Cut `order` into (index_array, padded_length) batches.

    With several buckets and an `rng`, examples are sorted by length inside windows of
    `window` batches, then the batches are shuffled: similar lengths share a batch,
    the epoch stays random, and the number of batches is unchanged.
    """
    order = np.asarray(order)
    if len(buckets) > 1 and rng is not None:
        span = window * batch_size
        chunks = [order[i:i + span] for i in range(0, len(order), span)]
        order = np.concatenate([c[np.argsort(lengths[c], kind="stable")] for c in chunks])
    n_batches = len(order) // batch_size if drop_remainder else math.ceil(len(order) / batch_size)
    out = []
    for b in range(n_batches):
        idx = order[b * batch_size:(b + 1) * batch_size]
        out.append((idx, bucket_for(int(lengths[idx].max()), buckets)))
    if len(buckets) > 1 and rng is not None:
        out = [out[i] for i in rng.permutation(len(out))]
    return out


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Training batches per epoch (the remainder is dropped)."""
    return max(n // batch_size, 1)


def epoch_batches(lengths: np.ndarray, batch_size: int, buckets: list[int], seed: int,
                  epoch: int, weights=None) -> list:
    """One training epoch's (index_array, padded_length) batches: `epoch_indices` cut by
    `batches` into `steps_per_epoch(n, batch_size)` full batches (the remainder dropped)."""
    n = len(lengths)
    order = epoch_indices(n, seed, epoch, weights)
    rng = np.random.default_rng([seed, epoch, 1])
    bs = min(batch_size, n)  # keeps steps_per_epoch(n, batch_size) batches
    return batches(order, lengths, bs, buckets, drop_remainder=True, rng=rng)


def batch_arrays(arrays: dict[str, np.ndarray], y: np.ndarray | None, idx: np.ndarray,
                 length: int, batch_size: int, pad: bool = False,
                 part: tuple[int, int] | None = None) -> tuple:
    """The model's input for one planned batch: `(x, y)`, or `(x,)` without targets.

    With `pad`, a short batch (the last evaluation batch) is filled up to `batch_size`
    (one shape less to compile; divisible over devices) with copies of its first row
    whose labels are all unknown (-1): losses and metrics ignore them; predictions drop
    them. With `part = (i, n)` (process `i` of `n`, see `kemo.multiprocess`), only the
    `i`-th of `n` equal slices of the (padded) batch's rows.
    """
    x = {k: v[idx, :length] for k, v in arrays.items()}
    target = y[idx] if y is not None else None
    short = batch_size - len(idx)
    if pad and short > 0:
        x = {k: np.concatenate([v, np.repeat(v[:1], short, axis=0)]) for k, v in x.items()}
        if target is not None:
            target = np.concatenate([target, np.full((short, y.shape[1]), -1.0, y.dtype)])
    if part is not None:
        i, n = part
        size = len(next(iter(x.values()))) // n
        rows = slice(i * size, (i + 1) * size)
        x = {k: v[rows] for k, v in x.items()}
        target = target[rows] if target is not None else None
    return (x, target) if y is not None else (x,)


class BatchPlan:
    """Every batch `make_dataset` (tf.data) or `kemo.data.numpy_batches.TokenBatches`
    (no TensorFlow) serves, in order, as (index_array, padded_length), by position.

    Training (`shuffle=True`): epochs `start_epoch..epochs-1` back to back, each
    `steps_per_epoch(n, batch_size)` batches of `epoch_batches` (computed one epoch at
    a time), the first `start_step` batches of `start_epoch` left out (a run resumed
    from a checkpoint inside that epoch). Evaluation: `batches` over the rows in order,
    all kept.

    Example:
        plan = BatchPlan(token_lengths(arrays), 32, [32, 64, 128], seed=0, epochs=3)
        idx, length = plan[0]
    """

    def __init__(self, lengths: np.ndarray, batch_size: int, buckets: list[int], seed: int = 0,
                 epochs: int = 1, start_epoch: int = 0, weights=None, shuffle: bool = True,
                 start_step: int = 0):
        self.lengths, self.batch_size, self.buckets = np.asarray(lengths), batch_size, buckets
        self.seed, self.start_epoch, self.weights, self.shuffle = seed, start_epoch, weights, shuffle
        n = len(self.lengths)
        self.steps = steps_per_epoch(n, batch_size) if shuffle else math.ceil(n / batch_size)
        self.start_step = start_step if shuffle else 0
        self.count = ((epochs - start_epoch) * self.steps - self.start_step if shuffle
                      else self.steps)
        self._epoch, self._batches = None, None

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        if not 0 <= i < self.count:
            raise IndexError(f"batch {i} of {self.count}")
        i += self.start_step
        epoch = self.start_epoch + i // self.steps if self.shuffle else 0
        if epoch != self._epoch:
            self._batches = (epoch_batches(self.lengths, self.batch_size, self.buckets, self.seed,
                                           epoch, self.weights) if self.shuffle else
                             batches(np.arange(len(self.lengths)), self.lengths,
                                     self.batch_size, self.buckets, drop_remainder=False))
            self._epoch = epoch
        return self._batches[i % self.steps]

    def __iter__(self):
        return (self[i] for i in range(self.count))


def make_dataset(arrays: dict[str, np.ndarray], y: np.ndarray | None, batch_size: int,
                 seed: int = 0, epochs: int = 1, start_epoch: int = 0, weights=None,
                 buckets: list[int] | None = None, shuffle: bool = True,
                 part: tuple[int, int] | None = None, start_step: int = 0) -> tf.data.Dataset:
    """A prefetched tf.data dataset of (inputs, targets) batches, as `BatchPlan` orders them.

    Training (`shuffle=True`): epochs `start_epoch..epochs-1` back to back, each
    `steps_per_epoch` batches of a fresh (seeded) order, sampled with `weights` if
    given. Evaluation (`shuffle=False`): the examples once, in order, all kept; the
    last batch is padded to `batch_size` with rows whose labels are all unknown
    (`batch_arrays`). `kemo.data.numpy_batches.TokenBatches` serves the same batches
    without TensorFlow. `part`: this process's rows of each batch (`batch_arrays`).
    """
    import tensorflow as tf

    plan = BatchPlan(token_lengths(arrays), batch_size,
                     length_buckets(buckets, next(iter(arrays.values())).shape[1]), seed, epochs,
                     start_epoch, weights, shuffle, start_step)

    def generate():
        for idx, length in plan:
            yield batch_arrays(arrays, y, idx, length, batch_size, pad=not shuffle, part=part)

    x_spec = {k: tf.TensorSpec((None, None), tf.as_dtype(v.dtype)) for k, v in arrays.items()}
    spec = (x_spec,)
    if y is not None:
        spec = (x_spec, tf.TensorSpec((None, y.shape[1]), tf.float32))
    ds = tf.data.Dataset.from_generator(generate, output_signature=spec)
    ds = ds.apply(tf.data.experimental.assert_cardinality(len(plan)))
    return ds.prefetch(tf.data.AUTOTUNE)
