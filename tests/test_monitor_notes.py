"""What a person sees while `fit` waits: which length bucket compiles, and an ETA that
leaves compile time out."""

import time

import keras
import numpy as np

from conftest import kemo_log
from kemo.monitor import CompileNotes, RunningProgbar


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


def test_the_eta_does_not_count_a_compile_step():
    bar = RunningProgbar()
    bar.set_params({"epochs": 1, "steps": 100, "verbose": 1})
    bar.on_train_begin()
    bar.on_epoch_begin(0)
    for batch in range(6):
        bar.on_train_batch_begin(batch)
        time.sleep(0.5 if batch == 4 else 0.01)  # step 5 compiles a new bucket
        bar.on_train_batch_end(batch, {"loss": 1.0})
        if batch == 3:
            before = bar.progbar._time_after_first_step
    shift = bar.progbar._time_after_first_step - before
    assert 0.4 < shift < 0.55, shift  # the compile step's excess moved out of the ETA
