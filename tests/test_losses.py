"""Masked BCE and focal loss against a float64 numpy reference."""

import keras
import numpy as np
import pytest

from kemo.training.losses import (
    FocalLoss, MaskedBinaryCrossentropy, bce_from_logits, inverse_frequency_alpha, known_mask,
    make_loss,
)

N, C = 64, 6


def np_bce(y, x):
    y = np.clip(y, 0.0, 1.0)
    return np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))


def np_focal(y, x, gamma, alpha=None):
    bce = np_bce(y, x)
    p_t = np.exp(-bce)
    out = (1.0 - p_t) ** gamma * bce
    if alpha is not None:
        out = out * np.asarray(alpha, "float64")[None, :]
    return out


def np_per_example(elementwise, y):
    """Mean over each row's known labels, scaled so that the batch mean is the mean over
    rows with at least one known label (rows with none, e.g. padding, do not count)."""
    mask = (y >= 0).astype("float64")
    per = (elementwise * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1.0)
    rows_with_labels = max((mask.sum(axis=1) > 0).sum(), 1)
    return per * len(y) / rows_with_labels


def make_batch(seed, n=N, c=C, extreme=True):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 4, size=(n, c))
    if extreme:
        pick = rng.random((n, c)) < 0.25
        logits[pick] = rng.choice([50.0, -50.0, 1e4, -1e4, 20.0, -20.0], size=pick.sum())
    y = (rng.random((n, c)) < 0.35).astype("float64")
    unknown = rng.random((n, c)) < 0.3
    y[unknown] = -1.0
    y[0] = -1.0  # one example with no known label at all
    y[1] = np.array([1, 0, 1, 0, 1, 0])[:c]  # one with all known
    return y.astype("float32"), logits.astype("float32")


def _np(t):
    return np.asarray(keras.ops.convert_to_numpy(t), dtype="float64")


# ---------------------------------------------------------------- values

def test_known_mask():
    y = np.array([[1.0, 0.0, -1.0]], "float32")
    np.testing.assert_array_equal(_np(known_mask(y)), [[1.0, 1.0, 0.0]])


def test_bce_elementwise_matches_reference_and_is_finite():
    y, x = make_batch(0)
    got = _np(bce_from_logits(y, x))
    ref = np_bce(y.astype("float64"), x.astype("float64"))
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_masked_bce_matches_reference(seed):
    y, x = make_batch(seed)
    loss = MaskedBinaryCrossentropy()
    per = _np(loss.call(y, x))
    ref = np_per_example(np_bce(y.astype("float64"), x.astype("float64")), y)
    assert np.isfinite(per).all()
    np.testing.assert_allclose(per, ref, rtol=1e-5, atol=1e-6)
    assert per[0] == 0.0  # nothing known
    total = float(_np(loss(y, x)))
    np.testing.assert_allclose(total, ref.mean(), rtol=1e-5)
    known_rows = (y >= 0).any(axis=1)
    # The batch loss equals the plain mean over rows that have labels.
    unscaled = ref * known_rows.sum() / len(y)
    np.testing.assert_allclose(total, unscaled[known_rows].mean(), rtol=1e-5)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 3.5])
