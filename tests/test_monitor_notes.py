"""What a person sees while `fit` waits: which length bucket compiles (the ETA that
leaves compile time out: tests/test_progress_line.py)."""

import keras
import numpy as np

from conftest import kemo_log
from kemo.training.monitor import CompileNotes


class Buckets(keras.utils.PyDataset):
    """Batches of 4 rows padded to the lengths in `plan`."""

    def __init__(self, plan):
        super().__init__()
        self.plan = plan

    def __len__(self):
        return len(self.plan)

    def __getitem__(self, i):
        n = self.plan[i]
        return np.zeros((4, n), "float32"), np.zeros((4, 1), "float32")


def _model():
    inputs = keras.Input((None,))
    x = keras.layers.Lambda(lambda t: keras.ops.mean(t, axis=1, keepdims=True))(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1)(x))
    model.compile("sgd", "mse")
    return model


def test_each_new_bucket_is_named_before_it_compiles_and_timed_after():
    plan = [16, 16, 32, 16, 32, 64]
    notes = CompileNotes(bucket_of_step=lambda epoch, batch: plan[batch])
    with kemo_log() as lines:
        _model().fit(Buckets(plan), epochs=1, verbose=0, callbacks=[notes])
    starts = [ln for ln in lines if ln.startswith("compiling the train step for length bucket")]
    assert [int(ln.split("bucket ")[1].split()[0]) for ln in starts] == [16, 32, 64]
    assert sum("compiled and run:" in ln for ln in lines) == 3
    # the announcement comes before its step's timing
    assert lines.index(starts[1]) < lines.index(next(ln for ln in lines if "bucket 32 compiled" in ln))
