"""Margin (maximum-margin classifier) losses. ``y_true`` holds labels in {-1, 1} (one-hot rows for
``categorical_hinge``) and ``y_pred`` raw scores; the loss is zero once the score clears the margin
of 1 on the right side."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from app.losses.numerics import (
    Derivatives,
    FloatArray,
    at_least,
    const,
    dot,
    per_element,
    scalar_if_uniform,
)
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
    one = const(1.0, y_pred)
    return np.mean(at_least(one - labels * y_pred, 0.0), axis=-1)  # 1 - y p is never -0.0


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
    one = const(1.0, y_pred)
    return np.mean(np.square(at_least(one - labels * y_pred, 0.0)), axis=-1)


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
    at_least(m, 0.0, out=m)  # 1 - y p is never -0.0
    k = per_element(scale, 2.0, y_pred, -1)
    grad = np.multiply(labels, m)
    grad *= -k
    if not hessian:
        return grad, None
    hess = np.square(labels)
    hess *= k
    hess *= m > zero  # a multiply, not a masked store (15x faster)
    return grad, hess


def _categorical_hinge_forward(
    y_true: FloatArray, y_pred: FloatArray
) -> tuple[FloatArray, tuple[FloatArray, Any, FloatArray, FloatArray]]:
    """:func:`categorical_hinge`'s values and what its derivatives need: (values, (the
    wrong-class scores ``(1 - y_true) y_pred``, where their maximum ``neg`` is first reached
    (``argmax``, as fast as ``max``), ``neg``, values))."""
    one = const(1.0, y_pred)
    pos = dot(y_true, y_pred, -1)
    others = np.subtract(one, y_true)
    others *= y_pred
    rows = others.reshape(-1, others.shape[-1])  # (a view: others is a new array)
    first = np.argmax(rows, axis=-1)
    neg = rows[np.arange(len(rows)), first].reshape(others.shape[:-1])  # max(), NaN included
    values = np.maximum(neg - pos + one, const(0.0, y_pred))
    return values, (others, first, neg, values)


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
    return _categorical_hinge_forward(y_true, y_pred)[0]


@derivatives_of(categorical_hinge, forward=_categorical_hinge_forward)
def _categorical_hinge_derivatives(
    y_true: FloatArray,
    y_pred: FloatArray,
    scale: FloatArray,
    hessian: bool,
    saved: tuple[FloatArray, Any, FloatArray, FloatArray] | None = None,
) -> Derivatives:
    """Gradient ``(1 - y_true) a / c - y_true`` where the loss is positive, else 0, with ``a``
    the indicator of the wrong-class maximum (``neg``) and ``c`` the number of elements
    attaining it (ties share the derivative equally, as JAX's ``max`` does); Hessian diagonal 0
    (piecewise linear). Where the loss is exactly 0 (the margin) lossd returns 0.

    The ``a`` term touches only the maxima, about one element per sample: the gradient is
    ``-k y_true`` (``k`` the scale where the loss is positive) with ``k (1 - y_true) / c`` added
    at the maxima: where the value's ``argmax`` points (ties: a second maximum equal to it).
    """
    others, first, neg, values = (
        _categorical_hinge_forward(y_true, y_pred)[1] if saved is None else saved
    )
    classes = y_pred.shape[-1]
    k = np.where(np.expand_dims(values, -1) > 0, scale, const(0.0, y_pred))
    k = np.broadcast_to(k, (*y_pred.shape[:-1], 1)).reshape(-1)  # one factor per sample
    grad = np.multiply(y_true, -scalar_if_uniform(k.reshape((*y_pred.shape[:-1], 1))))
    rows, columns = _maxima(others.reshape(-1, classes), first.reshape(-1), neg.reshape(-1))
    count = np.bincount(rows, minlength=k.size).astype(y_pred.dtype)
    flat_true = y_true.reshape(-1, classes)
    share = k[rows] / count[rows]
    share *= const(1.0, y_pred) - flat_true[rows, columns]
    grad.reshape(-1, classes)[rows, columns] += share  # (no position twice)
    return grad, np.zeros_like(y_pred) if hessian else None


def _maxima(
    scores: FloatArray, first: npt.NDArray[np.intp], top: FloatArray
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """(rows, columns) of every element of ``scores`` (2-D, overwritten then restored) equal to
    its row's maximum ``top``, first reached at ``first``: rows whose second maximum equals the
    first (ties) are compared in full. One pass where ``scores == top`` and ``nonzero`` take
    three."""
    rows = np.arange(len(scores))
    scores[rows, first] = -np.inf
    tied = np.flatnonzero(np.max(scores, axis=-1) == top)
    scores[rows, first] = top
    if tied.size == 0:
        return rows, first
    tie_rows, tie_columns = np.nonzero(scores[tied] == top[tied, np.newaxis])
    single = np.ones(len(scores), dtype=bool)
    single[tied] = False
    return (
        np.concatenate([rows[single], tied[tie_rows]]),
        np.concatenate([first[single], tie_columns]),
    )
