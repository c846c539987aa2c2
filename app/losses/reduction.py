"""Sample weights and reductions, once for every loss, as Keras 3's ``reduce_weighted_values``.

The per-sample losses are multiplied by the sample weights (and by the validity mask of
``ignore_class``), then summed. ``count`` is the divisor Keras uses for its mean: the number of
counted per-sample values, or the sum of the weights for ``mean_with_sample_weight``. Because
``mean = sum / count``, partial results merge exactly: ``mean = sum(sums) / sum(counts)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from app.losses.errors import InvalidInputError
from app.losses.numerics import FloatArray

Reduction = Literal[
    "sum_over_batch_size", "mean", "sum", "mean_with_sample_weight", "none", "batchmean"
]
#: Every reduction name of either flavour; each loss takes those of its ``spec.reductions``.
REDUCTIONS: tuple[str, ...] = (
    "sum_over_batch_size",
    "mean",
    "sum",
    "mean_with_sample_weight",
    "none",
    "batchmean",
)


@dataclass(frozen=True)
class Reduced:
    """Weighted per-sample values and their totals, in the computation dtype.

    ``value`` is what Keras returns for the reduction (the mean, the sum, or None for ``none``).
    """

    per_sample: FloatArray
    sum: float
    count: float
    mean: float
    value: float | None
    #: A torch mean over nothing (every target ignored): 0 / 0, NaN as in torch, and counted
    #: in ``non_finite``.
    empty: bool = False

    @property
    def non_finite(self) -> int:
        """How many per-sample values are NaN or infinite (e.g. poisson with y_pred < 0), plus
        one for a torch mean over nothing."""
        finite = np.count_nonzero(np.isfinite(self.per_sample))
        return int(self.per_sample.size - finite) + int(self.empty)


def align_weights(weights: FloatArray, shape: tuple[int, ...]) -> FloatArray:
    """Shape ``sample_weight`` like the per-sample losses.

    Accepted: a scalar, the exact shape, the same shape with a trailing axis of 1 added or
    removed (Keras's rule), or a leading prefix of the shape (one weight per sample of a
    ``(batch, time)`` loss, say), which is repeated along the remaining axes. Anything else is an
    error rather than a silent NumPy broadcast.
    """
    given = list(weights.shape)  # for the message: the shape the client sent, not the squeezed one
    if weights.ndim == len(shape) + 1 and weights.shape[-1] == 1:
        weights = weights[..., 0]
    elif weights.ndim + 1 == len(shape) and shape[-1] == 1:
        weights = weights[..., np.newaxis]
    if weights.shape == shape or weights.ndim == 0:
        return weights
    if weights.ndim < len(shape) and weights.shape == shape[: weights.ndim]:
        return weights.reshape(weights.shape + (1,) * (len(shape) - weights.ndim))
    raise InvalidInputError(
        f"sample_weight has shape {given}; expected the per-sample loss shape "
        f"{list(shape)}, a leading part of it, or a single number",
        field="sample_weight",
    )


def _weights_and_divisor(
    values: FloatArray,
    sample_weight: FloatArray | None,
    mask: np.ndarray[Any, Any] | None,
    reduction: str,
) -> tuple[FloatArray | None, Any]:
    """The weights of each per-sample value (sample weights times the mask; None for all 1) and
    the divisor of the mean, as ``keras.losses.Loss.__call__`` computes them."""
    weights = None
    if sample_weight is not None:
        weights = np.broadcast_to(align_weights(sample_weight, values.shape), values.shape)
    if mask is not None:
        float_mask = mask.astype(values.dtype)
        weights = float_mask if weights is None else weights * float_mask

    if reduction == "mean_with_sample_weight" and weights is not None:
        divisor = np.sum(weights, dtype=values.dtype)
    elif mask is not None:  # ignore_class: Keras rescales so the mean runs over valid samples only
        divisor = np.sum(mask, dtype=values.dtype)
    else:
        divisor = values.dtype.type(values.size)
    return weights, divisor


def reduce(
    values: FloatArray,
    sample_weight: FloatArray | None = None,
    mask: np.ndarray[Any, Any] | None = None,
    reduction: str = "sum_over_batch_size",
) -> Reduced:
    """Weigh ``values`` and reduce them the way ``keras.losses.Loss.__call__`` does."""
    weights, divisor = _weights_and_divisor(values, sample_weight, mask, reduction)
    weighted = values if weights is None else values * weights
    total = np.sum(weighted, dtype=values.dtype)

    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / divisor if divisor != 0 else values.dtype.type(0.0)  # Keras: divide_no_nan
    if reduction == "none":
        value = None
    elif _returns_sum(values, reduction):
        value = float(total)
    else:
        value = float(mean)
    return Reduced(np.asarray(weighted), float(total), float(divisor), float(mean), value)


def _returns_sum(values: FloatArray, reduction: str) -> bool:
    """Whether the reduced value is the weighted sum (``sum``, or a scalar loss, which Keras
    returns unreduced) rather than the mean. (``none`` differentiates as ``sum``.)"""
    return reduction in ("sum", "none") or values.ndim == 0


def derivative_scale(
    values: FloatArray,
    sample_weight: FloatArray | None = None,
    mask: np.ndarray[Any, Any] | None = None,
    reduction: str = "sum_over_batch_size",
) -> FloatArray:
    """``d value / d values``: the derivative of the reduced value with respect to each
    per-sample loss, shaped like ``values`` (in its dtype); for ``none``, of the sum.

    It is the per-sample weight (sample weight times the ``ignore_class`` mask, else 1), divided
    by the mean's divisor for the mean reductions. The divisor (a count, or the sum of the
    weights for ``mean_with_sample_weight``) does not depend on ``y_pred``; a zero divisor makes
    the mean 0 (Keras's ``divide_no_nan``) and so its derivative 0.

    Without weights or mask every per-sample loss weighs the same: the scale is then one number
    (a 0-d array), which broadcasts as well and spares the derivatives a pass over a full-size
    factor (a per-row factor costs a multiply 2x slower than a scalar one on 1000 x 1000).
    """
    weights, divisor = _weights_and_divisor(values, sample_weight, mask, reduction)
    one = values.dtype.type(1.0)
    scale = np.ones((), values.dtype) if weights is None else np.array(weights)
    if not _returns_sum(values, reduction):
        scale *= one / divisor if divisor != 0 else values.dtype.type(0.0)
    return scale


def reduce_torch(values: FloatArray, divisor: Any, reduction: str) -> Reduced:
    """Reduce a torch loss's ``reduction='none'`` output as torch does: ``mean`` (and
    ``batchmean``) is the sum over ``divisor`` (its element count, the batch size, or the
    summed class weights of the counted targets), ``sum`` the sum. ``count`` is that divisor
    whatever the reduction, so ``sum / count`` is the mean and parts merge exactly; a divisor
    of 0 gives NaN (torch's 0 / 0), not Keras's 0."""
    total = np.sum(values, dtype=values.dtype)
    divisor = values.dtype.type(divisor)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / divisor
    value = {"sum": float(total), "none": None}.get(reduction, float(mean))
    empty = bool(divisor == 0)
    return Reduced(np.asarray(values), float(total), float(divisor), float(mean), value, empty)


def torch_derivative_scale(values: FloatArray, divisor: Any, reduction: str) -> FloatArray:
    """``d value / d values`` for a torch loss: ``1 / divisor`` for the means (0 when the
    divisor is 0: no target counted, and torch's gradient is then 0), else 1; one number (a 0-d
    array: torch losses take no per-sample weights), which broadcasts against the output."""
    scale = np.ones((), values.dtype)
    if reduction in ("mean", "batchmean"):
        scale *= values.dtype.type(1.0) / values.dtype.type(divisor) if divisor else 0
    return scale
