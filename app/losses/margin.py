"""Margin (maximum-margin classifier) losses. ``y_true`` holds labels in {-1, 1} (one-hot rows for
``categorical_hinge``) and ``y_pred`` raw scores; the loss is zero once the score clears the margin
of 1 on the right side."""

from __future__ import annotations

import numpy as np

from app.losses.numerics import FloatArray, const, dot
from app.losses.spec import CONVERT_BINARY_LABELS, loss


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
