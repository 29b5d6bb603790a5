"""MacroF1 and LabelLoss against sklearn / numpy, eager and under jit."""

import keras
import numpy as np
import pytest
from sklearn.metrics import f1_score

from kemo.training.losses import FocalLoss, MaskedBinaryCrossentropy
from kemo.training.metrics import LabelLoss, MacroF1

C = 5


def random_data(seed, n=97, c=C, unknown_rate=0.0, positive_rate=0.3):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, size=(n, c)).astype("float32")
    logits[np.abs(logits) < 1e-3] = 0.5  # keep clear of the decision boundary
    y = (rng.random((n, c)) < positive_rate).astype("float32")
    if unknown_rate:
        y[rng.random((n, c)) < unknown_rate] = -1.0
    return y, logits


def batched(n, sizes=(40, 40)):
    edges = np.cumsum([0, *sizes])
    edges = [e for e in edges if e < n] + [n]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


def ref_macro_f1(y, logits):
    """Mean over labels known somewhere of sklearn binary F1 on the known rows."""
    pred = (logits > 0).astype(int)
    scores = []
    for j in range(y.shape[1]):
        k = y[:, j] >= 0
        if not k.any():
            continue
        scores.append(f1_score(y[k, j].astype(int), pred[k, j], zero_division=0))
    return float(np.mean(scores)) if scores else 0.0


def accumulate(metric, y, logits):
    for s in batched(len(y)):
        metric.update_state(y[s], logits[s])
    return float(keras.ops.convert_to_numpy(metric.result()))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_macro_f1_no_mask_equals_sklearn(seed):
    y, logits = random_data(seed, positive_rate=[0.05, 0.2, 0.4, 0.6, 0.02][: C])
    got = accumulate(MacroF1(C), y, logits)
    ref = f1_score(y.astype(int), (logits > 0).astype(int), average="macro", zero_division=0)
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-7)


def test_macro_f1_zero_division_label_counts_as_zero():
    # label 0: no positives and no predictions -> F1 0 (zero_division=0), still averaged
    y, logits = random_data(3)
    y[:, 0] = 0
    logits[:, 0] = -5
    got = accumulate(MacroF1(C), y, logits)
    ref = f1_score(y.astype(int), (logits > 0).astype(int), average="macro", zero_division=0)
    np.testing.assert_allclose(got, ref, rtol=1e-6)


@pytest.mark.parametrize("seed", [4, 5])
def test_macro_f1_masked_equals_mean_binary_f1_on_known_rows(seed):
    y, logits = random_data(seed, unknown_rate=0.3)
    got = accumulate(MacroF1(C), y, logits)
    np.testing.assert_allclose(got, ref_macro_f1(y, logits), rtol=1e-6, atol=1e-7)
    # and differs from treating unknown as negative (the mask matters)
    naive = f1_score(np.clip(y, 0, 1).astype(int), (logits > 0).astype(int),
                     average="macro", zero_division=0)
    assert abs(got - naive) > 1e-3


def test_macro_f1_label_never_known_is_excluded():
    y, logits = random_data(6, unknown_rate=0.2)
    y[:, 2] = -1.0
    m = MacroF1(C)
    got = accumulate(m, y, logits)
    ref = ref_macro_f1(y, logits)
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    # = mean over the 4 other labels, not a 5-way mean with a zero
    per = keras.ops.convert_to_numpy(m.per_label())
    assert per[2] == 0.0
    np.testing.assert_allclose(got, np.delete(per, 2).mean(), rtol=1e-6)
    assert got > per.mean()


def test_macro_f1_nothing_known_is_zero():
    y, logits = random_data(7, n=8)
    y[:] = -1.0
    assert accumulate(MacroF1(C), y, logits) == 0.0


def test_macro_f1_reset_state():
    m = MacroF1(C)
    y1, l1 = random_data(8)
    y2, l2 = random_data(9, unknown_rate=0.25)
    accumulate(m, y1, l1)
    m.reset_state()
    for v in (m.tp, m.fp, m.fn, m.known):
        assert (keras.ops.convert_to_numpy(v) == 0).all()
    got = accumulate(m, y2, l2)
    np.testing.assert_allclose(got, ref_macro_f1(y2, l2), rtol=1e-6)


def test_macro_f1_threshold_is_on_probability():
    y = np.array([[1, 1], [0, 1]], "float32")
    logits = np.array([[0.1, 0.1], [0.1, -0.1]], "float32")  # probs ~0.525 / 0.475
    m = MacroF1(2, threshold=0.6)
    m.update_state(y, logits)
    assert float(keras.ops.convert_to_numpy(m.result())) == 0.0
    m = MacroF1(2)
    m.update_state(y, logits)
    ref = f1_score(y.astype(int), (logits > 0).astype(int), average="macro", zero_division=0)
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(m.result())), ref, rtol=1e-6)


