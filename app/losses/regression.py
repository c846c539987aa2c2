"""Regression losses: each compares ``y_pred`` to ``y_true`` element by element and averages the
last axis, so a ``(batch, ..., d)`` input gives ``(batch, ...)`` per-sample losses in the units of
the target (squared units for the squared errors, percent for MAPE)."""

from __future__ import annotations

import numpy as np

from app.losses.numerics import (
    EPSILON,
    Derivatives,
    FloatArray,
    absolute_value_derivatives,
    at_least,
    at_most,
    const,
    filled,
    log1p_in_place,
    per_element,
)
from app.losses.options import OptionSpec
from app.losses.spec import derivatives_of, loss


@loss(
    class_name="MeanSquaredError",
    aliases=("mse", "MSE"),
    formula="mean((y_true - y_pred)^2, axis=-1)",
    doc="Average squared difference; in squared units of the target.",
)
def mean_squared_error(y_true: FloatArray, y_pred: FloatArray) -> FloatArray:
    """``mean((y_true - y_pred)^2, axis=-1)``.

    >>> mean_squared_error(np.float32([[0, 1, 1]]), np.float32([[1, 1, 0]]))
    array([0.6666667], dtype=float32)
    """
    return np.mean(np.square(y_true - y_pred), axis=-1)


@derivatives_of(mean_squared_error)
def _mean_squared_error_derivatives(
    y_true: FloatArray, y_pred: FloatArray, scale: FloatArray, hessian: bool
) -> Derivatives:
    """Gradient ``2 (y_pred - y_true) / n``, Hessian diagonal ``2 / n`` (``n``: the last axis's
    size), each times ``scale``."""
    k = per_element(scale, 2.0, y_pred, -1)
    grad = np.subtract(y_pred, y_true)
    grad *= k
    return grad, filled(k, y_pred) if hessian else None


@loss(
    class_name="MeanAbsoluteError",
    aliases=("mae", "MAE"),
    formula="mean(|y_true - y_pred|, axis=-1)",
    doc="Average absolute difference; in units of the target.",
)
def mean_absolute_error(y_true: FloatArray, y_pred: FloatArray) -> FloatArray:
    """``mean(|y_true - y_pred|, axis=-1)``.

    >>> mean_absolute_error(np.float32([[0, 0, 1]]), np.float32([[1, 0, 1]]))
    array([0.33333334], dtype=float32)
    """
    return _mean_absolute_error_forward(y_true, y_pred)[0]


