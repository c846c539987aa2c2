"""Properties every evaluation must have, checked on generated tensors (hypothesis).

Expected relations come from the mathematics of each loss (a loss that is a mean of squares is
never negative; swapping y_true and y_pred cannot change |y_true - y_pred|), not from lossd's
own output.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from app.losses import LOSSES, evaluate

PROFILE = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

shapes = hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=6)


def floats(low: float, high: float) -> st.SearchStrategy[float]:
    # Bounds rounded inwards to float32, which hypothesis requires for width=32.
    lo, hi = np.nextafter(np.float32(low), np.float32(high)), np.float32(high)
    lo = np.float32(low) if float(np.float32(low)) == low else lo
    hi = hi if float(hi) == high else np.nextafter(hi, np.float32(low))
    return st.floats(float(lo), float(hi), allow_nan=False, allow_infinity=False, width=32)


@st.composite
def pairs(
    draw: st.DrawFn, low: float = -10.0, high: float = 10.0, pred: tuple[float, float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    shape = draw(shapes)
    y_true = draw(hnp.arrays(np.float32, shape, elements=floats(low, high)))
    p_low, p_high = pred or (low, high)
    y_pred = draw(hnp.arrays(np.float32, shape, elements=floats(p_low, p_high)))
    return y_true, y_pred


def per_sample(name: str, y_true: Any, y_pred: Any, **kwargs: Any) -> np.ndarray:
    return evaluate(name, y_true, y_pred, reduction="none", **kwargs).result.per_sample


# --- non-negativity -------------------------------------------------------------------------

# (loss, y_true range, y_pred range, options): domains where the loss is >= 0 by construction.
NON_NEGATIVE: list[tuple[str, tuple[float, float], tuple[float, float], dict[str, Any]]] = [
    ("mean_squared_error", (-1e3, 1e3), (-1e3, 1e3), {}),
    ("mean_absolute_error", (-1e3, 1e3), (-1e3, 1e3), {}),
    ("mean_absolute_percentage_error", (-1e3, 1e3), (-1e3, 1e3), {}),
    ("mean_squared_logarithmic_error", (-10, 1e3), (-10, 1e3), {}),
    ("huber", (-1e3, 1e3), (-1e3, 1e3), {"delta": 0.7}),
    ("hinge", (-1, 1), (-10, 10), {}),
    ("squared_hinge", (-1, 1), (-10, 10), {}),
    ("categorical_hinge", (0, 1), (-10, 10), {}),
    ("binary_crossentropy", (0, 1), (0, 1), {}),
    ("binary_crossentropy", (0, 1), (-50, 50), {"from_logits": True}),
    ("binary_focal_crossentropy", (0, 1), (0, 1), {"apply_class_balancing": True}),
    ("categorical_crossentropy", (0, 1), (1e-3, 1), {}),
    ("categorical_crossentropy", (0, 1), (-50, 50), {"from_logits": True}),
    ("categorical_focal_crossentropy", (0, 1), (1e-3, 1), {}),
]


@PROFILE
@given(data=st.data(), case=st.sampled_from(NON_NEGATIVE))
def test_non_negative(data: st.DataObject, case: Any) -> None:
    name, true_range, pred_range, options = case
    y_true, y_pred = data.draw(pairs(*true_range, pred=pred_range))
    values = per_sample(name, y_true, y_pred, options=options)
    assert np.all(values >= 0), values


@PROFILE
@given(pair=pairs(-20.0, 20.0))
def test_log_cosh_non_negative_up_to_rounding(pair: tuple[np.ndarray, np.ndarray]) -> None:
    # log(cosh(x)) >= 0; computed as x + softplus(-2x) - log 2, float32 rounding can leave
    # about one ulp of log 2 (6e-8) below zero for |x| near 0, as in Keras.
    values = per_sample("log_cosh", *pair)
    assert np.all(values >= -1e-7), values


@PROFILE
@given(
    shape=shapes,
    data=st.data(),
    alpha=floats(0, 2),
    beta=floats(0, 2),
)
def test_overlap_losses_in_unit_interval(
    shape: Any, data: st.DataObject, alpha: float, beta: float
) -> None:
    y_true = data.draw(hnp.arrays(np.float32, shape, elements=st.sampled_from([0.0, 1.0])))
    y_pred = data.draw(hnp.arrays(np.float32, shape, elements=floats(0, 1)))
    for name, options in (("dice", {}), ("tversky", {"alpha": alpha, "beta": beta})):
        values = per_sample(name, y_true, y_pred, options={**options, "axis": 1})
        assert np.all((values >= -1e-6) & (values <= 1 + 1e-6)), (name, values)


@PROFILE
@given(pair=pairs(-100.0, 100.0))
def test_cosine_similarity_in_minus_one_one(pair: tuple[np.ndarray, np.ndarray]) -> None:
    values = per_sample("cosine_similarity", *pair)
    assert np.all(np.abs(values) <= 1 + 1e-5), values


# --- symmetry -------------------------------------------------------------------------------


@PROFILE
@given(pair=pairs(-1e3, 1e3), name=st.sampled_from(["mse", "mae", "huber"]))
def test_symmetric_exactly(pair: tuple[np.ndarray, np.ndarray], name: str) -> None:
    # Only |y_pred - y_true| enters, and negation is exact in floating point.
    y_true, y_pred = pair
    np.testing.assert_array_equal(
        per_sample(name, y_true, y_pred), per_sample(name, y_pred, y_true)
    )


@PROFILE
@given(pair=pairs(-50.0, 50.0))
def test_log_cosh_symmetric(pair: tuple[np.ndarray, np.ndarray]) -> None:
    # cosh is even; x + softplus(-2x) and -x + softplus(2x) round differently, so ~ulps only.
    y_true, y_pred = pair
    a, b = per_sample("log_cosh", y_true, y_pred), per_sample("log_cosh", y_pred, y_true)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@PROFILE
@given(pair=pairs(-10.0, 10.0), name=st.sampled_from(["mse", "mae", "huber", "log_cosh"]))
def test_zero_when_equal(pair: tuple[np.ndarray, np.ndarray], name: str) -> None:
    y_true, _ = pair
    np.testing.assert_allclose(per_sample(name, y_true, y_true), 0.0, atol=1e-7)


# --- aliases --------------------------------------------------------------------------------

ALIASES = [(alias, spec.name) for spec in LOSSES for alias in spec.names if alias != spec.name]


@PROFILE
@given(pair=pairs(0.0, 1.0), alias=st.sampled_from(ALIASES))
def test_alias_results_identical(
    pair: tuple[np.ndarray, np.ndarray], alias: tuple[str, str]
) -> None:
    name, canonical = alias
    y_true, y_pred = pair
    if canonical == "sparse_categorical_crossentropy":
        y_true = np.floor(y_true[..., 0] * (y_pred.shape[-1] - 1e-3))
    a = evaluate(name, y_true, y_pred, reduction="none").result
    b = evaluate(canonical, y_true, y_pred, reduction="none").result
    np.testing.assert_array_equal(a.per_sample, b.per_sample)
    assert (a.sum, a.count) == (b.sum, b.count) or (np.isnan(a.sum) and np.isnan(b.sum))
    assert evaluate(name, y_true, y_pred).loss == canonical


# --- precision ------------------------------------------------------------------------------

# Well-conditioned cases (no clipping boundary, no cancellation): float64 must agree with float32
# to about float32 precision.
PRECISION_CASES: list[tuple[str, tuple[float, float], tuple[float, float], dict[str, Any]]] = [
    ("mean_squared_error", (-10, 10), (-10, 10), {}),
    ("mean_absolute_error", (-10, 10), (-10, 10), {}),
    ("mean_squared_logarithmic_error", (0, 10), (0, 10), {}),
    ("log_cosh", (-10, 10), (-10, 10), {}),
    ("huber", (-10, 10), (-10, 10), {}),
    ("hinge", (-1, 1), (-3, 3), {}),
    ("binary_crossentropy", (0, 1), (0.01, 0.99), {}),
    ("binary_crossentropy", (0, 1), (-20, 20), {"from_logits": True}),
    ("categorical_crossentropy", (0, 1), (0.01, 1), {}),
    ("categorical_crossentropy", (0, 1), (-20, 20), {"from_logits": True}),
    ("kl_divergence", (0.01, 1), (0.01, 1), {}),
    ("poisson", (0, 10), (0.1, 10), {}),
]


@PROFILE
@given(data=st.data(), case=st.sampled_from(PRECISION_CASES))
def test_float64_close_to_float32(data: st.DataObject, case: Any) -> None:
    name, true_range, pred_range, options = case
    y_true, y_pred = data.draw(pairs(*true_range, pred=pred_range))
    r32 = evaluate(name, y_true, y_pred, options=options, reduction="none").result
    r64 = evaluate(name, y_true, y_pred, options=options, reduction="none", dtype="float64").result
    assert r32.per_sample.dtype == np.float32 and r64.per_sample.dtype == np.float64
    scale = max(1.0, float(np.max(np.abs(r64.per_sample))))
    np.testing.assert_allclose(r32.per_sample, r64.per_sample, rtol=1e-4, atol=1e-5 * scale)


# --- reductions -----------------------------------------------------------------------------

REDUCED_LOSSES = ["mse", "mae", "huber", "log_cosh", "binary_crossentropy", "poisson"]


@st.composite
def weighted_batches(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    batch, width = draw(st.integers(2, 12)), draw(st.integers(1, 5))
    y_true = draw(hnp.arrays(np.float32, (batch, width), elements=floats(0, 1)))
    y_pred = draw(hnp.arrays(np.float32, (batch, width), elements=floats(0.05, 3)))
    weights = draw(st.none() | hnp.arrays(np.float32, (batch,), elements=floats(0, 4)))
    return y_true, y_pred, weights


@PROFILE
@given(
    batch=weighted_batches(),
    name=st.sampled_from(REDUCED_LOSSES),
    reduction=st.sampled_from(["sum_over_batch_size", "mean", "mean_with_sample_weight"]),
)
def test_mean_is_sum_over_count(batch: Any, name: str, reduction: str) -> None:
    y_true, y_pred, weights = batch
    result = evaluate(name, y_true, y_pred, sample_weight=weights, reduction=reduction).result
    if result.count == 0:  # all-zero weights: Keras's divide_no_nan
        assert result.value == 0.0
        return
    np.testing.assert_allclose(result.value, result.sum / result.count, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(result.sum, np.sum(result.per_sample, dtype=np.float64), rtol=1e-5)
    if weights is None or reduction != "mean_with_sample_weight":
        assert result.count == y_true.shape[0]
    else:
        np.testing.assert_allclose(result.count, np.sum(weights, dtype=np.float64), rtol=1e-5)


@PROFILE
@given(
    batch=weighted_batches(),
    name=st.sampled_from(REDUCED_LOSSES),
    reduction=st.sampled_from(["sum_over_batch_size", "mean_with_sample_weight", "sum"]),
    split=st.floats(0.01, 0.99),
)
def test_halves_merge_into_the_whole(batch: Any, name: str, reduction: str, split: float) -> None:
    y_true, y_pred, weights = batch
    cut = max(1, min(len(y_true) - 1, round(split * len(y_true))))

    def run(sl: slice) -> Any:
        w = None if weights is None else weights[sl]
        return evaluate(name, y_true[sl], y_pred[sl], sample_weight=w, reduction=reduction).result

    whole, first, second = run(slice(None)), run(slice(None, cut)), run(slice(cut, None))
    np.testing.assert_allclose(first.sum + second.sum, whole.sum, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(first.count + second.count, whole.count, rtol=1e-6)
    np.testing.assert_allclose(
        np.concatenate([first.per_sample, second.per_sample]), whole.per_sample
    )
    if whole.count:
        merged = (first.sum + second.sum) / (first.count + second.count)
        np.testing.assert_allclose(merged, whole.mean, rtol=1e-5, atol=1e-6)
    if reduction == "sum":
        assert whole.value == whole.sum


@PROFILE
@given(batch=weighted_batches(), scale=floats(0.5, 8))
def test_weights_scale_linearly(batch: Any, scale: float) -> None:
    # sum is linear in the weights; mean_with_sample_weight is invariant to scaling them.
    y_true, y_pred, weights = batch
    if weights is None or not np.sum(weights) > 0:
        weights = np.ones(len(y_true), np.float32)
    base = evaluate("mse", y_true, y_pred, sample_weight=weights, reduction="sum").result
    scaled_w = (weights * np.float32(scale)).astype(np.float32)
    scaled = evaluate("mse", y_true, y_pred, sample_weight=scaled_w, reduction="sum").result
    np.testing.assert_allclose(scaled.value, base.value * scale, rtol=1e-5, atol=1e-6)
    a = evaluate("mse", y_true, y_pred, sample_weight=weights, reduction="mean_with_sample_weight")
    b = evaluate("mse", y_true, y_pred, sample_weight=scaled_w, reduction="mean_with_sample_weight")
    np.testing.assert_allclose(a.result.value, b.result.value, rtol=1e-5, atol=1e-6)
