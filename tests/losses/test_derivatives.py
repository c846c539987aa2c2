"""The engine's derivatives API (``evaluate(..., gradient=True, hessian_diagonal=True)``).

Fast checks in-process: shapes as sent, dtypes, what is returned when, the non-finite counts,
hand-derived values, and every loss against central finite differences in float64. The exact
check, against JAX autodiff of Keras 3's own losses for every option, weight form and reduction,
is ``tests/derivatives/test_against_jax.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from app.losses import LOSSES, evaluate, resolve


def _inputs(name: str, shape: tuple[int, ...] = (3, 4), seed: int = 0) -> tuple[Any, Any]:
    """Random interior points (off kinks and clip boundaries) in each loss's domain."""
    rng = np.random.default_rng(seed)
    spec = resolve(name)
    if spec.sparse_labels:
        return rng.integers(0, shape[-1], size=shape[:-1]).astype(float), rng.uniform(
            0.1, 1.0, size=shape
        )
    if name in ("hinge", "squared_hinge"):
        return rng.choice([-1.0, 1.0], size=shape), rng.normal(size=shape)
    if spec.family in ("probabilistic", "overlap"):
        t = rng.integers(0, 2, size=shape).astype(float)
        if name in ("categorical_crossentropy", "categorical_focal_crossentropy", "kl_divergence"):
            t = rng.dirichlet(np.ones(shape[-1]), size=shape[:-1])
        if name == "poisson":
            t = rng.poisson(2.0, size=shape).astype(float)
        return t, rng.uniform(0.05, 0.95, size=shape)
    t = rng.normal(size=shape)
    return t, t + rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.2, 2.0, size=shape)


@pytest.mark.parametrize("spec", LOSSES, ids=lambda s: s.name)
def test_every_loss_offers_both_derivatives(spec: Any) -> None:
    assert spec.offers == ("gradient", "hessian_diagonal")
    assert spec.describe()["derivatives"] == ["gradient", "hessian_diagonal"]


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "none"])
@pytest.mark.parametrize("spec", LOSSES, ids=lambda s: s.name)
def test_finite_differences(spec: Any, reduction: str) -> None:
    """Central differences of the reduced value (of the sum for ``none``), in float64."""
    y_true, y_pred = _inputs(spec.name)
    weights = np.random.default_rng(1).uniform(0.5, 2.0, size=y_true.shape[:1])
    if spec.family == "overlap":  # one value for the whole batch: one weight
        weights = weights[0]

    def value(p: np.ndarray) -> float:
        r = evaluate(spec, y_true, p, sample_weight=weights, reduction=reduction, dtype="float64")
        return r.result.sum if reduction == "none" else float(r.result.value)

    got = evaluate(
        spec,
        y_true,
        y_pred,
        sample_weight=weights,
        reduction=reduction,
        dtype="float64",
        gradient=True,
        hessian_diagonal=True,
    )
    grad, hess = np.zeros_like(y_pred), np.zeros_like(y_pred)
    h1, h2 = 1e-6, 1e-3
    for i in np.ndindex(y_pred.shape):
        up, down = y_pred.copy(), y_pred.copy()
        up[i] += h1
        down[i] -= h1
        grad[i] = (value(up) - value(down)) / (2 * h1)
        up[i], down[i] = y_pred[i] + h2, y_pred[i] - h2
        hess[i] = (value(up) - 2 * value(y_pred) + value(down)) / h2**2
    np.testing.assert_allclose(got.gradient, grad, rtol=1e-5, atol=1e-7)
    # A second difference loses ~1e-16 |value| / h2^2 to rounding.
    noise = 1e-14 * max(1.0, abs(value(y_pred))) / h2**2
    np.testing.assert_allclose(got.hessian_diagonal, hess, rtol=1e-3, atol=max(1e-6, noise))


def test_only_what_is_asked_for() -> None:
    y_true, y_pred = _inputs("mse")
    plain = evaluate("mse", y_true, y_pred)
    assert plain.gradient is None and plain.hessian_diagonal is None
    assert plain.gradient_non_finite == 0 and plain.hessian_diagonal_non_finite == 0
    only_grad = evaluate("mse", y_true, y_pred, gradient=True)
    assert only_grad.gradient is not None and only_grad.hessian_diagonal is None
    only_hess = evaluate("mse", y_true, y_pred, hessian_diagonal=True)
    assert only_hess.gradient is None and only_hess.hessian_diagonal is not None


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_shaped_like_y_pred_as_sent(dtype: str) -> None:
    """Derivatives follow y_pred's shape as sent, before Keras's trailing-axis alignment."""
    t = np.float64([0.0, 1.0, 1.0])
    column = evaluate("bce", t, t[:, None] * 0.5 + 0.2, gradient=True, dtype=dtype)
    flat = evaluate("bce", t[:, None], t * 0.5 + 0.2, gradient=True, dtype=dtype)
    assert column.gradient is not None and flat.gradient is not None
    assert column.gradient.shape == (3, 1) and flat.gradient.shape == (3,)
    assert column.gradient.dtype == flat.gradient.dtype == np.dtype(dtype)
    assert column.gradient.flags.c_contiguous
    np.testing.assert_allclose(column.gradient.ravel(), flat.gradient)
    sparse = evaluate(
        "sparse_categorical_crossentropy",
        [[1], [0]],
        [[0.2, 0.8], [0.6, 0.4]],
        hessian_diagonal=True,
        dtype=dtype,
    )
    assert sparse.hessian_diagonal is not None and sparse.hessian_diagonal.shape == (2, 2)


