"""Similarity losses."""

from __future__ import annotations

import numpy as np

from app.losses.numerics import FloatArray, l2_normalize


def cosine_similarity(y_true: FloatArray, y_pred: FloatArray, axis: int = -1) -> FloatArray:
    """``-sum(l2_normalize(y_true) * l2_normalize(y_pred), axis)``: -1 for parallel vectors,
    0 for orthogonal ones, 1 for opposite ones (dimensionless). A zero vector gives 0.

    >>> cosine_similarity(np.float32([[1, 0], [0, 1]]), np.float32([[2, 0], [1, 0]]))
    array([-1., -0.], dtype=float32)
    """
    return -np.sum(l2_normalize(y_true, axis) * l2_normalize(y_pred, axis), axis=axis)
