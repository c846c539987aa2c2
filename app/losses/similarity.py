"""Similarity losses."""

from __future__ import annotations

import numpy as np

from app.losses.numerics import EPSILON, Derivatives, FloatArray, const, dot, inverse_norm
from app.losses.options import OptionSpec
from app.losses.spec import derivatives_of, loss


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


@derivatives_of(cosine_similarity)
def _cosine_similarity_derivatives(
    y_true: FloatArray, y_pred: FloatArray, scale: FloatArray, hessian: bool, axis: int = -1
) -> Derivatives:
    """With ``u = l2_normalize(y_true)``, ``N = |y_pred|`` and ``s = <u, y_pred>`` along ``axis``
    (the loss is ``-s / N``): gradient ``-u / N + s y_pred / N^3``, Hessian diagonal
    ``2 u y_pred / N^3 + s / N^3 - 3 s y_pred^2 / N^5`` (not a diagonal Hessian; its exact
    diagonal). Where ``N < eps``, ``l2_normalize`` divides by ``eps`` instead: the loss is
    linear there, gradient ``-u / eps``, Hessian 0 (``N = eps`` exactly takes the first
    branch). A zero ``y_true`` (or an overflowed norm) gives 0, as the loss does.
    """
    keep = np.expand_dims if y_pred.ndim > 1 else _scalar_keep
    inv_true = keep(inverse_norm(dot(y_true, y_true, axis)), axis)
    square_sum = keep(dot(y_pred, y_pred, axis), axis)
    inv_pred = inverse_norm(square_sum)
    capped = square_sum < const(EPSILON * EPSILON, y_pred)  # 1/N capped at 1/eps
    zero = const(0.0, y_pred)
    # Three full-size buffers (u, grad, hess), every other factor per sample: on a 1000 x 1000
    # tensor each further temporary costs more in page faults than its arithmetic.
    u = np.multiply(y_true, inv_true * scale)  # scale folded in: the loss is linear in u
    s = keep(dot(u, y_pred, axis), axis)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        curved = ~capped & (inv_pred > zero)  # where -s/N is not linear (or 0) in y_pred
        inv3 = np.where(curved, inv_pred**3, zero)
        grad = np.multiply(y_pred, s * inv3)  # s y_pred / N^3
        hess = None
        if hessian:
            # x (2 u / N^3 - 3 (s x / N^3) / N^2) + s / N^3, as ((-1.5 N) G + u) (2 / N^3) x + ...
            hess = np.multiply(grad, np.where(curved, const(-1.5, y_pred) / inv_pred, zero))
            hess += u
            hess *= const(2.0, y_pred) * inv3
            hess *= y_pred
            hess += s * inv3
        u *= -inv_pred
        grad += u  # - u / N + s y_pred / N^3
    return grad, hess


def _scalar_keep(a: FloatArray, axis: int) -> FloatArray:
    """A 1-D ``y_pred``'s per-sample value (0-d) as it is: it broadcasts already."""
    return a
