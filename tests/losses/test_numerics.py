"""The engine's fast numeric building blocks equal their plain NumPy definitions, to float32
accuracy, on every axis form, and the losses built on them keep their accuracy at the edges."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

from app.losses import LOSSES, evaluate, numerics
from app.losses.numerics import DOT_BLOCK, at_least, at_most, dot, sum_where, unbuffered_rows


def rng() -> np.random.Generator:
    return np.random.default_rng(11)


def relative_error(ours: Any, exact: Any) -> float:
    ours, exact = np.asarray(ours, np.float64), np.asarray(exact, np.float64)
    return float(np.max(np.abs(ours - exact) / np.maximum(np.abs(exact), 1e-30)))


@pytest.mark.parametrize(
    ("shape", "axis"),
    [
        ((7,), -1),
        ((7,), None),
        ((3, 5), 0),
        ((3, 5), 1),
        ((2, 3, 4), (0, 2)),
        ((2, 3, 4), (1, 2)),
        ((2, 3, 4), (-1, 0, 1)),
        ((2, 3, 4), None),
        ((3, 2 * DOT_BLOCK + 5), -1),  # whole runs and a tail
        ((2 * DOT_BLOCK, 3), 0),  # a long strided axis
        ((4, DOT_BLOCK, 3), (1, 2)),
        ((DOT_BLOCK + 1, 2), None),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dot_is_the_sum_of_products(shape: tuple[int, ...], axis: Any, dtype: Any) -> None:
    a = rng().normal(size=shape).astype(dtype)
    b = rng().normal(size=shape).astype(dtype)
    ours = dot(a, b, axis)
    assert np.shape(ours) == np.shape(np.sum(a * b, axis=axis))
    assert np.asarray(ours).dtype == dtype
    exact = np.sum(a.astype(np.float64) * b, axis=axis)
    scale = np.sum(np.abs(a.astype(np.float64) * b), axis=axis)  # the sum's condition
    assert np.all(np.abs(ours - exact) <= (1e-6 if dtype == np.float32 else 1e-14) * scale)


def test_dot_keeps_np_sum_accuracy_over_millions_of_elements() -> None:
    # One BLAS dot over 4M float32 elements is off by ~2e-5 (relative); pairwise sums by ~1e-8.
    a = (rng().normal(size=4_000_003) + 0.1).astype(np.float32)
    b = (a + 0.5 * rng().normal(size=a.size)).astype(np.float32)
    exact = np.dot(a.astype(np.float64), b.astype(np.float64))
    assert relative_error(dot(a, b, None), exact) < 1e-6
    assert relative_error(dot(a, b, -1), exact) < 1e-6


def _ulps(ours: Any, x: Any) -> Any:
    """|ours - log1p(x)| in units of the last place of the answer's dtype, against log1p in
    x87 extended precision (64-bit mantissa), where it is finite and nonzero."""
    exact = np.log1p(x.astype(np.longdouble))
    keep = np.isfinite(exact) & (exact != 0)
    spacing = np.spacing(np.abs(exact[keep]).astype(x.dtype)).astype(np.longdouble)
    return np.abs(ours[keep].astype(np.longdouble) - exact[keep]) / spacing


@pytest.mark.parametrize(("dtype", "bound"), [(np.float32, 8.0), (np.float64, 3.0)])
def test_log1p_is_within_a_few_ulp_over_every_binade(dtype: Any, bound: float) -> None:
    """numerics.log1p against log1p in extended precision: every binade of |x| in (-1, 1) and
    of x up to the dtype's largest, both signs, evenly spread values within [-1, 10], and
    -1's and 1's neighbours. Measured on the AVX2 development machine: at most 3.6 ulp in
    float32 and 1.5 in float64 (np.log1p, a scalar loop, is within 1). The bound leaves room
    for NumPy's float32 log on other CPUs (within 3 ulp here, other SIMD code elsewhere); a
    mistake in the correction term costs thousands of ulp near 0."""
    info = np.finfo(dtype)
    r = rng()
    small = np.exp2(r.uniform(np.log2(info.smallest_subnormal), 0, size=200_000))
    large = np.exp2(r.uniform(0, np.log2(float(info.max)), size=100_000))
    x = np.concatenate(
        [
            small,
            -small * (1 - info.eps),  # in (-1, 0)
            large,
            r.uniform(-1, 10, size=100_000),
            np.nextafter(dtype(-1), 0) + np.arange(50) * np.spacing(dtype(0.5)),
            np.nextafter(dtype(1), 2) + np.arange(-25, 25) * np.spacing(dtype(1)),
            [info.max, info.tiny, -info.tiny, -0.5, 1.0],
        ]
    ).astype(dtype)
    ours = numerics.log1p(x)
    assert ours.dtype == dtype
    ulps = _ulps(ours, x)
    assert ulps.size > 500_000
    assert float(ulps.max()) <= bound, float(ulps.max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log1p_edges_are_np_log1p_s_and_leave_their_neighbours_alone(dtype: Any) -> None:
    """-1, infinities, NaN and x < -1 have no rounding error to correct (0/0 or inf - inf in
    the correction): their answers are log1p's own, and the other elements keep theirs."""
    edges = np.array([-1.0, np.inf, -np.inf, np.nan, -2.0, 0.0], dtype)
    middle = np.array([1e-3, -0.5, 3.0, 1e-30], dtype)
    x = np.concatenate([edges, middle])
    with np.errstate(invalid="ignore", divide="ignore"):
        ours = numerics.log1p(x)
    np.testing.assert_array_equal(ours[: edges.size], [-np.inf, np.inf, np.nan, np.nan, np.nan, 0])
    assert float(_ulps(ours[edges.size :], middle).max()) <= 4


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log1p_in_place_gives_the_same_bits_and_log1p_leaves_its_input(dtype: Any) -> None:
    """On [-1, 1] (and NaN) the in-place form is log1p bit for bit, in x's own buffer; log1p
    itself does not touch its input."""
    r = rng()
    x = np.concatenate(
        [r.uniform(-1, 1, 10_000), np.exp(r.uniform(-100, 0, 10_000)), [-1.0, 1.0, 0.0, np.nan]]
    ).astype(dtype)
    before = x.copy()
    with np.errstate(divide="ignore"):
        general = numerics.log1p(x)
        np.testing.assert_array_equal(x, before)
        in_place = numerics.log1p_in_place(x)
    np.testing.assert_array_equal(in_place, general)
    assert in_place.dtype == dtype


