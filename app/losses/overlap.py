"""Overlap (segmentation) losses: one minus a soft set-similarity between ``y_true`` (masks in
[0, 1]) and ``y_pred`` (probabilities). Like Keras, they reduce *every* axis by default, giving one
value for the whole batch; pass ``axis`` (an int or a list of ints) for per-sample values."""

from __future__ import annotations

import numpy as np

from app.losses.numerics import EPSILON, Axes, Derivatives, FloatArray, const, dot
from app.losses.options import OptionSpec
from app.losses.spec import OVERLAP_AXES, derivatives_of, loss


def _keep(a: FloatArray, axis: Axes) -> FloatArray:
    """A per-sample value with the reduced axes put back (length 1), to broadcast against the
    tensors; every axis reduced (null) leaves a 0-d value, which broadcasts as it is."""
    if axis is None or np.ndim(a) == 0:
        return a
    return np.expand_dims(a, axis)


def _dice_forward(
    y_true: FloatArray, y_pred: FloatArray, axis: Axes = None
) -> tuple[FloatArray, tuple[FloatArray, FloatArray]]:
    """:func:`dice`'s values and, for its derivatives, ``(I, D)``: the intersection
    ``sum(y_true y_pred)`` and the denominator ``sum(y_true) + sum(y_pred) + eps``."""
    intersection = dot(y_true, y_pred, axis)
    denominator = np.sum(y_true, axis=axis) + np.sum(y_pred, axis=axis) + const(EPSILON, y_pred)
    values = np.asarray(const(1.0, y_pred) - const(2.0, y_pred) * intersection / denominator)
    return values, (intersection, denominator)


@loss(
    class_name="Dice",
    formula="1 - 2 sum(y_true * y_pred) / (sum(y_true) + sum(y_pred) + 1e-7), over axis",
    doc="Soft Dice loss for segmentation masks. Reduces every axis unless axis is given.",
    options=(OVERLAP_AXES,),
)
def dice(y_true: FloatArray, y_pred: FloatArray, axis: Axes = None) -> FloatArray:
    """``1 - 2 sum(y_true y_pred) / (sum(y_true) + sum(y_pred) + eps)`` over ``axis``.

    >>> dice(np.float32([[1, 1, 0, 0]]), np.float32([[1, 0, 1, 0]]))
    array(0.5, dtype=float32)
    """
    return _dice_forward(y_true, y_pred, axis)[0]


@derivatives_of(dice, forward=_dice_forward)
def _dice_derivatives(
    y_true: FloatArray,
    y_pred: FloatArray,
    scale: FloatArray,
    hessian: bool,
    axis: Axes = None,
    saved: tuple[FloatArray, FloatArray] | None = None,
) -> Derivatives:
    """With ``I = sum(y_true y_pred)`` and ``D = sum(y_true) + sum(y_pred) + eps`` over ``axis``:
    gradient ``2 I / D^2 - 2 y_true / D``, Hessian diagonal ``4 y_true / D^2 - 4 I / D^3`` (every
    element of a sample is coupled through ``D``; this is the Hessian's exact diagonal).

    Both are affine in ``y_true`` with per-sample coefficients, and the Hessian is the gradient
    times ``-2 / D``: three passes, from the value's sums."""
    intersection, denominator = _dice_forward(y_true, y_pred, axis)[1] if saved is None else saved
    two = const(2.0, y_pred)
    inv = _keep(const(1.0, y_pred) / denominator, axis)
    k = -two * inv * scale  # -2 scale / D
    grad = np.multiply(y_true, k)
    grad -= k * _keep(intersection, axis) * inv  # + 2 scale I / D^2
    return grad, (np.multiply(grad, -two * inv) if hessian else None)


