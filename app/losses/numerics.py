"""Numeric building blocks shared by the losses, written to match Keras 3's NumPy backend.

Every helper keeps the dtype of its input (float32 unless the caller asked for float64), so a
float32 request is computed in float32 throughout, as Keras does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import numpy.typing as npt

#: Keras's fuzz factor, ``keras.backend.epsilon()``.
EPSILON = 1e-7

#: The longest run of elements :func:`dot` hands to one BLAS dot product.
DOT_BLOCK = 1024

#: The shortest row :func:`unbuffered_rows` changes anything for: below it NumPy's buffering of
#: per-row broadcasts pays for itself (measured: even at 300 elements, 1.8x faster at 128).
UNBUFFERED_ROW_MIN = 384

FloatArray = npt.NDArray[np.floating[Any]]
Axes = int | tuple[int, ...] | None  # None: every axis
#: A loss's analytic (gradient, Hessian diagonal or None), shaped like y_pred; see spec.py.
Derivatives = tuple[FloatArray, FloatArray | None]


def const(value: float, like: FloatArray) -> Any:
    """``value`` as a scalar of ``like``'s dtype, so NumPy does not promote float32 to float64."""
    return like.dtype.type(value)


def clip(x: FloatArray, low: float, high: float) -> FloatArray:
    """``min(max(x, low), high)`` in ``x``'s dtype."""
    return np.clip(x, const(low, x), const(high, x))


def at_least(x: FloatArray, low: float, out: FloatArray | None = None) -> FloatArray:
    """``max(x, low)`` in ``x``'s dtype (NaN stays NaN). Computed as ``clip(x, low, inf)``:
    NumPy's ``maximum`` against a scalar is not vectorised, ``clip`` is (0.49 against 0.19 ms
    per 1M float32, measured). One difference: ``clip`` keeps a ``-0.0`` that ``max(-0.0, 0)``
    turns into ``+0.0``, so callers clamp at 0 only values that cannot be ``-0.0``. Floating-point
    arrays only (the bound is converted to ``x``'s dtype)."""
    return np.clip(x, const(low, x), const(math.inf, x), out=out)


def at_most(x: FloatArray, high: float, out: FloatArray | None = None) -> FloatArray:
    """``min(x, high)`` in ``x``'s dtype as ``clip(x, -inf, high)``; see :func:`at_least`."""
    return np.clip(x, const(-math.inf, x), const(high, x), out=out)


def power(x: FloatArray, exponent: float, out: FloatArray | None = None) -> FloatArray:
    """``x ** exponent`` (``np.power``); the common exponent 2 as ``np.square``, which gives the
    same correctly rounded values 2.5x faster."""
    if exponent == 2.0:
        return np.square(x, out=out)
    return np.power(x, const(exponent, x), out=out)


def log1p(x: FloatArray) -> FloatArray:
    """``log(1 + x)`` of a floating-point array, accurate where ``x`` is small, at the speed of
    NumPy's vectorised ``log``; ``x`` is left as it is (see :func:`log1p_in_place`).

    NumPy's float32 ``log1p`` (and ``logaddexp``, built on it) are scalar loops: 10 ms per 1M
    elements here against 2 ms for ``log`` (measured). With ``u = fl(1 + x)``,
    ``log(1 + x) = log(u) + log(1 + d / u)`` where ``d = x - (u - 1)`` is the rounding error of
    ``u``, exact in floating point (``u - 1`` is exact below 2^24 in float32, Sterbenz); the
    second term is ``d / u`` to first order, as ``|d / u|`` is at most half an ulp of 1. Within
    4 ulp of the correctly rounded value in float32 (NumPy's own float32 ``log`` is within 3 on
    this AVX2 machine) and 1.5 ulp in float64, measured over every binade
    (``tests/losses/test_numerics.py``). ``x = -1`` gives ``-inf``, ``inf`` gives ``inf``,
    ``x < -1`` and NaN give NaN, with ``np.log1p``'s warnings; ``-0.0`` gives ``+0.0``.
    """
    if np.ndim(x) == 0:  # one value: the formula's in-place steps need an array
        return np.log1p(x)
    one = const(1.0, x)
    u = np.add(x, one)
    with np.errstate(invalid="ignore"):  # inf - inf for x = inf: handled in _add_rounding
        d = np.subtract(u, one)
        np.subtract(x, d, out=d)
    return _add_rounding(u, d)