def _mean_absolute_error_forward(
    y_true: FloatArray, y_pred: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """:func:`mean_absolute_error`'s values and, for its derivatives, ``y_pred - y_true`` (whose
    absolute value is ``|y_true - y_pred|`` exactly: a floating-point difference is exactly
    antisymmetric)."""
    difference = np.subtract(y_pred, y_true)
    return np.mean(np.abs(difference), axis=-1), difference


@derivatives_of(mean_absolute_error, forward=_mean_absolute_error_forward)
def _mean_absolute_error_derivatives(
    y_true: FloatArray,
    y_pred: FloatArray,
    scale: FloatArray,
    hessian: bool,
    saved: FloatArray | None = None,
) -> Derivatives:
    """Gradient ``sign(y_pred - y_true) / n``, Hessian diagonal 0. At the kink ``y_pred ==
    y_true`` the gradient is 0 (``sign(0)``, the subgradient JAX's ``abs`` gives). From the
    value's difference."""
    difference = _mean_absolute_error_forward(y_true, y_pred)[1] if saved is None else saved
    return absolute_value_derivatives(difference, per_element(scale, 1.0, y_pred, -1), hessian)


@loss(
    class_name="MeanAbsolutePercentageError",
    aliases=("mape", "MAPE"),
    formula="100 * mean(|y_true - y_pred| / max(|y_true|, 1e-7), axis=-1)",
    doc="Average absolute difference relative to the target, in percent. Zero targets "
    "divide by 1e-7.",
)
def mean_absolute_percentage_error(y_true: FloatArray, y_pred: FloatArray) -> FloatArray:
    """``100 * mean(|y_true - y_pred| / max(|y_true|, eps), axis=-1)``, in percent.

    A zero target divides by eps, so a miss there costs about 1e9 percent (as in Keras).

    >>> mean_absolute_percentage_error(np.float32([[2, 4]]), np.float32([[1, 5]]))
    array([37.5], dtype=float32)
    """
    diff = np.abs((y_true - y_pred) / at_least(np.abs(y_true), EPSILON))
    return const(100.0, y_true) * np.mean(diff, axis=-1)


@derivatives_of(mean_absolute_percentage_error)
def _mean_absolute_percentage_error_derivatives(
    y_true: FloatArray, y_pred: FloatArray, scale: FloatArray, hessian: bool
) -> Derivatives:
    """Gradient ``100 sign(y_pred - y_true) / (n max(|y_true|, eps))``, Hessian diagonal 0;
    0 at the kink ``y_pred == y_true``, as for MAE."""
    factor = at_least(np.abs(y_true), EPSILON)
    np.divide(per_element(scale, 100.0, y_pred, -1), factor, out=factor)
    return absolute_value_derivatives(y_pred - y_true, factor, hessian)


@loss(
    class_name="MeanSquaredLogarithmicError",
    aliases=("msle", "MSLE"),
    formula="mean((log(max(y_pred, 1e-7) + 1) - log(max(y_true, 1e-7) + 1))^2, axis=-1)",
    doc="Squared difference of log(1 + x): penalises relative rather than absolute error.",
)
def mean_squared_logarithmic_error(y_true: FloatArray, y_pred: FloatArray) -> FloatArray:
    """``mean((log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1))^2, axis=-1)``.

    >>> mean_squared_logarithmic_error(np.float32([[0.0]]), np.float32([[np.e - 1]]))
    array([0.99999976], dtype=float32)
    """
    ratio, _ = _log_ratio_terms(y_true, y_pred)
    np.log(ratio, out=ratio)  # log u - log v, one log instead of two
    return np.mean(np.square(ratio, out=ratio), axis=-1)


def _log_ratio_terms(y_true: FloatArray, y_pred: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``(u / v, u)`` with ``u = max(y_pred, eps) + 1`` and ``v = max(y_true, eps) + 1``.

    ``log u - log v`` is computed as ``log(u / v)``: half the logarithms, which are most of the
    loss's time (NumPy's float32 log costs 10x a multiply), and no cancellation when ``u`` and
    ``v`` are close, so it can differ from Keras's difference by that cancellation's rounding
    (Keras 0 where lossd gives 9e-15, say), well within float32 tolerance. ``u, v >= 1``, so
    ``u / v`` does not overflow, and is at worst subnormal, whose log is finite."""
    one = const(1.0, y_pred)
    u = at_least(y_pred, EPSILON)
    u += one
    ratio = at_least(y_true, EPSILON)
    ratio += one
    np.divide(u, ratio, out=ratio)
    return ratio, u


@derivatives_of(mean_squared_logarithmic_error)
def _mean_squared_logarithmic_error_derivatives(
    y_true: FloatArray, y_pred: FloatArray, scale: FloatArray, hessian: bool
) -> Derivatives:
    """With ``u = max(y_pred, eps) + 1`` and ``d = log u - log(max(y_true, eps) + 1)``: gradient
    ``2 d / (n u)``, Hessian diagonal ``2 (1 - d) / (n u^2)`` where ``y_pred >= eps``; 0 below
    eps, where ``max`` holds the value constant (at ``y_pred == eps``: the side above)."""
    d, u = _log_ratio_terms(y_true, y_pred)
    np.log(d, out=d)
    one = const(1.0, y_pred)
    np.divide(one, u, out=u)  # 1 / u
    u *= y_pred >= const(EPSILON, y_pred)  # 0 where max() holds the value constant
    k = per_element(scale, 2.0, y_pred, -1)
    grad = np.multiply(d, u)
    grad *= k
    if not hessian:
        return grad, None
    hess = np.subtract(one, d, out=d)
    hess *= u
    hess *= u
    hess *= k
    return grad, hess


@loss(
    class_name="LogCosh",
    aliases=("logcosh",),
    formula="mean(x + softplus(-2x) - log(2), axis=-1), x = y_pred - y_true",
    doc="log(cosh(error)), computed stably: like MSE/2 for small errors, like MAE for large ones.",
)
def log_cosh(y_true: FloatArray, y_pred: FloatArray) -> FloatArray:
    """``mean(log(cosh(y_pred - y_true)), axis=-1)``.

    Computed as ``x + softplus(-2x) - log 2``, which never overflows (``cosh`` would for
    ``|x| > 89`` in float32). Roughly ``x^2 / 2`` for small errors and ``|x| - log 2`` for large.

    >>> log_cosh(np.float32([[0, 0]]), np.float32([[1, -1]]))
    array([0.4337808], dtype=float32)
    """
    # x + softplus(-2x) = |x| + log1p(exp(-2|x|)) exactly (np.logaddexp's own split), with
    # numerics.log1p_in_place: NumPy's float32 logaddexp and log1p are scalar loops.
    result = np.subtract(y_pred, y_true)
    np.abs(result, out=result)
    e = np.multiply(result, const(-2.0, result))
    np.exp(e, out=e)  # exp(-2|x|), in (0, 1]
    tail = log1p_in_place(e)  # softplus(-2|x|); e in (0, 1]
    tail -= const(np.log(2.0), result)  # first, so the small result is rounded only once
    result += tail
    return np.mean(result, axis=-1)


@derivatives_of(log_cosh)
def _log_cosh_derivatives(
    y_true: FloatArray, y_pred: FloatArray, scale: FloatArray, hessian: bool
) -> Derivatives:
    """Gradient ``tanh(x) / n``, Hessian diagonal ``(1 - tanh(x)^2) / n = sech(x)^2 / n``, with
    ``x = y_pred - y_true``; from ``e = exp(-2|x|)`` (``tanh |x| = (1 - e) / (1 + e)``,
    ``sech^2 x = 4 e / (1 + e)^2``), so neither overflows nor loses ``sech^2``'s tail."""
    x = np.subtract(y_pred, y_true)
    one = const(1.0, x)
    e = np.abs(x)
    e *= const(-2.0, x)
    np.exp(e, out=e)
    k = per_element(scale, 1.0, y_pred, -1)
    inv = np.add(e, one)
    np.divide(one, inv, out=inv)  # 1 / (1 + e)
    grad = np.subtract(one, e)
    grad *= inv
    grad *= k
    np.copysign(grad, x, out=grad)
    if not hessian:
        return grad, None
    hess = np.multiply(e, const(4.0, x), out=e)
    hess *= inv
    hess *= inv
    hess *= k
    return grad, hess


@loss(
    class_name="Huber",
    aliases=("huber_loss",),
    formula="mean(0.5 x^2 if |x| <= delta else delta * |x| - 0.5 delta^2, axis=-1), "
    "x = y_pred - y_true",
    doc="Quadratic for small errors, linear beyond delta: robust to outliers.",
    options=(
        OptionSpec(
            "delta",
            "number",
            1.0,
            "Where the loss turns from quadratic to linear.",
            minimum=0.0,
            exclusive_minimum=True,
        ),
    ),
)
def huber(y_true: FloatArray, y_pred: FloatArray, delta: float = 1.0) -> FloatArray:
    """``mean(0.5 x^2 if |x| <= delta else delta |x| - 0.5 delta^2, axis=-1)``
    with ``x = y_pred - y_true``, in squared units of the target.

    Quadratic near zero, linear (slope ``delta``) beyond ``delta``.

    >>> huber(np.float32([[0, 0]]), np.float32([[0.5, 3]]))
    array([1.3125], dtype=float32)
    """
    # One formula for both sides, c (|x| - c / 2) with c = min(|x|, delta): 0.5 x^2 where
    # |x| <= delta (exactly: |x| - |x|/2 is exact), delta |x| - 0.5 delta^2 beyond. np.where
    # over a random mask costs ~4 ms per 1M elements, three times the rest of the loss.
    abs_error = np.subtract(y_pred, y_true)
    np.abs(abs_error, out=abs_error)
    c = at_most(abs_error, delta)  # abs_error >= +0
    values = np.multiply(c, const(-0.5, c))
    values += abs_error
    values *= c
    return np.mean(values, axis=-1)


@derivatives_of(huber)
def _huber_derivatives(
    y_true: FloatArray, y_pred: FloatArray, scale: FloatArray, hessian: bool, delta: float = 1.0
) -> Derivatives:
    """Gradient ``clip(x, -delta, delta) / n``, Hessian diagonal ``1/n`` where ``|x| <= delta``
    and 0 beyond, with ``x = y_pred - y_true``. At ``|x| = delta`` the gradient is continuous
    (``+-delta / n``) and the Hessian is the quadratic side's ``1/n``, as the loss's ``<=``."""
    x = np.subtract(y_pred, y_true)
    d = const(delta, x)
    k = per_element(scale, 1.0, y_pred, -1)
    hess = None
    if hessian:
        hess = np.less_equal(np.abs(x), d).astype(x.dtype)
        hess *= k
    grad = np.clip(x, -d, d, out=x)
    grad *= k
    return grad, hess