def _tversky_forward(
    y_true: FloatArray,
    y_pred: FloatArray,
    alpha: float = 0.5,
    beta: float = 0.5,
    axis: Axes = None,
) -> tuple[FloatArray, tuple[FloatArray, FloatArray]]:
    """:func:`tversky`'s values and, for its derivatives, ``(TP, D)`` with
    ``D = TP + alpha FP + beta FN + eps``."""
    one = const(1.0, y_pred)
    tp = dot(y_true, y_pred, axis)
    complement = np.subtract(one, y_true)
    fp = dot(complement, y_pred, axis)
    fn = dot(y_true, np.subtract(one, y_pred, out=complement), axis)
    denominator = tp + fp * const(alpha, y_pred) + fn * const(beta, y_pred) + const(EPSILON, y_pred)
    return np.asarray(one - tp / denominator), (tp, denominator)


@loss(
    class_name="Tversky",
    formula="1 - TP / (TP + alpha FP + beta FN + 1e-7), over axis",
    doc="Tversky loss: Dice with separate weights for false positives (alpha) and false "
    "negatives (beta). Follows the documented formula; Keras 3.15's code swaps alpha "
    "and beta.",
    options=(
        OptionSpec("alpha", "number", 0.5, "Weight of false positives.", minimum=0.0),
        OptionSpec("beta", "number", 0.5, "Weight of false negatives.", minimum=0.0),
        OVERLAP_AXES,
    ),
)
def tversky(
    y_true: FloatArray,
    y_pred: FloatArray,
    alpha: float = 0.5,
    beta: float = 0.5,
    axis: Axes = None,
) -> FloatArray:
    """``1 - TP / (TP + alpha FP + beta FN + eps)`` over ``axis``, with ``TP = sum(y_true y_pred)``,
    ``FP = sum((1 - y_true) y_pred)`` and ``FN = sum(y_true (1 - y_pred))``.

    ``alpha`` weighs false positives and ``beta`` false negatives, as the Keras docstring and
    Salehi et al. (2017) say. Keras 3.15's code swaps the two (its ``fp`` is the false-negative
    sum); lossd follows the documented formula, so ``alpha=a, beta=b`` here equals Keras's
    ``alpha=b, beta=a``. With ``alpha = beta = 0.5`` it is the Dice loss.

    >>> tversky(np.float32([[1, 1, 0, 0]]), np.float32([[1, 0, 1, 1]]), alpha=1.0, beta=0.0)
    array(0.6666666, dtype=float32)
    """
    return _tversky_forward(y_true, y_pred, alpha, beta, axis)[0]


@derivatives_of(tversky, forward=_tversky_forward)
def _tversky_derivatives(
    y_true: FloatArray,
    y_pred: FloatArray,
    scale: FloatArray,
    hessian: bool,
    alpha: float = 0.5,
    beta: float = 0.5,
    axis: Axes = None,
    saved: tuple[FloatArray, FloatArray] | None = None,
) -> Derivatives:
    """With ``D = TP + alpha FP + beta FN + eps`` over ``axis`` and ``e = dD/dy_pred =
    alpha + y_true (1 - alpha - beta)``: gradient ``TP e / D^2 - y_true / D``, Hessian diagonal
    ``2 y_true e / D^2 - 2 TP e^2 / D^3`` (the exact diagonal of a coupled Hessian).

    The gradient is ``-scale z / D`` with ``z = y_true - TP e / D``, affine in ``y_true``; the
    Hessian is the gradient times ``-2 e / D``, affine too: five passes, from the value's sums.
    """
    tp, denominator = (
        _tversky_forward(y_true, y_pred, alpha, beta, axis)[1] if saved is None else saved
    )
    one, two = const(1.0, y_pred), const(2.0, y_pred)
    a, m = const(alpha, y_pred), const(1.0 - alpha - beta, y_pred)  # e = a + m y_true
    inv = _keep(one / denominator, axis)
    ratio = _keep(tp, axis) * inv  # TP / D
    k = -inv * scale
    # z = y_true (1 - m TP / D) - a TP / D, so the gradient -scale z / D is
    grad = np.multiply(y_true, k * (one - m * ratio))
    grad -= k * a * ratio
    if not hessian:
        return grad, None
    slope = np.multiply(y_true, -two * inv * m)
    slope -= two * inv * a  # -2 e / D
    return grad, np.multiply(slope, grad, out=slope)