def log1p_in_place(x: FloatArray) -> FloatArray:
    """:func:`log1p` of ``x`` in [-1, 1] (or NaN), with ``x``'s own buffer as scratch: one new
    array instead of two, which spares the page faults of a third large buffer where glibc has
    returned memory to the kernel. ``x`` is overwritten; the answer is :func:`log1p`'s, bit for
    bit. Its rounding error is recovered in place as ``x - (u - 1)`` with ``u`` restored as
    ``(u - 1) + 1``, exact while ``u - 1`` is (for ``|x| <= 1``, Sterbenz)."""
    if np.ndim(x) == 0:
        return np.log1p(x)
    one = const(1.0, x)
    u = np.add(x, one)
    u -= one
    x -= u
    u += one
    return _add_rounding(u, x)


def _add_rounding(u: FloatArray, d: FloatArray) -> FloatArray:
    """``log(u) + d / u`` in ``u``'s buffer: :func:`log1p` from ``u = fl(1 + x)`` and its
    rounding error ``d``."""
    with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 for x = -1: handled below
        d /= u
    np.log(u, out=u)  # x = -1 and x < -1 warn here as np.log1p does
    # d is NaN only where u is 0 (x = -1), infinite or NaN; log(u) is then the answer itself.
    if np.isnan(np.sum(d)):
        d[np.isnan(d)] = 0
    u += d
    return u


def log_sigmoid(x: FloatArray) -> FloatArray:
    """``log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|))``, exact for large ``|x|`` where the
    sigmoid saturates (torch's form; Keras's ``-softplus(-x)`` is the same function, and the
    numbers agree within a few ulp)."""
    if np.ndim(x) == 0:
        return log_sigmoid(np.reshape(x, 1))[0]
    # min(x, 0) as clip keeps a -0.0 where x is -0.0; log 2 is subtracted from it there.
    out = at_most(x, 0.0)
    out -= _log1p_exp_minus_abs(x)
    return out


def log_sigmoids(x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``(log sigmoid(x), log sigmoid(-x))``: ``min(x, 0)`` and ``min(-x, 0)`` minus their
    costly common part, ``log1p(exp(-|x|))``, computed once."""
    if np.ndim(x) == 0:
        positive, negative = log_sigmoids(np.reshape(x, 1))
        return positive[0], negative[0]
    tail = _log1p_exp_minus_abs(x)
    positive = at_most(x, 0.0)  # a -0.0 kept (see log_sigmoid) loses to the tail's log 2
    positive -= tail
    negative = np.negative(x)
    at_most(negative, 0.0, out=negative)
    negative -= tail
    return positive, negative


def _log1p_exp_minus_abs(x: FloatArray) -> FloatArray:
    """``log1p(exp(-|x|))`` of an array, in [0, log 2]: ``exp`` never overflows."""
    e = np.abs(x)
    np.negative(e, out=e)
    np.exp(e, out=e)
    return log1p_in_place(e)


def sigmoid(x: FloatArray) -> FloatArray:
    """``1 / (1 + exp(-x))`` exactly as Keras's NumPy backend (and torch) write it."""
    one = const(1.0, x)
    with np.errstate(over="ignore"):  # exp(-x) overflowing to inf gives the right limit, 0
        return one / (one + np.exp(-x))


def softmax(x: FloatArray, axis: int) -> FloatArray:
    """``exp(x - max) / sum(exp(x - max))`` along ``axis``."""
    with unbuffered_rows(_row_length(x, axis)):
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x: FloatArray, axis: int) -> FloatArray:
    """``x - max - log(sum(exp(x - max)))`` along ``axis`` (Keras's NumPy backend)."""
    with unbuffered_rows(_row_length(x, axis)):
        shifted = x - np.max(x, axis=axis, keepdims=True)
        return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _row_length(x: FloatArray, axis: int) -> int:
    """The length of the rows a per-row factor along ``axis`` is broadcast over, when they are
    contiguous (``axis`` is the last): what :func:`unbuffered_rows` takes; 0 otherwise."""
    return x.shape[-1] if x.ndim and axis % x.ndim == x.ndim - 1 else 0


