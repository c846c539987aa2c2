"""Overlap (segmentation) losses: one minus a soft set-similarity between ``y_true`` (masks in
[0, 1]) and ``y_pred`` (probabilities). Like Keras, they reduce *every* axis by default, giving one
value for the whole batch; pass ``axis`` (an int or a list of ints) for per-sample values."""

from __future__ import annotations

import numpy as np

from app.losses.numerics import EPSILON, Axes, FloatArray, const, dot
from app.losses.options import OptionSpec
from app.losses.spec import OVERLAP_AXES, loss


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
    intersection = dot(y_true, y_pred, axis)
    denominator = np.sum(y_true, axis=axis) + np.sum(y_pred, axis=axis) + const(EPSILON, y_pred)
    return np.asarray(const(1.0, y_pred) - const(2.0, y_pred) * intersection / denominator)


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
    one = const(1.0, y_pred)
    tp = dot(y_true, y_pred, axis)
    complement = np.subtract(one, y_true)
    fp = dot(complement, y_pred, axis)
    fn = dot(y_true, np.subtract(one, y_pred, out=complement), axis)
    index = tp / (
        tp + fp * const(alpha, y_pred) + fn * const(beta, y_pred) + const(EPSILON, y_pred)
    )
    return np.asarray(one - index)
