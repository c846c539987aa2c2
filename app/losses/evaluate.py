"""The engine's entry points: check the inputs once, align the tensors, run the loss, reduce.

:func:`evaluate` takes anything array-like and checks it; :func:`evaluate_tensors` takes
:class:`~app.losses.tensors.Tensors` already checked (the HTTP layer decodes and checks each
tensor once, as it arrives) and does not scan them again.

Both can also return the derivatives of the reduced value (of the sum for reduction ``none``)
with respect to every element of ``y_pred``: ``gradient=True`` and ``hessian_diagonal=True``.
Each loss's analytic derivatives sit beside it (``spec.derivatives``); this module turns the
sample weights, the ``ignore_class`` mask and the reduction into the per-sample factor they
scale by (``reduction.derivative_scale``) and shapes the answers like ``y_pred`` as sent.
See ``docs/derivatives.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.losses.errors import InvalidInputError, InvalidOptionError
from app.losses.numerics import Derivatives, FloatArray, unbuffered_rows
from app.losses.options import bind_options
from app.losses.reduction import (
    Reduced,
    derivative_scale,
    reduce,
    reduce_torch,
    torch_derivative_scale,
)
from app.losses.registry import LossSpec, resolve
from app.losses.tensors import DTYPES, Tensors


@dataclass(frozen=True)
class Evaluation:
    """One loss evaluated on one pair of tensors."""

    loss: str
    dtype: str
    reduction: str
    result: Reduced
    #: d value / d y_pred (of the sum for reduction ``none``), shaped like y_pred as sent; None
    #: unless asked for.
    gradient: FloatArray | None = None
    #: The diagonal of the Hessian of the same value: d^2 value / d y_pred_i^2, shaped likewise.
    hessian_diagonal: FloatArray | None = None

    @property
    def gradient_non_finite(self) -> int:
        """How many gradient elements are NaN or infinite (0 when none was asked for)."""
        return _non_finite(self.gradient)

    @property
    def hessian_diagonal_non_finite(self) -> int:
        """How many Hessian-diagonal elements are NaN or infinite (0 when none was asked for)."""
        return _non_finite(self.hessian_diagonal)


def _non_finite(a: FloatArray | None) -> int:
    return 0 if a is None else int(a.size - np.count_nonzero(np.isfinite(a)))


def evaluate(
    loss: str | LossSpec,
    y_true: Any,
    y_pred: Any,
    *,
    sample_weight: Any = None,
    options: Mapping[str, Any] | None = None,
    reduction: str | None = None,
    dtype: str = "float32",
    gradient: bool = False,
    hessian_diagonal: bool = False,
) -> Evaluation:
    """Evaluate ``loss`` on ``y_true``/``y_pred`` (nested lists or arrays) as Keras 3 would
    (as PyTorch would, for a torch loss). ``reduction`` None is the loss's default.

    The computation runs in ``dtype`` (float32 unless float64 is asked for). With ``gradient``
    and/or ``hessian_diagonal`` the :class:`Evaluation` also carries those derivatives of the
    reduced value with respect to ``y_pred``. Raises a
    :class:`~app.losses.errors.LossError` subclass for anything that cannot be evaluated.
    """
    spec = loss if isinstance(loss, LossSpec) else resolve(loss)
    if dtype not in DTYPES:
        raise InvalidInputError(
            f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}", field="dtype"
        )
    reduction = check_reduction(spec, reduction)
    kwargs = bind_options(spec.name, spec.options, options)
    tensors = Tensors.of(y_true, y_pred, sample_weight, dtype)
    return _run(spec, tensors, kwargs, reduction, gradient, hessian_diagonal)


def evaluate_tensors(
    loss: str | LossSpec,
    tensors: Tensors,
    *,
    options: Mapping[str, Any] | None = None,
    reduction: str | None = None,
    gradient: bool = False,
    hessian_diagonal: bool = False,
) -> Evaluation:
    """Evaluate ``loss`` on checked ``tensors`` (in their dtype) with a ``reduction`` (None:
    the loss's default) that the loss takes.

    The tensors are not scanned again; options are bound and checked as in :func:`evaluate`,
    derivatives asked for as in :func:`evaluate`.
    """
    spec = loss if isinstance(loss, LossSpec) else resolve(loss)
    reduction = check_reduction(spec, reduction)
    kwargs = bind_options(spec.name, spec.options, options)
    return _run(spec, tensors, kwargs, reduction, gradient, hessian_diagonal)


def check_reduction(spec: LossSpec, reduction: str | None) -> str:
    """``reduction``, or the loss's default for None; an error when the loss does not take it
    (a Keras reduction on a torch loss, ``batchmean`` on any but KLDivLoss, ...)."""
    if reduction is None:
        return spec.default_reduction
    if reduction not in spec.reductions:
        raise InvalidInputError(
            f"reduction must be one of {list(spec.reductions)} for {spec.name} "
            f"({spec.flavour}'s reductions), got {reduction!r}",
            field="reduction",
        )
    return reduction


def _run(
    spec: LossSpec,
    tensors: Tensors,
    kwargs: dict[str, Any],
    reduction: str,
    gradient: bool = False,
    hessian_diagonal: bool = False,
) -> Evaluation:
    """One way through for both flavours: the flavour's forward step (values, reduction and, when
    derivatives are asked for, the per-sample scale), then the loss's derivatives, shaped like
    y_pred as sent (an aligned y_pred differs at most by an axis of length 1)."""
    forward_step = _torch_forward if spec.flavour == "torch" else _keras_forward
    derivatives = gradient or hessian_diagonal
    with np.errstate(all="ignore"):  # non-finite results are counted and reported, not raised
        forward = forward_step(spec, tensors, kwargs, reduction, derivatives)
        if forward.scale is None:
            return Evaluation(spec.name, tensors.dtype, reduction, forward.reduced)
        grad, hess = _derivatives(spec, forward, hessian_diagonal, kwargs)
    sent, dtype = tensors.y_pred.shape, forward.pred.dtype
    return Evaluation(
        spec.name,
        tensors.dtype,
        reduction,
        forward.reduced,
        gradient=_as_sent(grad, sent, dtype) if gradient else None,
        hessian_diagonal=_as_sent(hess, sent, dtype) if hessian_diagonal else None,
    )


@dataclass(frozen=True)
class _Forward:
    """What a flavour's forward step hands on: the aligned tensors, the reduced result and, only
    when derivatives are asked for, the per-sample ``scale`` of d value / d loss (broadcastable
    against ``pred``) and ``saved``, the keywords the derivatives take besides the options."""

    true: FloatArray
    pred: FloatArray
    reduced: Reduced
    scale: FloatArray | None = None
    saved: Mapping[str, Any] = field(default_factory=dict)


def _keras_forward(
    spec: LossSpec, tensors: Tensors, kwargs: dict[str, Any], reduction: str, derivatives: bool
) -> _Forward:
    """A Keras loss: align the tensors (Keras's rules), sample weights and the ``ignore_class``
    mask weigh the per-sample values, Keras's reduction reduces them."""
    true, pred, weights = tensors.y_true, tensors.y_pred, tensors.sample_weight
    true, pred = (_align_sparse if spec.sparse_labels else _align_dense)(true, pred, kwargs)
    _check_axes(kwargs, pred.ndim)
    values, saved = _values(spec, true, pred, kwargs, derivatives)
    mask = spec.mask(true, kwargs.get("ignore_class")) if spec.mask else None
    reduced = reduce(values, weights, mask, reduction)
    if not derivatives:
        return _Forward(true, pred, reduced)
    scale = derivative_scale(values, weights, mask, reduction)
    scale = _expand(scale, _reduced_axes(kwargs, pred.ndim), pred.ndim)
    return _Forward(true, pred, reduced, scale, saved)


def _torch_forward(
    spec: LossSpec, tensors: Tensors, kwargs: dict[str, Any], reduction: str, derivatives: bool
) -> _Forward:
    """A torch loss: its function checks the shapes itself and returns torch's
    ``reduction='none'`` output; torch's divisor makes the mean."""
    if tensors.sample_weight is not None:
        raise InvalidInputError(
            f"{spec.name} takes no sample_weight (a torch loss has none); give per-class or "
            "per-element weights as options.weight where the loss takes it",
            field="sample_weight",
        )
    true, pred = tensors.y_true, tensors.y_pred
    values, saved = _values(spec, true, pred, kwargs, derivatives)
    if reduction == "batchmean":
        divisor: Any = pred.shape[0]
    elif spec.divisor is not None:
        divisor = spec.divisor(true, pred, **kwargs)
    else:
        divisor = values.size
    reduced = reduce_torch(values, divisor, reduction)
    if not derivatives:
        return _Forward(true, pred, reduced)
    scale = torch_derivative_scale(values, divisor, reduction)
    return _Forward(true, pred, reduced, scale, saved)


def _derivatives(
    spec: LossSpec, forward: _Forward, hessian: bool, kwargs: dict[str, Any]
) -> Derivatives:
    """The loss's (gradient, Hessian diagonal or None). Derivatives scale rows by per-sample
    factors, which NumPy's default buffering makes slower (:func:`unbuffered_rows`)."""
    if spec.derivatives is None:  # pragma: no cover - every loss in the catalogue has them
        raise InvalidInputError(f"{spec.name} offers no derivatives", field="loss")
    true, pred = forward.true, forward.pred
    with unbuffered_rows(pred.shape[-1] if pred.ndim else 0):
        return spec.derivatives(true, pred, forward.scale, hessian, **kwargs, **forward.saved)


def _values(
    spec: LossSpec, true: FloatArray, pred: FloatArray, kwargs: dict[str, Any], derivatives: bool
) -> tuple[FloatArray, dict[str, Any]]:
    """The per-sample values (in ``pred``'s dtype) and the keywords the derivatives take besides
    the options: ``saved``, the intermediates of the loss's ``forward``, when derivatives are
    asked for and the loss has one (so they are not computed twice); else none."""
    if derivatives and spec.forward is not None:
        raw, saved = spec.forward(true, pred, **kwargs)
        return np.asarray(raw, dtype=pred.dtype), {"saved": saved}
    return np.asarray(spec.fn(true, pred, **kwargs), dtype=pred.dtype), {}


def _reduced_axes(options: dict[str, Any], rank: int) -> tuple[int, ...]:
    """The axes of the aligned ``y_pred`` a per-sample loss reduces: its ``axis`` option (every
    axis for null, as the overlap losses) or, for losses without one, the last axis."""
    axis = options.get("axis", -1)
    if axis is None:
        return tuple(range(rank))
    return tuple(sorted(a % rank for a in (axis if isinstance(axis, tuple) else (axis,))))


def _expand(scale: FloatArray, axes: tuple[int, ...], rank: int) -> FloatArray:
    """Per-sample ``scale`` with the reduced ``axes`` put back (length 1): broadcastable
    against ``y_pred``. A scalar loss (every axis reduced) keeps a 0-d scale."""
    if scale.ndim == 0 or scale.ndim == rank:
        return scale
    return np.expand_dims(scale, axes)


def _as_sent(a: FloatArray | None, shape: tuple[int, ...], dtype: Any) -> FloatArray:
    """``a`` as a C-contiguous array of ``y_pred``'s dtype and shape as sent."""
    if a is None:  # pragma: no cover - a derivatives function breaking its contract
        raise RuntimeError("the loss's derivatives left out what was asked for")
    return np.ascontiguousarray(a, dtype=dtype).reshape(shape)


def _shape(a: FloatArray) -> list[int]:
    return list(a.shape)


def _align_dense(
    y_true: FloatArray, y_pred: FloatArray, _: dict[str, Any]
) -> tuple[FloatArray, FloatArray]:
    """Same shape, allowing Keras's one rule: a trailing axis of 1 on one side only."""
    if y_true.ndim + 1 == y_pred.ndim and y_pred.shape[-1] == 1:
        y_true = y_true[..., np.newaxis] if y_true.ndim == 1 else y_true
        y_pred = y_pred if y_true.ndim == y_pred.ndim else y_pred[..., 0]
    elif y_pred.ndim + 1 == y_true.ndim and y_true.shape[-1] == 1:
        y_pred = y_pred[..., np.newaxis] if y_pred.ndim == 1 else y_pred
        y_true = y_true if y_true.ndim == y_pred.ndim else y_true[..., 0]
    if y_true.shape != y_pred.shape:
        raise InvalidInputError(
            f"y_pred has shape {_shape(y_pred)} but y_true has shape {_shape(y_true)}; "
            "they must match",
            field="y_pred",
        )
    return y_true, y_pred


def _align_sparse(
    y_true: FloatArray, y_pred: FloatArray, options: dict[str, Any]
) -> tuple[FloatArray, FloatArray]:
    """Integer labels: y_pred's shape without its class axis (or with that axis equal to 1)."""
    axis = _axis_in_range(options["axis"], y_pred.ndim)
    if y_true.ndim == y_pred.ndim and y_true.shape[axis] == 1:
        y_true = np.squeeze(y_true, axis=axis)
    expected = y_pred.shape[:axis] + y_pred.shape[axis + 1 :]
    if y_true.shape != expected:
        raise InvalidInputError(
            f"y_true has shape {_shape(y_true)}; sparse labels need y_pred's shape without its "
            f"class axis, {list(expected)} (y_pred has shape {_shape(y_pred)})",
            field="y_true",
        )
    return y_true, y_pred


def _axis_in_range(axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise InvalidOptionError(
            f"axis {axis} is out of range for a tensor of rank {rank}", field="options.axis"
        )
    return axis % rank


def _check_axes(options: dict[str, Any], rank: int) -> None:
    """Every axis option must exist in the (aligned) tensors and appear once."""
    axis = options.get("axis")
    if axis is None:
        return
    axes = axis if isinstance(axis, tuple) else (axis,)
    canonical = [_axis_in_range(a, rank) for a in axes]
    if len(set(canonical)) != len(canonical):
        raise InvalidOptionError(
            f"axis {list(axes)} names the same axis twice", field="options.axis"
        )