def inverse_norm(square_sum: FloatArray) -> FloatArray:
    """``min(1/sqrt(square_sum), 1/eps)``: the factor Keras's ``ops.normalize`` scales by."""
    with np.errstate(divide="ignore"):  # 1/sqrt(0) = inf, capped at 1/eps just below
        inv = const(1.0, square_sum) / np.sqrt(square_sum)
    return at_most(inv, 1.0 / EPSILON)


@contextmanager
def unbuffered_rows(row_length: int) -> Iterator[None]:
    """Run the ufuncs inside without NumPy's buffering of per-row broadcasts over rows of
    ``row_length`` contiguous elements.

    ``x * k`` with ``x`` of shape (n, m) and a per-row ``k`` of shape (n, 1) cannot run as one
    loop. NumPy's buffered iterator then copies the broadcast ``k`` into a buffer (8192 elements
    by default) to make longer loops, which costs more than it saves once rows are a few hundred
    elements long: at 1000 x 1000 float32 such an op takes 0.26 ms buffered and 0.16 ms row by
    row in place, against 0.11 ms for ``x * x`` (measured). A buffer shorter than two rows makes
    NumPy loop row by row. The buffer size is NumPy's per-thread (per-context) setting, so only
    the caller's thread sees the change; results are the same elementwise, bit for bit.
    """
    size = 16 * math.ceil(1.5 * row_length / 16)  # NumPy wants a multiple of 16
    if row_length < UNBUFFERED_ROW_MIN or size >= np.getbufsize():
        yield
        return
    old = np.setbufsize(size)
    try:
        yield
    finally:
        np.setbufsize(old)


def _einsum_vecdot(a: FloatArray, b: FloatArray) -> FloatArray:
    return np.einsum("...i,...i->...", a, b)


# NumPy >= 2 has a vecdot ufunc backed by BLAS, 1.7x faster than einsum here.
_vecdot: Callable[[FloatArray, FloatArray], FloatArray] = getattr(np, "vecdot", _einsum_vecdot)


