"""Stateful, backend-agnostic multi-label metrics written with keras.ops only.

Targets use -1 for unknown labels (skipped). Predictions are logits; a label is
predicted when its probability is at or above the threshold (`sigmoid(logit) >= 0.5`
by default): the run's one decision rule, `kemo.prediction.thresholds.decide`.

Example:
    model.compile(..., metrics=[MacroF1(num_labels=6)])
    # logs "macro_f1"; "val_macro_f1" on validation data
"""

from __future__ import annotations

import keras
from keras import ops

from kemo.training.losses import MaskedBinaryCrossentropy, known_mask
from kemo.prediction.thresholds import UNTUNED_THRESHOLD


@keras.saving.register_keras_serializable(package="kemo")
class MacroF1(keras.metrics.Metric):
    """Macro-averaged F1 over labels, accumulated over batches (as sklearn computes it).

    Per label: F1 = 2TP / (2TP + FP + FN), 0 when undefined (zero_division=0). The
    average runs over labels that were annotated in at least one example seen, so a
    label no selected language carries does not count as a zero.
    """

    def __init__(self, num_labels, threshold=UNTUNED_THRESHOLD, name="macro_f1", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_labels = int(num_labels)
        self.threshold = float(threshold)
        shape = (self.num_labels,)
        self.tp = self.add_variable(shape=shape, initializer="zeros", name="tp")
        self.fp = self.add_variable(shape=shape, initializer="zeros", name="fp")
        self.fn = self.add_variable(shape=shape, initializer="zeros", name="fn")
        self.known = self.add_variable(shape=shape, initializer="zeros", name="known")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "float32")
        mask = known_mask(y_true)
        prob = ops.sigmoid(ops.cast(y_pred, "float32"))
        pred = ops.cast(ops.greater_equal(prob, self.threshold), "float32") * mask
        true = ops.clip(y_true, 0.0, 1.0) * mask
        self.tp.assign_add(ops.sum(pred * true, axis=0))
        self.fp.assign_add(ops.sum(pred * (1.0 - true), axis=0))
        self.fn.assign_add(ops.sum((1.0 - pred) * true, axis=0))
        self.known.assign_add(ops.sum(mask, axis=0))

    def per_label(self):
        denom = 2.0 * self.tp + self.fp + self.fn
        return ops.where(denom > 0, 2.0 * self.tp / ops.maximum(denom, 1e-12), 0.0)

    def result(self):
        seen = ops.cast(self.known > 0, "float32")
        return ops.sum(self.per_label() * seen) / ops.maximum(ops.sum(seen), 1.0)

    def reset_state(self):
        for v in (self.tp, self.fp, self.fn, self.known):
            v.assign(ops.zeros(v.shape, dtype=v.dtype))

    def get_config(self):
        return {**super().get_config(), "num_labels": self.num_labels,
                "threshold": self.threshold}


@keras.saving.register_keras_serializable(package="kemo")
class LabelLoss(keras.metrics.Metric):
    """Mean training loss of one label over the examples where it is known.

    Logged per epoch as `loss_<label>` (and `val_loss_<label>`).
    """

    def __init__(self, label_index, loss=None, name="label_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_index = int(label_index)
        if isinstance(loss, dict):
            loss = keras.saving.deserialize_keras_object(loss)
        self.loss = loss or MaskedBinaryCrossentropy()
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "float32")
        mask = known_mask(y_true)[:, self.label_index]
        per = self.loss.elementwise(y_true, y_pred)[:, self.label_index]
        self.total.assign_add(ops.sum(per * mask))
        self.count.assign_add(ops.sum(mask))

    def result(self):
        return self.total / ops.maximum(self.count, 1.0)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "label_index": self.label_index,
                "loss": keras.saving.serialize_keras_object(self.loss)}


@keras.saving.register_keras_serializable(package="kemo")
class PearsonR(keras.metrics.Metric):
    """Intensity runs: Pearson's r per label between the predicted intensity
    (`kemo.models.intensity_heads.intensity_scores` of the output) and the gold, over
    the rows seen where the label is known, averaged over labels seen; r = 0 where
    undefined (a constant side), as `kemo.evaluation.intensity.pearson_r`. Rows of all
    languages are pooled (several languages: `LanguageValidation` adds the official
    mean over languages)."""

    def __init__(self, num_labels, name="pearson_r", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_labels = int(num_labels)
        self.sums = [self.add_variable(shape=(self.num_labels,), initializer="zeros",
                                       name=n) for n in ("n", "x", "y", "xx", "yy", "xy")]

    def update_state(self, y_true, y_pred, sample_weight=None):
        from kemo.models.intensity_heads import intensity_scores

        y_true = ops.cast(y_true, "float32")
        mask = known_mask(y_true)
        x = ops.maximum(y_true, 0.0) * mask
        y = intensity_scores(y_pred) * mask
        for var, part in zip(self.sums, (mask, x, y, x * x, y * y, x * y)):
            var.assign_add(ops.sum(part, axis=0))

    def per_label(self):
        n, sx, sy, sxx, syy, sxy = self.sums
        n1 = ops.maximum(n, 1.0)
        cov = sxy - sx * sy / n1
        vx = ops.maximum(sxx - sx * sx / n1, 0.0)
        vy = ops.maximum(syy - sy * sy / n1, 0.0)
        denom = ops.sqrt(vx * vy)
        ok = ops.cast(denom > 1e-6, "float32")
        return ok * cov / ops.maximum(denom, 1e-6)

    def result(self):
        seen = ops.cast(self.sums[0] > 0, "float32")
        return ops.sum(self.per_label() * seen) / ops.maximum(ops.sum(seen), 1.0)

    def reset_state(self):
        for v in self.sums:
            v.assign(ops.zeros(v.shape, dtype=v.dtype))

    def get_config(self):
        return {**super().get_config(), "num_labels": self.num_labels}


def make_metrics(label_names, loss, intensity: bool = False) -> list:
    """What `fit` logs each epoch: macro-F1 at the untuned threshold (`p >= 0.5`, the
    run's decision rule; early stopping reads its `val_macro_f1`), or for an intensity
    run Pearson's r (`val_pearson_r`), and each label's loss (`loss_<label>`).

    >>> [m.name for m in make_metrics(["joy", "fear"], MaskedBinaryCrossentropy())]
    ['macro_f1', 'loss_joy', 'loss_fear']
    """
    first = (PearsonR(len(label_names)) if intensity
             else MacroF1(len(label_names), threshold=UNTUNED_THRESHOLD))
    return [first] + [
        LabelLoss(j, loss=loss, name=f"loss_{n}") for j, n in enumerate(label_names)]
