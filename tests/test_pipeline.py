"""The input pipeline: sampling weights, epoch orders, length buckets, datasets, tokenize."""

import math

import numpy as np
import pytest

from kemo.data.brighter import load_split
from kemo.data.pipeline import (
    batches, bucket_for, epoch_indices, label_distribution, make_dataset, sampling_weights,
    steps_per_epoch, token_lengths, tokenize,
)


@pytest.fixture(scope="module")
def eng(data_dir):
    return load_split(data_dir, "train", ["eng"])


# ---------------------------------------------------------------- sampling

def test_sampling_raises_rare_label_rate(eng):
    anger = eng.label_names.index("anger")
    before = label_distribution(eng.labels, eng.mask)
    assert before[anger] == before.min()  # anger is the rarest eng emotion
    for strength in (0.5, 1.0):
        w = sampling_weights(eng.labels, eng.mask, strength)
        assert w.shape == (len(eng),) and (w > 0).all()
        np.testing.assert_allclose(w.sum(), 1.0, rtol=1e-9)
        after = label_distribution(eng.labels, eng.mask, epoch_indices(len(eng), 0, 0, w))
        assert after[anger] > before[anger] + 0.03, (strength, before, after)
    # the expected rate under the weights rises too (independent of the draw)
    w1 = sampling_weights(eng.labels, eng.mask, 1.0)
    assert (w1 * eng.labels[:, anger]).sum() > 1.5 * before[anger]


def test_sampling_strength_zero_is_uniform(eng):
    w = sampling_weights(eng.labels, eng.mask, 0.0)
    np.testing.assert_allclose(w, np.full(len(eng), 1.0 / len(eng)), rtol=1e-12)


def test_sampling_weight_is_rarest_emotion_carried():
    labels = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 0, 0], [0, 0, 1]], "float32")
    mask = np.ones_like(labels)
    freq = labels.mean(0)  # 0.6, 0.2, 0.2
    none = 1 / 5
    w = sampling_weights(labels, mask, 1.0)
    raw = np.array([1 / freq[0], 1 / freq[1], 1 / none, 1 / freq[0], 1 / freq[2]])
    np.testing.assert_allclose(w, raw / raw.sum(), rtol=1e-6)
    w_half = sampling_weights(labels, mask, 0.5)
    np.testing.assert_allclose(w_half, raw ** 0.5 / (raw ** 0.5).sum(), rtol=1e-6)


def test_sampling_weights_ignore_unknown_cells():
    labels = np.array([[1, 1], [0, 1], [0, 1], [1, 0]], "float32")
    mask = np.array([[1, 0], [1, 1], [1, 1], [1, 1]], "float32")  # row 0: label 1 unknown
    w = sampling_weights(labels, mask, 1.0)
    freq = np.array([2 / 4, 2 / 3])
    raw = np.array([1 / freq[0], 1 / freq[1], 1 / freq[1], 1 / freq[0]])
    np.testing.assert_allclose(w, raw / raw.sum(), rtol=1e-6)


def test_epoch_indices_deterministic():
    a = epoch_indices(500, seed=3, epoch=2)
    np.testing.assert_array_equal(a, epoch_indices(500, seed=3, epoch=2))
    np.testing.assert_array_equal(np.sort(a), np.arange(500))  # a permutation
    assert not np.array_equal(a, epoch_indices(500, seed=3, epoch=3))
    assert not np.array_equal(a, epoch_indices(500, seed=4, epoch=2))
    w = np.random.default_rng(0).random(500)
    w /= w.sum()
    b = epoch_indices(500, 3, 2, w)
    np.testing.assert_array_equal(b, epoch_indices(500, 3, 2, w))
    assert not np.array_equal(b, epoch_indices(500, 3, 5, w))
    assert len(b) == 500 and b.min() >= 0 and b.max() < 500
    assert len(np.unique(b)) < 500  # with replacement


# ---------------------------------------------------------------- batches