def dot(a: FloatArray, b: FloatArray, axis: Axes = -1) -> FloatArray:
    """``sum(a * b, axis)`` for ``a`` and ``b`` of one shape (every axis when ``axis`` is None)
    without the ``a * b`` temporary, 2-3x faster and as accurate: BLAS dot products over runs
    of at most :data:`DOT_BLOCK` elements, whose results ``np.sum`` adds pairwise. One BLAS dot
    over a long axis would accumulate in a few float32 lanes (2e-5 relative error over 4M
    elements, measured).
    """
    if axis is None:
        a, b = a.reshape(-1), b.reshape(-1)
    else:
        axes = sorted(ax % a.ndim for ax in (axis if isinstance(axis, tuple) else (axis,)))
        last = list(range(a.ndim - len(axes), a.ndim))
        a, b = np.moveaxis(a, axes, last), np.moveaxis(b, axes, last)
        if len(axes) > 1:  # one run over the reduced axes (a view when they are trailing)
            kept = a.shape[: a.ndim - len(axes)]
            a, b = a.reshape(*kept, -1), b.reshape(*kept, -1)
    n = a.shape[-1]
    if n <= DOT_BLOCK:
        return _vecdot(a, b)
    whole = n - n % DOT_BLOCK
    runs = (*a.shape[:-1], whole // DOT_BLOCK, DOT_BLOCK)  # splitting an axis never copies
    total = np.sum(_vecdot(a[..., :whole].reshape(runs), b[..., :whole].reshape(runs)), axis=-1)
    if whole < n:
        total = total + _vecdot(a[..., whole:], b[..., whole:])
    return total


def probabilities_from(y_pred: FloatArray, axis: int) -> FloatArray:
    """Scale ``y_pred`` to sum to 1 along ``axis``, then clip to ``[eps, 1 - eps]`` (Keras)."""
    total = np.sum(y_pred, axis=axis, keepdims=True)
    # an all-zero row becomes NaN, as in Keras
    with np.errstate(divide="ignore", invalid="ignore"), unbuffered_rows(_row_length(y_pred, axis)):
        scaled = y_pred / total
    return np.clip(scaled, const(EPSILON, scaled), const(1.0 - EPSILON, scaled), out=scaled)


def per_element(scale: FloatArray, factor: float, like: FloatArray, axis: Axes) -> FloatArray:
    """``scale * factor / n`` in ``like``'s dtype, ``n`` the number of elements a per-sample
    mean over ``axis`` averages (every axis when None): the chain-rule factor of a mean."""
    if axis is None:
        n = like.size
    else:
        axes = axis if isinstance(axis, tuple) else (axis,)
        n = int(np.prod([like.shape[a] for a in axes]))
    return np.multiply(scale, const(factor / n, like), dtype=like.dtype)


def filled(k: FloatArray, like: FloatArray) -> FloatArray:
    """``k`` (broadcastable against ``like``) as a new array of ``like``'s shape and dtype."""
    out = np.empty_like(like)
    out[...] = k
    return out


def zeros_pair(like: FloatArray, both: bool = True) -> tuple[FloatArray, FloatArray | None]:
    """Two zero arrays of ``like``'s shape and dtype (the second None unless ``both``): halves
    of one allocation, zeroed in one call, faster than two (0.14 ms against 0.2 ms for two
    4 MB arrays, measured), for derivatives that are zero but at a few elements."""
    if not both:
        return np.zeros_like(like), None
    pair = np.zeros((2, *like.shape), like.dtype)
    return pair[0], pair[1]


def sum_where(*terms: tuple[npt.NDArray[np.bool_], FloatArray]) -> FloatArray:
    """``sum(np.where(mask, x, 0) for mask, x in terms)``, computed as ``sum(x * mask)``:
    ``np.where`` over a random mask costs 4 ms per million elements here, a product 0.2 ms. The
    two differ only where an ``x`` is not finite under a mask of 0 (``inf * 0`` is NaN where
    ``where`` gives 0): a non-finite sum is computed again with ``where``."""
    (mask, x), *rest = terms
    with np.errstate(invalid="ignore"):
        total = np.multiply(x, mask)
        for mask, x in rest:
            total += np.multiply(x, mask)
    if np.isfinite(total).all():
        return total
    zero = const(0.0, total)
    total = np.where(terms[0][0], terms[0][1], zero)
    for mask, x in terms[1:]:
        total += np.where(mask, x, zero)
    return total


def absolute_value_derivatives(
    difference: FloatArray, factor: FloatArray, hessian: bool
) -> Derivatives:
    """The derivatives of ``factor |difference|`` in ``y_pred``, ``difference = y_pred -
    y_true``: gradient ``factor sign(difference)``, 0 at the kink (``sign(0)``, the subgradient
    autodiff of ``abs`` gives in JAX and torch), Hessian diagonal 0."""
    grad = np.sign(difference)  # not in place: NumPy's in-place sign is 10x slower
    grad *= factor
    return grad, (np.zeros_like(grad) if hessian else None)


def add_at_indices(
    a: FloatArray, labels: npt.NDArray[np.intp], axis: int, value: Any
) -> FloatArray:
    """``a`` (C-contiguous, in place) with ``value`` added at ``a[..., labels, ...]`` along
    ``axis``; ``labels`` and ``value`` keep ``axis`` with length 1.

    Through flat indices, one per label, into ``a`` seen as (before, classes, after): a tenth of
    the time of ``take_along_axis`` and ``put_along_axis``, which build an index per axis. (A
    reshape of any other layout would be a copy, and the additions lost.)
    """
    if not a.flags.c_contiguous:
        raise ValueError("add_at_indices writes into a C-contiguous array only")
    shape = a.shape
    before, after = math.prod(shape[:axis]), math.prod(shape[axis + 1 :])
    flat = labels.reshape(before, after) + np.arange(before)[:, np.newaxis] * shape[axis]
    flat *= after
    flat += np.arange(after)
    a.reshape(-1)[flat] += np.broadcast_to(value, labels.shape).reshape(before, after)
    return a


def scalar_if_uniform(a: Any) -> Any:
    """``a``'s one value (a scalar of its dtype) when every element is the same (NaN never is),
    else ``a``: a per-sample factor the same for every sample multiplies as a scalar, 2x faster
    than a broadcast column on 1000 x 1000 (NumPy's inner loop restarts at every row)."""
    a = np.asarray(a)
    if a.size and bool(np.all(a == a.flat[0])):
        return a.flat[0]
    return a