def test_log1p_warns_as_np_log1p_does() -> None:
    """Its internal inf - inf and 0/0 are not the caller's concern: log1p(inf) is silent, -1
    warns of a division by zero and -2 of an invalid value, as np.log1p does."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert numerics.log1p(np.float32([np.inf, 1.0]))[0] == np.inf
    with pytest.warns(RuntimeWarning, match="divide by zero"):
        assert numerics.log1p(np.float32([-1.0, 1.0]))[0] == -np.inf
    with pytest.warns(RuntimeWarning, match="invalid value"):
        assert np.isnan(numerics.log1p(np.float32([-2.0, 1.0]))[0])


@pytest.mark.parametrize("x", [np.float32(0.5), np.array(-0.25, np.float32), np.float64(3.0)])
def test_one_value_goes_through_the_array_helpers(x: Any) -> None:
    """A 0-d array or a NumPy scalar, which ufuncs answer with scalars that have no buffer to
    work in: the same numbers as the formulas (log sigmoid(x) = -log1p(exp(-x)))."""
    value = float(x)
    assert numerics.log1p(x) == pytest.approx(np.log1p(value), rel=1e-6)
    assert numerics.log1p_in_place(np.array(x)) == pytest.approx(np.log1p(value), rel=1e-6)
    want = -np.log1p(np.exp(-value)), -np.log1p(np.exp(value))
    assert numerics.log_sigmoid(x) == pytest.approx(want[0], rel=1e-6)
    assert numerics.log_sigmoids(x) == pytest.approx(want, rel=1e-6)


def test_soft_margin_loss_overflows_to_inf_as_torch_writes_it() -> None:
    """torch's log1p(exp(-t x)): exp(100) overflows float32 to inf, and log1p(inf) is inf;
    exp(50) = 5.2e21 does not, and log1p of it is 50 + 2e-22, 50 in float32."""
    got = evaluate(
        "torch.nn.SoftMarginLoss", [[1.0, 1.0, -1.0]], [[-100.0, -50.0, 0.0]], reduction="none"
    ).result.per_sample
    np.testing.assert_array_equal(got[0, :2], [np.inf, 50.0])
    assert got[0, 2] == pytest.approx(np.log(2.0), rel=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_sigmoids_are_exact_where_the_sigmoid_saturates(dtype: Any) -> None:
    """log sigmoid(x) = -logaddexp(0, -x), and of -x, in extended precision: a relative error of
    a few ulp over logits from 1e-30 to 1e30 of either sign, including the tails where
    log sigmoid(x) ~ -exp(-x) is far below 1 and a naive log(sigmoid(x)) gives 0 or -inf
    (where it falls below the dtype's normal range, the answer is at most that small)."""
    r = rng()
    x = np.concatenate(
        [r.normal(size=50_000) * 10, np.exp(r.uniform(-69, 69, 50_000)) * r.choice([-1, 1], 50_000)]
    ).astype(dtype)
    exact = -np.logaddexp(np.longdouble(0), -x.astype(np.longdouble))
    negative_exact = -np.logaddexp(np.longdouble(0), x.astype(np.longdouble))
    positive, negative = numerics.log_sigmoids(x)
    np.testing.assert_array_equal(numerics.log_sigmoid(x), positive)
    for ours, want in ((positive, exact), (negative, negative_exact)):
        keep = np.abs(want) >= np.finfo(dtype).tiny  # representable, not subnormal
        assert np.all(np.abs(ours[~keep]) <= np.finfo(dtype).tiny)
        error = np.abs(ours[keep] - want[keep]) / np.abs(want[keep])
        assert float(error.max()) < 6 * np.finfo(dtype).eps, float(error.max())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_log_cosh_is_as_accurate_as_the_softplus_form(dtype: str) -> None:
    """Element by element (one column), against log(cosh(x)) in float64 from the same x: within
    3 units in the last place of |x| + softplus(-2|x|), the intermediate the stable form
    cancels log 2 from. Keras's x + logaddexp(-2x, 0) - log 2 is off by up to 2.15 such units on
    these inputs; lossd by up to 2.0-2.25 (seeds 0-2, 600k values each)."""
    r = rng()
    x = np.concatenate(
        [
            r.normal(size=20_000),
            r.normal(size=20_000) * 1e-3,
            np.exp(r.uniform(-12, 6, size=20_000)) * r.choice([-1, 1], size=20_000),
            [0.0, 1e-30, -1e-5, 44.0, -89.0, 1e3, -3e38],
        ]
    ).astype(dtype)[:, np.newaxis]
    ours = evaluate("log_cosh", np.zeros_like(x), x, reduction="none", dtype=dtype)
    a = np.abs(x[:, 0].astype(np.float64))
    intermediate = a + np.log1p(np.exp(-2 * a))
    exact = intermediate - np.log(2.0)
    ulp = np.spacing(intermediate.astype(dtype)).astype(np.float64)
    error = np.abs(ours.result.per_sample.astype(np.float64) - exact)
    assert np.all(error <= 3 * ulp), np.max(error / ulp)
    assert ours.result.per_sample[-7] == 0.0  # log cosh 0


def test_log_cosh_is_exactly_symmetric() -> None:
    x, y = rng().normal(size=(2, 50, 40)).astype(np.float32) * 5
    a = evaluate("log_cosh", x, y, reduction="none").result.per_sample
    b = evaluate("log_cosh", y, x, reduction="none").result.per_sample
    np.testing.assert_array_equal(a, b)


def test_cosine_of_vectors_whose_squared_norm_overflows_is_zero_not_nan() -> None:
    # Keras's normalised vector is 0 when sum(x^2) overflows to inf (1/sqrt(inf) = 0).
    y_true = np.float32([[3e19, 3e19], [3e19, 1.0], [1.0, 2.0]])
    y_pred = np.float32([[3e19, 3e19], [1.0, 1.0], [2.0, 4.0]])
    ours = evaluate("cosine", y_true, y_pred, reduction="none").result.per_sample
    np.testing.assert_allclose(ours, [0.0, 0.0, -1.0], rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_at_least_and_at_most_are_max_and_min(dtype: type) -> None:
    """clip against one bound: NaN and infinities as max/min give them; a -0.0 is kept (max
    would give +0.0, which compares equal)."""
    x = np.array([np.nan, -np.inf, np.inf, -0.0, 0.0, -1.5, 2.5, 1e-40], dtype=dtype)
    for ours, plain in ((at_least(x, 0.0), np.maximum(x, 0)), (at_most(x, 0.0), np.minimum(x, 0))):
        assert ours.dtype == x.dtype
        np.testing.assert_array_equal(ours, plain)  # NaN equals NaN here, -0.0 equals 0.0
    assert np.signbit(at_least(x, 0.0)[3]) and np.isnan(at_most(x, 1.0)[0])
    out = x.copy()
    assert at_least(out, 1.0, out=out) is out and out[2] == np.inf and out[5] == 1.0


def test_unbuffered_rows_sets_numpys_buffer_and_restores_it() -> None:
    default = np.getbufsize()
    with unbuffered_rows(1000):
        assert np.getbufsize() == 1504  # 1.5 rows, a multiple of 16: under two rows
    assert np.getbufsize() == default
    with unbuffered_rows(100):  # short rows: NumPy's buffering pays, nothing changes
        assert np.getbufsize() == default
    with pytest.raises(RuntimeError), unbuffered_rows(1000):
        raise RuntimeError("a loss failing inside")
    assert np.getbufsize() == default


def test_derivatives_are_the_same_bits_with_and_without_row_buffering(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every Keras loss's derivatives at 6 x 1000 (rows long enough for unbuffered_rows to act),
    against the same with it switched off: unbuffered_rows changes how NumPy loops, not what it
    computes."""
    r = rng()
    y_true = r.uniform(0.05, 0.95, size=(6, 1000)).astype(np.float32)
    y_pred = r.uniform(0.05, 0.95, size=(6, 1000)).astype(np.float32)

    def run(name: str) -> Any:
        labels = np.argmax(y_true, axis=-1).astype(np.float32)
        true = labels if "sparse" in name else y_true
        return evaluate(name, true, y_pred, gradient=True, hessian_diagonal=True)

    for spec in LOSSES:
        fast = run(spec.name)
        with monkeypatch.context() as patch:
            patch.setattr(numerics, "UNBUFFERED_ROW_MIN", 10**9)
            plain = run(spec.name)
        np.testing.assert_array_equal(fast.gradient, plain.gradient, err_msg=spec.name)
        np.testing.assert_array_equal(
            fast.hessian_diagonal, plain.hessian_diagonal, err_msg=spec.name
        )


def test_sum_where_is_the_sum_of_wheres_even_over_infinities() -> None:
    x = np.float32([1.0, np.inf, -2.0, 3.0])
    y = np.float32([5.0, 6.0, np.inf, 7.0])
    mask = np.array([True, False, True, False])
    expected = np.where(mask, x, 0) + np.where(~mask, y, 0)  # [1, 6, -2, 7]: no inf picked
    np.testing.assert_array_equal(sum_where((mask, x), (~mask, y)), expected)
    finite = np.float32([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(sum_where((mask, finite)), np.float32([1.0, 0.0, 3.0, 0.0]))