def test_bucket_for():
    assert bucket_for(1, [16, 32, 64]) == 16
    assert bucket_for(16, [16, 32, 64]) == 16
    assert bucket_for(17, [16, 32, 64]) == 32
    assert bucket_for(64, [16, 32, 64]) == 64
    assert bucket_for(99, [16, 32, 64]) == 64  # capped


def smallest_bucket(length, buckets):
    return min(b for b in buckets if b >= length)


@pytest.mark.parametrize("drop_remainder", [True, False])
def test_batches_with_buckets(drop_remainder):
    rng = np.random.default_rng(0)
    n, bs, buckets = 1003, 16, [8, 16, 32, 64]
    lengths = rng.integers(2, 65, size=n)
    order = rng.permutation(n)
    plain = batches(order, lengths, bs, [64], drop_remainder)
    out = batches(order, lengths, bs, buckets, drop_remainder, rng=np.random.default_rng(1))
    expected = n // bs if drop_remainder else math.ceil(n / bs)
    assert len(plain) == len(out) == expected
    for idx, padded in out:
        assert padded == smallest_bucket(lengths[idx].max(), buckets)
        assert len(idx) == bs or not drop_remainder
    used = np.concatenate([idx for idx, _ in out])
    assert len(np.unique(used)) == len(used)  # each example at most once
    if not drop_remainder:
        np.testing.assert_array_equal(np.sort(used), np.arange(n))
    # bucketing pays off: far less padding than padding every batch to 64
    assert sum(p for _, p in out) < 0.85 * sum(p for _, p in plain)


def test_batches_without_rng_keep_order():
    lengths = np.array([3, 40, 5, 9, 60, 2, 2])
    out = batches(np.arange(7), lengths, 3, [8, 16, 64], drop_remainder=False)
    assert [list(i) for i, _ in out] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [p for _, p in out] == [64, 64, 8]


# ---------------------------------------------------------------- make_dataset

def synthetic_arrays(n=103, seq=64, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, seq + 1, size=n)
    pos = np.arange(seq)[None, :]
    padding_mask = (pos < lengths[:, None]).astype("int32")
    token_ids = np.where(padding_mask > 0, rng.integers(5, 1000, size=(n, seq)), 0).astype("int32")
    token_ids[:, 0] = np.arange(n) + 1000  # row id sentinel, always a real token
    y = (rng.random((n, 4)) < 0.3).astype("float32")
    y[rng.random((n, 4)) < 0.2] = -1.0
    return {"token_ids": token_ids, "padding_mask": padding_mask}, y


def collect(ds):
    out = []
    for x, y in ds.as_numpy_iterator():
        out.append((x, y, x["token_ids"][:, 0] - 1000))
    return out


def test_token_lengths():
    arrays, _ = synthetic_arrays()
    np.testing.assert_array_equal(token_lengths(arrays), arrays["padding_mask"].sum(1))


@pytest.mark.parametrize("buckets", [None, [16, 32]])
def test_make_dataset_training(buckets):
    arrays, y = synthetic_arrays()
    n, bs, epochs, start = len(y), 8, 3, 1
    ds = make_dataset(arrays, y, bs, seed=5, epochs=epochs, start_epoch=start, buckets=buckets)
    steps = steps_per_epoch(n, bs)
    assert steps == 12
    assert int(ds.cardinality()) == (epochs - start) * steps
    got = collect(ds)
    assert len(got) == (epochs - start) * steps
    lengths = token_lengths(arrays)
    all_buckets = (buckets or []) + [64]
    for x, yb, idx in got:
        assert len(idx) == bs
        width = x["token_ids"].shape[1]
        assert x["padding_mask"].shape == (bs, width)
        assert width == smallest_bucket(lengths[idx].max(), all_buckets)
        np.testing.assert_array_equal(x["token_ids"], arrays["token_ids"][idx, :width])
        np.testing.assert_array_equal(x["padding_mask"].sum(1), lengths[idx])  # nothing cut
        np.testing.assert_array_equal(yb, y[idx])
    # each epoch uses distinct examples of that epoch's permutation
    for e in range(epochs - start):
        used = np.concatenate([idx for _, _, idx in got[e * steps:(e + 1) * steps]])
        assert len(np.unique(used)) == len(used) == steps * bs
    # a resumed run (start_epoch=1) sees the same batches as epoch 1 of a full run
    full = collect(make_dataset(arrays, y, bs, seed=5, epochs=epochs, buckets=buckets))
    assert len(full) == epochs * steps
    for (_, _, a), (_, _, b) in zip(full[steps:], got):
        np.testing.assert_array_equal(a, b)
    # and another seed gives another order
    other = collect(make_dataset(arrays, y, bs, seed=6, epochs=1, buckets=buckets))
    assert any(not np.array_equal(a, b) for (_, _, a), (_, _, b) in zip(other, full))


