"""Similarity losses."""

from __future__ import annotations

import numpy as np

from app.losses.numerics import FloatArray, l2_normalize
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

    >>> cosine_similarity(np.float32([[1, 0], [0, 1]]), np.float32([[2, 0], [1, 0]]))
    array([-1., -0.], dtype=float32)
    """
    return -np.sum(l2_normalize(y_true, axis) * l2_normalize(y_pred, axis), axis=axis)
