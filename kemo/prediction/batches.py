"""Probabilities from a classifier for tokenised texts: the prediction side of a run.

`predict_probs` batches rows shortest first (each batch pads to the smallest length
bucket that holds it) and returns the sigmoid probabilities in the input order. Turning
them into 0/1 labels is the run's decision (`kemo.prediction.trained_run.Run.decide`, one rule:
`kemo.prediction.thresholds.decide`).

Example:
    arrays = tokenize(texts, run.preprocessor)
    probs = predict_probs(run.model, arrays, 64, run.config.data.length_buckets)
    decisions = run.decide(probs, langs)
"""

from __future__ import annotations

import keras
import numpy as np

from kemo.data.numpy_batches import input_batches
from kemo.data.pipeline import token_lengths
from kemo.interrupt import ReraiseInterrupt


def predict_logits(model, arrays, batch_size: int, buckets=None,
                   tf_data: bool | None = None) -> np.ndarray:
    """Logits (float32) for tokenised `arrays`, in their order.

    Rows are batched shortest first, so each batch pads to the smallest bucket that
    holds it, and the results are put back in the input order. The batches come from
    tf.data where TensorFlow is installed, else (or with `tf_data=False`) from
    `kemo.data.numpy_batches.TokenBatches`: the same batches. In a run of several
    processes each feeds its rows of every batch and every process gets all logits
    (`kemo.multiprocess.predict_global`).
    """
    from kemo import multiprocess

    order = np.argsort(token_lengths(arrays), kind="stable")
    part = multiprocess.part()  # several processes: each feeds its rows, all get all
    ds = input_batches({k: v[order] for k, v in arrays.items()}, None, batch_size,
                       tf_data=tf_data if part is None else False, buckets=buckets,
                       shuffle=False, part=part)
    if part is None:
        logits = model.predict(ds, verbose=0, callbacks=[ReraiseInterrupt()])
    else:
        logits = np.concatenate(multiprocess.predict_global(model, (ds[i] for i in range(len(ds)))))
    logits = np.asarray(logits[:len(order)], dtype="float32")  # the padding dropped
    out = np.empty_like(logits)
    out[order] = logits
    return out


def predict_probs(model, arrays, batch_size: int, buckets=None,
                  tf_data: bool | None = None) -> np.ndarray:
    """Sigmoid probabilities for tokenised `arrays`, in their order (`predict_logits`)."""
    logits = predict_logits(model, arrays, batch_size, buckets, tf_data)
    return np.asarray(keras.ops.sigmoid(logits), dtype="float32")