@pytest.mark.parametrize("with_alpha", [False, True])
def test_focal_matches_reference(gamma, with_alpha):
    y, x = make_batch(int(gamma * 10) + with_alpha)
    alpha = [0.5, 1.5, 2.0, 0.25, 1.0, 0.75] if with_alpha else None
    loss = FocalLoss(gamma=gamma, alpha=alpha)
    per = _np(loss.call(y, x))
    ref = np_per_example(np_focal(y.astype("float64"), x.astype("float64"), gamma, alpha), y)
    assert np.isfinite(per).all()
    np.testing.assert_allclose(per, ref, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(float(_np(loss(y, x))), ref.mean(), rtol=1e-4, atol=1e-6)


def test_focal_gamma0_no_alpha_is_bce():
    y, x = make_batch(7)
    focal = _np(FocalLoss(gamma=0.0, alpha=None).call(y, x))
    bce = _np(MaskedBinaryCrossentropy().call(y, x))
    np.testing.assert_allclose(focal, bce, rtol=1e-6, atol=1e-7)


def test_focal_alpha_scales_each_class():
    y, x = make_batch(8, extreme=False)
    alpha = np.array([0.5, 1.5, 2.0, 0.25, 1.0, 3.0])
    plain = _np(FocalLoss(gamma=2.0).elementwise(y, x))
    scaled = _np(FocalLoss(gamma=2.0, alpha=list(alpha)).elementwise(y, x))
    np.testing.assert_allclose(scaled, plain * alpha[None, :], rtol=1e-6, atol=1e-8)


def test_focal_downweights_easy_examples():
    y = np.array([[1.0, 1.0]], "float32")
    x = np.array([[4.0, -1.0]], "float32")  # easy positive, hard positive
    bce = _np(bce_from_logits(y, x))[0]
    focal = _np(FocalLoss(gamma=2.0).elementwise(y, x))[0]
    assert (focal < bce).all()
    assert focal[0] / bce[0] < focal[1] / bce[1]


def test_extreme_logits_are_finite():
    x = np.array([[50.0, -50.0, 1e4, -1e4, 1e4, -1e4]], "float32")
    for y in ([[1, 1, 1, 1, 0, 0]], [[0, 0, 0, 0, 1, 1]]):
        y = np.array(y, "float32")
        ref_bce = np_bce(y.astype("float64"), x.astype("float64"))
        for loss in (MaskedBinaryCrossentropy(), FocalLoss(gamma=2.0),
                     FocalLoss(gamma=0.5, alpha=[1, 2, 3, 4, 5, 6])):
            val = _np(loss.elementwise(y, x))
            assert np.isfinite(val).all(), (loss.name, y, val)
            assert np.isfinite(_np(loss(y, x)))
        np.testing.assert_allclose(_np(bce_from_logits(y, x)), ref_bce, rtol=1e-6, atol=1e-6)


def test_changing_masked_logits_does_not_change_loss():
    y, x = make_batch(11)
    unknown = y < 0
    x2 = x.copy()
    x2[unknown] = np.random.default_rng(0).choice([1e4, -1e4, 0.0, 7.0], size=unknown.sum())
    for loss in (MaskedBinaryCrossentropy(), FocalLoss(gamma=2.0, alpha=[1, 2, 1, 2, 1, 2])):
        np.testing.assert_array_equal(_np(loss.call(y, x)), _np(loss.call(y, x2)))


# ---------------------------------------------------------------- gradients (JAX)

def _grad(loss, y, x):
    if keras.backend.backend() != "jax":
        pytest.skip("gradient check uses jax.grad")
    import jax

    return np.asarray(jax.grad(lambda logits: loss(y, logits))(x))


@pytest.mark.parametrize("loss", [MaskedBinaryCrossentropy(), FocalLoss(gamma=2.0),
                                  FocalLoss(gamma=1.0, alpha=[2, 1, 1, 1, 1, 3])],
                         ids=["bce", "focal2", "focal1-alpha"])
def test_masked_entries_have_zero_gradient(loss):
    y, x = make_batch(12)
    g = _grad(loss, y, x)
    assert np.isfinite(g).all()
    assert (g[y < 0] == 0).all()
    assert (np.abs(g[(y >= 0) & (np.abs(x) < 5)]) > 0).all()


def test_bce_gradient_matches_reference():
    y, x = make_batch(13, extreme=False)
    g = _grad(MaskedBinaryCrossentropy(), y, x)
    mask = (y >= 0).astype("float64")
    p = 1.0 / (1.0 + np.exp(-x.astype("float64")))
    rows_with_labels = max((mask.sum(1) > 0).sum(), 1)  # the batch mean is over these
    ref = ((p - np.clip(y, 0, 1)) * mask / np.maximum(mask.sum(1, keepdims=True), 1)
           / rows_with_labels)
    np.testing.assert_allclose(g, ref, rtol=1e-4, atol=1e-8)


@pytest.mark.parametrize("gamma", [0.0, 0.5])
def test_focal_small_gamma_gradient_finite(gamma):
    y = np.array([[1.0, 0.0, -1.0, -1.0, 1.0, 0.0]], "float32")
    x = np.array([[50.0, -50.0, 50.0, -50.0, 1.0, -1.0]], "float32")
    g = _grad(FocalLoss(gamma=gamma), y, x)
    assert np.isfinite(g).all(), g
    assert (g[y < 0] == 0).all()


# ---------------------------------------------------------------- serialisation

@pytest.mark.parametrize("loss", [MaskedBinaryCrossentropy(),
                                  FocalLoss(gamma=1.5, alpha=[0.5, 1.0, 1.5, 2.0, 1.0, 0.25]),
                                  FocalLoss(gamma=3.0, alpha=None, name="my_focal")],
                         ids=["bce", "focal-alpha", "focal-none"])
def test_get_config_round_trip(loss):
    blob = keras.saving.serialize_keras_object(loss)
    back = keras.saving.deserialize_keras_object(blob)
    assert type(back) is type(loss)
    assert back.get_config() == loss.get_config()
    assert back.name == loss.name
    if isinstance(loss, FocalLoss):
        assert back.gamma == loss.gamma and back.alpha == loss.alpha
    y, x = make_batch(14)
    np.testing.assert_array_equal(_np(back(y, x)), _np(loss(y, x)))


def test_make_loss():
    assert type(make_loss("bce")) is MaskedBinaryCrossentropy
    f = make_loss("focal", gamma=1.0, alpha=[1, 2])
    assert isinstance(f, FocalLoss) and f.gamma == 1.0 and f.alpha == [1.0, 2.0]
    with pytest.raises(ValueError):
        make_loss("mse")


# ---------------------------------------------------------------- inverse_frequency_alpha

def test_inverse_frequency_alpha_orders_and_mean():
    rng = np.random.default_rng(0)
    rates = np.array([0.05, 0.1, 0.2, 0.3, 0.5, 0.7])
    labels = (rng.random((4000, 6)) < rates).astype("float32")
    mask = np.ones_like(labels)
    alpha = np.array(inverse_frequency_alpha(labels, mask))
    assert len(alpha) == 6
    np.testing.assert_allclose(alpha.mean(), 1.0, rtol=1e-6)
    assert (np.diff(alpha) < 0).all()  # rarer -> larger
    emp = labels.mean(0)
    np.testing.assert_allclose(alpha, (1 / emp) / (1 / emp).mean(), rtol=1e-6)


def test_inverse_frequency_alpha_uses_known_rows_only():
    labels = np.array([[1, 0], [0, 1], [0, 1], [1, 1]], "float32")
    mask = np.array([[1, 1], [1, 1], [0, 1], [0, 1]], "float32")
    # known: class 0 rate 1/2, class 1 rate 3/4 -> inv 2, 4/3
    alpha = np.array(inverse_frequency_alpha(labels, mask))
    inv = np.array([2.0, 4.0 / 3.0])
    np.testing.assert_allclose(alpha, inv / inv.mean(), rtol=1e-6)


def test_inverse_frequency_alpha_class_without_positives():
    labels = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 1], [0, 0, 1]], "float32")
    alpha = np.array(inverse_frequency_alpha(labels, np.ones_like(labels)))
    assert np.isfinite(alpha).all()
    np.testing.assert_allclose(alpha.mean(), 1.0, rtol=1e-6)
    assert alpha[1] == alpha.max() and alpha[0] == alpha[1] > alpha[2]
