"""Similarity losses."""

from __future__ import annotations

import numpy as np

from app.losses.numerics import EPSILON, Derivatives, FloatArray, const, dot, inverse_norm
from app.losses.options import OptionSpec
from app.losses.spec import derivatives_of, loss


def _cosine_similarity_forward(
    y_true: FloatArray, y_pred: FloatArray, axis: int = -1
) -> tuple[FloatArray, tuple[FloatArray, FloatArray, FloatArray, FloatArray]]:
    """:func:`cosine_similarity`'s values and, for its derivatives, the per-sample
    ``(1/|y_true|, |y_pred|^2, 1/|y_pred|, <y_true, y_pred>)`` (inverse norms capped at 1/eps)."""
    inv_true = inverse_norm(dot(y_true, y_true, axis))
    square_sum = dot(y_pred, y_pred, axis)
    inv_pred = inverse_norm(square_sum)
    cross = dot(y_true, y_pred, axis)
    with np.errstate(invalid="ignore"):  # an overflowed dot product times a zero inverse norm
        cosine = cross * inv_true * inv_pred
    values = -np.where((inv_true == 0) | (inv_pred == 0), const(0.0, y_pred), cosine)
    return values, (inv_true, square_sum, inv_pred, cross)


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
    return _cosine_similarity_forward(y_true, y_pred, axis)[0]


@derivatives_of(cosine_similarity, forward=_cosine_similarity_forward)
def _cosine_similarity_derivatives(
    y_true: FloatArray,
    y_pred: FloatArray,
    scale: FloatArray,
    hessian: bool,
    axis: int = -1,
    saved: tuple[FloatArray, FloatArray, FloatArray, FloatArray] | None = None,
) -> Derivatives:
    """With ``u = l2_normalize(y_true)``, ``N = |y_pred|`` and ``s = <u, y_pred>`` along ``axis``
    (the loss is ``-s / N``): gradient ``-u / N + s y_pred / N^3``, Hessian diagonal
    ``2 u y_pred / N^3 + s / N^3 - 3 s y_pred^2 / N^5`` (not a diagonal Hessian; its exact
    diagonal). Where ``N < eps``, ``l2_normalize`` divides by ``eps`` instead: the loss is
    linear there, gradient ``-u / eps``, Hessian 0 (``N = eps`` exactly takes the first
    branch). A zero ``y_true`` (or an overflowed norm) gives 0, as the loss does.

    Computed as ``g = a y_true + b y_pred`` and ``h = b - c y_pred (2 g + b y_pred)`` with
    per-sample ``a = -scale / (|y_true| N)``, ``b = scale s / N^3`` and ``c = 1 / N^2`` (``b``
    and ``c`` 0 where the loss is linear), from the value's three dot products: the second
    form is the first's ``2 u / N^3 - 3 s y_pred / N^5 = -(2 g + b y_pred) / N^2``.
    """
    inv_true, square_sum, inv_pred, cross = (
        _cosine_similarity_forward(y_true, y_pred, axis)[1] if saved is None else saved
    )
    keep = np.expand_dims if y_pred.ndim > 1 else _scalar_keep
    zero = const(0.0, y_pred)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        # where -s/N is not linear (N >= eps: 1/N not capped) nor 0 (an overflowed norm)
        curved = ~(square_sum < const(EPSILON * EPSILON, y_pred)) & (inv_pred > zero)
        a = keep(-inv_true * inv_pred, axis) * scale
        c = keep(np.where(curved, np.square(inv_pred), zero), axis)
        b = keep(np.where(curved, cross * inv_true, zero) * inv_pred, axis) * scale * c
        # Eight passes over the elements, in place where they can be (a pass that writes a new
        # array costs 1.5x one that does not): the fewest two-operand ufuncs reach.
        grad = np.multiply(y_true, a)
        bp = np.multiply(y_pred, b)  # b y_pred
        grad += bp
        hess = None
        if hessian:
            bp += grad
            bp += grad  # 2 g + b y_pred
            bp *= y_pred
            bp *= -c
            hess = np.add(bp, b, out=bp)
    return grad, hess


def _scalar_keep(a: FloatArray, axis: int) -> FloatArray:
    """A 1-D ``y_pred``'s per-sample value (0-d) as it is: it broadcasts already."""
    return a
