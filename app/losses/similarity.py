"""Similarity losses."""

from __future__ import annotations

import numpy as np

from app.losses.numerics import FloatArray, const, dot, inverse_norm
from app.losses.options import OptionSpec
from app.losses.spec import loss


@loss(
    class_name="CosineSimilarity",
    aliases=("cosine_proximity", "cosine"),
    formula="-sum(l2_normalize(y_true) * l2_normalize(y_pred), axis)",
    doc="Negative cosine similarity: -1 when aligned, 0 when orthogonal.",
    options=(OptionSpec("axis", "integer", -1, "The axis along which the cosine is taken."),),
)
def cosine_similarity(y_true: FloatArray, y_pred: FloatArray, axis: int = -1) -> FloatArray:
    """``-sum(l2_normalize(y_true) * l2_normalize(y_pred), axis)``: -1 for parallel vectors,
    0 for orthogonal ones, 1 for opposite ones (dimensionless). A zero vector gives 0.

    ``l2_normalize(x) = x * min(1/|x|, 1/eps)`` (Keras's ``ops.normalize``). The sum is computed
    as ``-<y_true, y_pred> * inv_true * inv_pred`` from three dot products, without normalising
    either tensor; a squared norm past the dtype's range (1/|x| = 0) gives 0, as in Keras.

    >>> cosine_similarity(np.float32([[1, 0], [0, 1]]), np.float32([[2, 0], [1, 0]]))
    array([-1., -0.], dtype=float32)
    """
    inv_true = inverse_norm(dot(y_true, y_true, axis))
    inv_pred = inverse_norm(dot(y_pred, y_pred, axis))
    with np.errstate(invalid="ignore"):  # an overflowed dot product times a zero inverse norm
        cosine = dot(y_true, y_pred, axis) * inv_true * inv_pred
    return -np.where((inv_true == 0) | (inv_pred == 0), const(0.0, y_pred), cosine)