def test_none_differentiates_the_sum() -> None:
    y_true, y_pred = _inputs("huber")
    none = evaluate("huber", y_true, y_pred, reduction="none", gradient=True, hessian_diagonal=True)
    total = evaluate("huber", y_true, y_pred, reduction="sum", gradient=True, hessian_diagonal=True)
    assert none.result.value is None
    np.testing.assert_array_equal(none.gradient, total.gradient)
    np.testing.assert_array_equal(none.hessian_diagonal, total.hessian_diagonal)


def test_logistic_regression_objective_by_hand() -> None:
    """What XGBoost's binary:logistic uses: d/dx sum(bce(y, x)) = sigmoid(x) - y and
    d2/dx2 = sigmoid(x) (1 - sigmoid(x)), y_pred shaped (n, 1), large logits included."""
    x = np.float64([-40.0, -3.0, 0.0, 0.5, 3.0, 40.0])[:, None]
    y = np.float64([0.0, 1.0, 1.0, 0.0, 1.0, 1.0])
    r = evaluate(
        "binary_crossentropy",
        y,
        x,
        options={"from_logits": True},
        reduction="sum",
        dtype="float64",
        gradient=True,
        hessian_diagonal=True,
    )
    p, q = 1 / (1 + np.exp(-x[:, 0])), 1 / (1 + np.exp(x[:, 0]))  # sigmoid(x), sigmoid(-x)
    np.testing.assert_allclose(r.gradient[:, 0], p - y, rtol=1e-15, atol=1e-300)
    np.testing.assert_allclose(r.hessian_diagonal[:, 0], p * q, rtol=1e-13, atol=1e-300)
    assert r.hessian_diagonal[0, 0] > 0  # exp(-40): no underflow to 0 from 1 - p


def test_mean_divides_by_the_count_of_valid_samples() -> None:
    """ignore_class: ignored samples get 0 and the mean's divisor counts the others."""
    y_pred = np.float64([[0.2, 0.8], [0.5, 0.5], [0.9, 0.1]])
    r = evaluate(
        "sparse_categorical_crossentropy",
        [1, -1, 0],
        y_pred,
        options={"ignore_class": -1},
        dtype="float64",
        gradient=True,
    )
    assert r.gradient is not None
    np.testing.assert_array_equal(r.gradient[1], [0.0, 0.0])
    np.testing.assert_allclose(r.gradient[0], np.float64([1.0, 1.0 - 1 / 0.8]) / 2)


def test_non_finite_derivatives_are_counted() -> None:
    """A row of zeros: the loss is NaN (0/0) and so are its derivatives, counted, not raised."""
    r = evaluate(
        "categorical_crossentropy",
        [[0.0, 1.0], [1.0, 0.0]],
        [[0.0, 0.0], [0.3, 0.7]],
        gradient=True,
        hessian_diagonal=True,
    )
    assert r.result.non_finite == 1
    assert r.gradient_non_finite == 2 and r.hessian_diagonal_non_finite == 2
    assert r.gradient is not None and np.isfinite(r.gradient[1]).all()


@pytest.mark.parametrize("name", ["mae", "hinge", "huber"])
def test_kink_conventions(name: str) -> None:
    """docs/derivatives.md: MAE's gradient at 0 is 0; hinge at the margin takes the flat side;
    huber at |x| = delta takes the quadratic side (gradient +-delta/n, Hessian 1/n)."""
    if name == "mae":
        r = evaluate(name, [[1.0, 2.0]], [[1.0, 3.0]], gradient=True, hessian_diagonal=True)
        expected_grad, expected_hess = [[0.0, 0.5]], [[0.0, 0.0]]
    elif name == "hinge":
        r = evaluate(name, [[1.0, -1.0]], [[1.0, 0.0]], gradient=True, hessian_diagonal=True)
        expected_grad, expected_hess = [[0.0, 0.5]], [[0.0, 0.0]]
    else:
        r = evaluate(name, [[0.0, 0.0]], [[1.0, -3.0]], gradient=True, hessian_diagonal=True)
        expected_grad, expected_hess = [[0.5, -0.5]], [[0.5, 0.0]]
    np.testing.assert_allclose(r.gradient, expected_grad)
    np.testing.assert_allclose(r.hessian_diagonal, expected_hess)
