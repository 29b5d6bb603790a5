"""The input path without TensorFlow: token arrays served as a `keras.utils.PyDataset`.

`TokenBatches` serves exactly the batches `kemo.data.pipeline.make_dataset` serves
through tf.data (same `BatchPlan`: seeded epoch orders, weighted sampling, length
buckets, the padded last evaluation batch), so a run trains to the same weights
either way. `input_batches` picks one: tf.data where TensorFlow is installed (its
prefetching thread), this one where it is not or where the caller asks
(`tf_data=False`: training or predicting from a token cache never imports TensorFlow).

Example:
    ds = TokenBatches(arrays, train.y, batch_size=32, seed=0, epochs=3, buckets=[32, 64])
    model.fit(ds, epochs=3, steps_per_epoch=steps_per_epoch(len(train), 32))
    ds = input_batches(arrays, None, 64, shuffle=False, tf_data=False)  # predicting
"""

from __future__ import annotations

import importlib.util
import sys

import keras
import numpy as np

from kemo.data.pipeline import BatchPlan, batch_arrays, length_buckets, token_lengths


class TokenBatches(keras.utils.PyDataset):
    """(inputs, targets) batches of padded token `arrays`, or `(inputs,)` when `y` is
    None; arguments as `make_dataset`'s. Batch `i` is the `i`-th of the whole run
    (epochs back to back), so `fit` needs `steps_per_epoch` as with tf.data."""

    def __init__(self, arrays: dict[str, np.ndarray], y: np.ndarray | None, batch_size: int,
                 seed: int = 0, epochs: int = 1, start_epoch: int = 0, weights=None,
                 buckets: list[int] | None = None, shuffle: bool = True,
                 part: tuple[int, int] | None = None, start_step: int = 0):
        super().__init__()  # one worker: batches are cut in the training thread, in order
        self.arrays, self.y, self.batch_size, self.shuffle = arrays, y, batch_size, shuffle
        self.part = part  # (process, processes): its rows of each batch (kemo.multiprocess)
        width = next(iter(arrays.values())).shape[1]
        self.plan = BatchPlan(token_lengths(arrays), batch_size, length_buckets(buckets, width),
                              seed, epochs, start_epoch, weights, shuffle, start_step)

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, i: int):
        idx, length = self.plan[i]
        return batch_arrays(self.arrays, self.y, idx, length, self.batch_size,
                            pad=not self.shuffle, part=self.part)


def tensorflow_available() -> bool:
    """Whether `import tensorflow` would find TensorFlow (without importing it)."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"] is not None
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):
        return False


def input_batches(arrays, y, batch_size: int, *, tf_data: bool | None = None, **plan):
    """`make_dataset(...)` (tf.data) or `TokenBatches(...)`: the same batches.

    `tf_data=None` takes tf.data when TensorFlow is installed; False never imports it.
    """
    if tf_data is None:
        tf_data = tensorflow_available()
    if tf_data:
        from kemo.data.pipeline import make_dataset

        return make_dataset(arrays, y, batch_size, **plan)
    return TokenBatches(arrays, y, batch_size, **plan)
