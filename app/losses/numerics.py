"""Numeric building blocks shared by the losses, written to match Keras 3's NumPy backend.

Every helper keeps the dtype of its input (float32 unless the caller asked for float64), so a
float32 request is computed in float32 throughout, as Keras does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

#: Keras's fuzz factor, ``keras.backend.epsilon()``.
EPSILON = 1e-7

FloatArray = npt.NDArray[np.floating[Any]]


def const(value: float, like: FloatArray) -> Any:
    """``value`` as a scalar of ``like``'s dtype, so NumPy does not promote float32 to float64."""
    return like.dtype.type(value)


def clip(x: FloatArray, low: float, high: float) -> FloatArray:
    """``min(max(x, low), high)`` in ``x``'s dtype."""
    return np.clip(x, const(low, x), const(high, x))


def softplus(x: FloatArray) -> FloatArray:
    """``log(1 + exp(x))`` without overflow (Keras: ``logaddexp(x, 0)``)."""
    return np.logaddexp(x, const(0.0, x))


def log_sigmoid(x: FloatArray) -> FloatArray:
    """``log(sigmoid(x)) = -softplus(-x)``, exact for large ``|x|`` where the sigmoid saturates."""
    return -softplus(-x)


def sigmoid(x: FloatArray) -> FloatArray:
    """``1 / (1 + exp(-x))`` exactly as Keras's NumPy backend writes it."""
    one = const(1.0, x)
    with np.errstate(over="ignore"):  # exp(-x) overflowing to inf gives the right limit, 0
        return one / (one + np.exp(-x))


def softmax(x: FloatArray, axis: int) -> FloatArray:
    """``exp(x - max) / sum(exp(x - max))`` along ``axis``."""
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x: FloatArray, axis: int) -> FloatArray:
    """``x - max - log(sum(exp(x - max)))`` along ``axis`` (Keras's NumPy backend)."""
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def l2_normalize(x: FloatArray, axis: int | tuple[int, ...]) -> FloatArray:
    """``x * min(1/sqrt(sum(x^2)), 1/eps)`` along ``axis`` (Keras's ``ops.normalize``)."""
    square_sum = np.sum(np.square(x), axis=axis, keepdims=True)
    with np.errstate(divide="ignore"):  # 1/sqrt(0) = inf, capped at 1/eps just below
        inv_norm = const(1.0, x) / np.sqrt(square_sum)
    return x * np.minimum(inv_norm, const(1.0 / EPSILON, x))


def probabilities_from(y_pred: FloatArray, axis: int) -> FloatArray:
    """Scale ``y_pred`` to sum to 1 along ``axis``, then clip to ``[eps, 1 - eps]`` (Keras)."""
    with np.errstate(divide="ignore", invalid="ignore"):  # an all-zero row becomes NaN, as in Keras
        scaled = y_pred / np.sum(y_pred, axis=axis, keepdims=True)
    return clip(scaled, EPSILON, 1.0 - EPSILON)
