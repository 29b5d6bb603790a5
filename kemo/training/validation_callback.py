"""Validation during training for runs of several languages: the shared task's number,
the mean over languages of macro-F1, which Keras' batch-accumulated metrics cannot
compute (they pool the rows).

`LanguageValidation` predicts the validation split once at each epoch end and adds to
the epoch's logs, before early stopping, the checkpoint and the history read them,
what Keras' own validation pass would log (`val_loss`, `val_macro_f1`,
`val_loss_<label>`, computed by the run's own loss and metric objects over all rows)
plus `val_language_mean_f1`: each language's macro-F1 at the untuned threshold, then
the unweighted mean over languages (as `kemo.evaluation.classification_scores.language_mean` scores a report).
Such a run gives `fit` no `validation_data`, so validation is predicted once per epoch,
not twice. A one-language run keeps Keras' validation and `val_macro_f1`, which is then
the same number (`monitor_key`).

Example:
    def predict(model):  # the validation split's logits
        return predict_logits(model, val_arrays, 32, [32, 64])

    fit_callbacks = [LanguageValidation(val_ex, loss, metrics, predict),
                     keras.callbacks.EarlyStopping(monitor="val_language_mean_f1", mode="max")]
"""

from __future__ import annotations

import keras
import numpy as np

from kemo.evaluation.classification_scores import LANGUAGE_MEAN_KEY
from kemo.prediction.thresholds import UNTUNED_THRESHOLD
from kemo.run.report_file import MACRO_F1, PER_LANGUAGE

__all__ = ["LANGUAGE_MEAN_KEY", "LanguageValidation", "language_mean_f1", "monitor_key"]


def monitor_key(languages) -> str:
    """What early stopping reads: the language mean when the run has several languages."""
    return LANGUAGE_MEAN_KEY if len(set(languages)) > 1 else "val_macro_f1"


def language_mean_f1(examples, probs, threshold: float = UNTUNED_THRESHOLD) -> float:
    """Mean over `examples`' languages of each language's macro-F1 (labels it annotates)."""
    from kemo.evaluation.classification_scores import language_mean, setting_report

    decisions = (np.asarray(probs) >= threshold).astype(int)
    return language_mean(setting_report(examples, decisions)[PER_LANGUAGE])[MACRO_F1]


class LanguageValidation(keras.callbacks.Callback):
    """Adds the validation logs and `val_language_mean_f1` after each epoch (one
    prediction of the validation split). `loss` and `metrics` are the run's own
    (`kemo.training.metrics.make_metrics`), fresh objects: their state is reset here.
    `predict(model)` gives the logits of `examples` (`kemo.prediction.batches.predict_logits`
    over their token arrays, batched as the run batches)."""

    def __init__(self, examples, loss, metrics, predict, intensity: bool = False):
        super().__init__()
        self.intensity = intensity  # Track B: adds `val_language_mean_r` instead
        self.examples, self.loss, self.metrics, self.predict = examples, loss, metrics, predict

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        logits = self.predict(self.model)
        y = self.examples.y
        logs["val_loss"] = float(keras.ops.convert_to_numpy(self.loss(y, logits)))
        for metric in self.metrics:
            metric.reset_state()
            metric.update_state(y, logits)
            logs[f"val_{metric.name}"] = float(keras.ops.convert_to_numpy(metric.result()))
        if self.intensity:
            from kemo.evaluation.intensity import LANGUAGE_MEAN_R_KEY, language_mean_r
            from kemo.models.intensity_heads import intensity_scores

            scores = np.asarray(intensity_scores(logits), dtype="float32")
            logs[LANGUAGE_MEAN_R_KEY] = language_mean_r(self.examples, scores)
            return
        probs = np.asarray(keras.ops.sigmoid(logits), dtype="float32")
        logs[LANGUAGE_MEAN_KEY] = language_mean_f1(self.examples, probs)