def test_macro_f1_config_round_trip():
    m = MacroF1(4, threshold=0.3, name="f1x")
    back = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(m))
    assert isinstance(back, MacroF1)
    assert (back.num_labels, back.threshold, back.name) == (4, 0.3, "f1x")


# ---------------------------------------------------------------- under jit

def _identity_model(c):
    inp = keras.Input((c,))
    out = keras.layers.Dense(c, kernel_initializer="identity", bias_initializer="zeros")(inp)
    return keras.Model(inp, out)


def test_metrics_under_jit_evaluate():
    y, logits = random_data(10, n=150, unknown_rate=0.25)
    y[:, 4] = -1.0  # one label no row knows
    loss = FocalLoss(gamma=2.0, alpha=[1.0, 2.0, 0.5, 1.0, 1.0])
    model = _identity_model(C)
    model.compile(loss=MaskedBinaryCrossentropy(), jit_compile=True,
                  metrics=[MacroF1(C)] + [LabelLoss(j, loss=loss, name=f"loss_{j}")
                                          for j in range(C)])
    out = model.evaluate(logits, y, batch_size=32, verbose=0, return_dict=True)
    np.testing.assert_allclose(out["macro_f1"], ref_macro_f1(y, logits), rtol=1e-5)
    for j in range(C):
        np.testing.assert_allclose(out[f"loss_{j}"], ref_label_loss(y, logits, j, 2.0,
                                                                    loss.alpha[j]),
                                   rtol=1e-5, atol=1e-7)
    # a second evaluate starts from a reset state
    out2 = model.evaluate(logits, y, batch_size=50, verbose=0, return_dict=True)
    np.testing.assert_allclose(out2["macro_f1"], out["macro_f1"], rtol=1e-6)


def test_macro_f1_under_jit_no_mask():
    y, logits = random_data(11, n=130)
    model = _identity_model(C)
    model.compile(loss=MaskedBinaryCrossentropy(), metrics=[MacroF1(C)], jit_compile=True)
    out = model.evaluate(logits, y, batch_size=16, verbose=0, return_dict=True)
    ref = f1_score(y.astype(int), (logits > 0).astype(int), average="macro", zero_division=0)
    np.testing.assert_allclose(out["macro_f1"], ref, rtol=1e-5)


# ---------------------------------------------------------------- LabelLoss

def ref_label_loss(y, logits, j, gamma=None, alpha=1.0):
    y64, x = y[:, j].astype("float64"), logits[:, j].astype("float64")
    k = y64 >= 0
    yc = np.clip(y64, 0, 1)
    bce = np.maximum(x, 0) - x * yc + np.log1p(np.exp(-np.abs(x)))
    if gamma is not None:
        bce = alpha * (1 - np.exp(-bce)) ** gamma * bce
    return float(bce[k].sum() / max(k.sum(), 1))


@pytest.mark.parametrize("j", range(C))
def test_label_loss_bce_equals_numpy(j):
    y, logits = random_data(20 + j, unknown_rate=0.3)
    m = LabelLoss(j)
    got = accumulate(m, y, logits)
    np.testing.assert_allclose(got, ref_label_loss(y, logits, j), rtol=1e-5)


def test_label_loss_focal_and_reset():
    y, logits = random_data(30, unknown_rate=0.3)
    loss = FocalLoss(gamma=1.5, alpha=[0.5, 1.0, 2.0, 1.0, 3.0])
    m = LabelLoss(4, loss=loss)
    np.testing.assert_allclose(accumulate(m, y, logits),
                               ref_label_loss(y, logits, 4, 1.5, 3.0), rtol=1e-5)
    m.reset_state()
    assert float(keras.ops.convert_to_numpy(m.result())) == 0.0
    y[:, 1] = -1
    m1 = LabelLoss(1)
    assert accumulate(m1, y, logits) == 0.0  # never known -> 0, not NaN


def test_label_loss_config_round_trip():
    loss = FocalLoss(gamma=1.5, alpha=[0.5, 1.0, 2.0, 1.0, 3.0])
    m = LabelLoss(3, loss=loss, name="loss_joy")
    back = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(m))
    assert isinstance(back, LabelLoss) and back.label_index == 3 and back.name == "loss_joy"
    assert isinstance(back.loss, FocalLoss)
    assert back.loss.gamma == 1.5 and back.loss.alpha == loss.alpha
    y, logits = random_data(31, unknown_rate=0.2)
    np.testing.assert_allclose(accumulate(back, y, logits), accumulate(m, y, logits), rtol=1e-7)
