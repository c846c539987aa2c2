"""Margin (maximum-margin classifier) losses. ``y_true`` holds labels in {-1, 1} (one-hot rows for
``categorical_hinge``) and ``y_pred`` raw scores; the loss is zero once the score clears the margin
of 1 on the right side."""

from __future__ import annotations

import numpy as np

from app.losses.numerics import Derivatives, FloatArray, const, dot, per_element
from app.losses.spec import CONVERT_BINARY_LABELS, derivatives_of, loss


def _hinge_labels(y_true: FloatArray, convert_binary_labels: bool) -> FloatArray:
    """Keras 3 maps labels to ``2 y - 1`` when *every* label is 0 or 1; by default lossd doesn't."""
    if convert_binary_labels and bool(np.all((y_true == 0) | (y_true == 1))):
        return const(2.0, y_true) * y_true - const(1.0, y_true)
    return y_true


@loss(
    class_name="Hinge",
    formula="mean(max(1 - y_true * y_pred, 0), axis=-1)",
    doc="Hinge (SVM) loss for labels in {-1, 1}. y_true is used as given unless "
    "convert_binary_labels is set (Keras 3 maps {0, 1} labels to {-1, 1}).",
    options=(CONVERT_BINARY_LABELS,),
)
def hinge(
    y_true: FloatArray, y_pred: FloatArray, convert_binary_labels: bool = False
) -> FloatArray:
    """``mean(max(1 - y_true * y_pred, 0), axis=-1)``.

    ``y_true`` is used as given (the hinge formula; multi-backend Keras <= 2.3). With
    ``convert_binary_labels=True``, {0, 1} labels first become {-1, 1}, as in Keras 3.

    >>> hinge(np.float32([[0, 1, 1]]), np.float32([[1, 1, 0]]))
    array([0.6666667], dtype=float32)
    """
    labels = _hinge_labels(y_true, convert_binary_labels)
    one, zero = const(1.0, y_pred), const(0.0, y_pred)
    return np.mean(np.maximum(one - labels * y_pred, zero), axis=-1)


@derivatives_of(hinge)
def _hinge_derivatives(
    y_true: FloatArray,
    y_pred: FloatArray,
    scale: FloatArray,
    hessian: bool,
    convert_binary_labels: bool = False,
) -> Derivatives:
    """Gradient ``-y / n`` where the margin is violated (``1 - y y_pred > 0``), else 0; Hessian
    diagonal 0 (piecewise linear). ``y``: the labels as the loss uses them. At the margin
    (``y y_pred = 1``) lossd returns 0, the flat side's derivative."""
    labels = _hinge_labels(y_true, convert_binary_labels)
    violated = np.multiply(labels, y_pred) < const(1.0, y_pred)
    grad = np.multiply(violated, labels, dtype=y_pred.dtype)
    grad *= -per_element(scale, 1.0, y_pred, -1)
    return grad, np.zeros_like(y_pred) if hessian else None


@loss(
    class_name="SquaredHinge",
    formula="mean(max(1 - y_true * y_pred, 0)^2, axis=-1)",
    doc="Squared hinge for labels in {-1, 1}. y_true is used as given unless "
    "convert_binary_labels is set (Keras 3 maps {0, 1} labels to {-1, 1}).",
    options=(CONVERT_BINARY_LABELS,),
)
def squared_hinge(
    y_true: FloatArray, y_pred: FloatArray, convert_binary_labels: bool = False
) -> FloatArray:
    """``mean(max(1 - y_true * y_pred, 0)^2, axis=-1)``; labels as in :func:`hinge`.

    >>> squared_hinge(np.float32([[0, 0, 1]]), np.float32([[1, 0, 1]]))
    array([0.6666667], dtype=float32)
    """
    labels = _hinge_labels(y_true, convert_binary_labels)
    one, zero = const(1.0, y_pred), const(0.0, y_pred)
    return np.mean(np.square(np.maximum(one - labels * y_pred, zero)), axis=-1)


@derivatives_of(squared_hinge)
def _squared_hinge_derivatives(
    y_true: FloatArray,
    y_pred: FloatArray,
    scale: FloatArray,
    hessian: bool,
    convert_binary_labels: bool = False,
) -> Derivatives:
    """With ``m = max(1 - y y_pred, 0)``: gradient ``-2 y m / n``, Hessian diagonal
    ``2 y^2 / n`` where ``m > 0``, else 0. At the margin (``m = 0``) the gradient is 0 from both
    sides and lossd returns the flat side's Hessian, 0."""
    labels = _hinge_labels(y_true, convert_binary_labels)
    one, zero = const(1.0, y_pred), const(0.0, y_pred)
    m = np.multiply(labels, y_pred)
    np.subtract(one, m, out=m)
    np.maximum(m, zero, out=m)
    k = per_element(scale, 2.0, y_pred, -1)
    grad = np.multiply(labels, m)
    grad *= -k
    if not hessian:
        return grad, None
    hess = np.square(labels)
    hess *= k
    hess *= m > zero  # a multiply, not a masked store (15x faster)
    return grad, hess


@loss(
    class_name="CategoricalHinge",
    formula="max(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)",
    doc="Multi-class hinge: the best wrong-class score must trail the true-class score by 1.",
)
def categorical_hinge(y_true: FloatArray, y_pred: FloatArray) -> FloatArray:
    """``max(neg - pos + 1, 0)`` over the last (class) axis, with ``pos = sum(y_true * y_pred)``
    and ``neg = max((1 - y_true) * y_pred)``.

    >>> categorical_hinge(np.float32([[0, 1, 1]]), np.float32([[1, 1, 0]]))
    array([1.], dtype=float32)
    """
    one = const(1.0, y_pred)
    pos = dot(y_true, y_pred, -1)
    others = np.subtract(one, y_true)
    others *= y_pred
    neg = np.max(others, axis=-1)
    return np.maximum(neg - pos + one, const(0.0, y_pred))


@derivatives_of(categorical_hinge)
def _categorical_hinge_derivatives(
    y_true: FloatArray, y_pred: FloatArray, scale: FloatArray, hessian: bool
) -> Derivatives:
    """Gradient ``(1 - y_true) a / c - y_true`` where the loss is positive, else 0, with ``a``
    the indicator of the wrong-class maximum (``neg``) and ``c`` the number of elements
    attaining it (ties share the derivative equally, as JAX's ``max`` does); Hessian diagonal 0
    (piecewise linear). Where the loss is exactly 0 (the margin) lossd returns 0."""
    one = const(1.0, y_pred)
    complement = np.subtract(one, y_true)
    grad = np.multiply(complement, y_pred)  # (the wrong-class scores, then the gradient)
    neg = np.max(grad, axis=-1, keepdims=True)
    active = (neg - dot(y_true, y_pred, -1)[..., np.newaxis] + one) > const(0.0, y_pred)
    grad[...] = grad == neg  # the indicator of the maximum, in place (no new 4 MB buffer)
    grad /= np.sum(grad, axis=-1, keepdims=True)  # ties share
    grad *= complement
    grad -= y_true
    grad *= np.where(active, scale, const(0.0, y_pred))
    return grad, np.zeros_like(y_pred) if hessian else None