def test_resumed_inside_an_epoch_serves_the_rest_of_the_run():
    """`start_step=k`: the full run's batches from step k of `start_epoch` on, the same
    through tf.data and TokenBatches (a run resumed from a checkpoint inside an epoch)."""
    from kemo.data.numpy_batches import TokenBatches

    arrays, y = synthetic_arrays()
    full = collect(make_dataset(arrays, y, 8, seed=5, epochs=3, buckets=[16, 32]))
    steps = steps_per_epoch(len(y), 8)
    rest = make_dataset(arrays, y, 8, seed=5, epochs=3, start_epoch=1, start_step=5,
                        buckets=[16, 32])
    assert int(rest.cardinality()) == 2 * steps - 5
    got = collect(rest)
    assert len(got) == 2 * steps - 5
    for (_, _, a), (_, _, b) in zip(full[steps + 5:], got):
        np.testing.assert_array_equal(a, b)
    assert_same_batches(as_list(rest), as_list(TokenBatches(
        arrays, y, 8, seed=5, epochs=3, start_epoch=1, start_step=5, buckets=[16, 32])))


def test_make_dataset_training_weighted():
    arrays, y = synthetic_arrays()
    w = np.linspace(1, 5, len(y))
    w /= w.sum()
    got = collect(make_dataset(arrays, y, 10, seed=1, epochs=2, weights=w, buckets=[16]))
    assert len(got) == 2 * (len(y) // 10)
    first = np.concatenate([idx for _, _, idx in got[:len(y) // 10]])
    assert np.isin(first, epoch_indices(len(y), 1, 0, w)).all()


def test_make_dataset_batch_larger_than_data():
    arrays, y = synthetic_arrays(n=5)
    got = collect(make_dataset(arrays, y, 16, seed=0, epochs=2))
    assert len(got) == 2 and all(len(idx) == 5 for _, _, idx in got)


@pytest.mark.parametrize("buckets", [None, [16, 32]])
def test_make_dataset_evaluation_in_order(buckets):
    arrays, y = synthetic_arrays()
    ds = make_dataset(arrays, y, 8, buckets=buckets, shuffle=False)
    assert int(ds.cardinality()) == math.ceil(len(y) / 8)
    got = collect(ds)
    n = len(y)
    assert len(got) == 13
    # Every batch has the full batch size: the last one is padded with copies of its
    # first row whose labels are all unknown (-1), which losses and metrics ignore.
    assert all(len(idx) == 8 for _, _, idx in got)
    pad = 13 * 8 - n
    all_idx = np.concatenate([idx for _, _, idx in got])
    all_y = np.concatenate([yb for _, yb, _ in got])
    np.testing.assert_array_equal(all_idx[:n], np.arange(n))
    np.testing.assert_array_equal(all_y[:n], y)
    assert pad > 0 and (all_y[n:] == -1).all()
    np.testing.assert_array_equal(all_idx[n:], np.full(pad, all_idx[12 * 8]))
    lengths = token_lengths(arrays)
    for x, _, idx in got:
        assert x["token_ids"].shape[1] == smallest_bucket(lengths[idx].max(), (buckets or []) + [64])
    # without targets: (x,) tuples, same order, padded alike (predictions drop the tail)
    xs = list(make_dataset(arrays, None, 8, buckets=buckets, shuffle=False).as_numpy_iterator())
    assert all(len(t) == 1 for t in xs)
    np.testing.assert_array_equal(
        np.concatenate([t[0]["token_ids"][:, 0] - 1000 for t in xs])[:n], np.arange(n))


# ---------------------------------------------------------------- tokenize

def test_tokenize_with_tiny_bert_preprocessor():
    import keras_hub

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
             "the", "cat", "sat", "on", "mat", "a", "dog", "."]
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocab, lowercase=True)
    pre = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=8)
    texts = np.array(["The cat sat on the mat.", "a dog", "zebra", "the " * 10], dtype=object)
    arrays = tokenize(texts, pre, batch_size=3)  # two tf.data batches
    assert {"token_ids", "padding_mask"} <= set(arrays)
    for v in arrays.values():
        assert isinstance(v, np.ndarray) and v.shape == (4, 8)
        assert np.issubdtype(v.dtype, np.integer)
    assert arrays["padding_mask"].dtype == np.int32
    np.testing.assert_array_equal(arrays["token_ids"], [
        [2, 5, 6, 7, 8, 5, 9, 3],
        [2, 10, 11, 3, 0, 0, 0, 0],
        [2, 1, 3, 0, 0, 0, 0, 0],
        [2, 5, 5, 5, 5, 5, 5, 3],
    ])
    np.testing.assert_array_equal(token_lengths(arrays), [8, 4, 3, 8])
    np.testing.assert_array_equal(arrays["padding_mask"],
                                  (np.arange(8)[None] < np.array([8, 4, 3, 8])[:, None]))


# ---------------------------------------------------------------- without TensorFlow

def as_list(ds):
    """A tf.data dataset's or a PyDataset's batches, as numpy."""
    if hasattr(ds, "as_numpy_iterator"):
        return list(ds.as_numpy_iterator())
    return [ds[i] for i in range(len(ds))]


def assert_same_batches(a, b):
    assert len(a) == len(b)
    for ba, bb in zip(a, b):
        assert len(ba) == len(bb)
        for key in ba[0]:
            assert ba[0][key].dtype == bb[0][key].dtype
            np.testing.assert_array_equal(ba[0][key], bb[0][key])
        if len(ba) == 2:
            assert ba[1].dtype == bb[1].dtype
            np.testing.assert_array_equal(ba[1], bb[1])


@pytest.mark.parametrize("kwargs", [
    dict(seed=5, epochs=3, start_epoch=1, buckets=[16, 32]),
    dict(seed=1, epochs=2, buckets=[16], weighted=True),
    dict(seed=0, epochs=2, n=5),  # batch larger than the data
    dict(shuffle=False, buckets=[16, 32]),
    dict(shuffle=False, targets=False),
])
def test_token_batches_equal_make_dataset(kwargs):
    from kemo.data.numpy_batches import TokenBatches, input_batches

    kwargs = dict(kwargs)
    arrays, y = synthetic_arrays(n=kwargs.pop("n", 103))
    if kwargs.pop("weighted", False):
        w = np.linspace(1, 5, len(y))
        kwargs["weights"] = w / w.sum()
    if not kwargs.pop("targets", True):
        y = None
    bs = 16 if len(arrays["token_ids"]) < 16 else 8
    tf_batches = as_list(make_dataset(arrays, y, bs, **kwargs))
    np_batches = as_list(TokenBatches(arrays, y, bs, **kwargs))
    assert_same_batches(tf_batches, np_batches)
    assert isinstance(input_batches(arrays, y, bs, tf_data=False, **kwargs), TokenBatches)


def test_batch_code_imports_without_tensorflow():
    """Importing the batching, numpy input path and token cache modules loads no TF."""
    import subprocess
    import sys

    from conftest import ROOT

    code = ("import sys\n"
            "import kemo.data.pipeline, kemo.data.numpy_batches, kemo.data.token_cache\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'tensorflow_text')))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
