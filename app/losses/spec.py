"""A loss's spec, declared on its function as Keras's ``keras_export`` sits on its losses.

    @loss(class_name="MeanSquaredError", aliases=("mse", "MSE"), formula="...", doc="...")
    def mean_squared_error(y_true, y_pred): ...

The decorator records a :class:`LossSpec` (the family is the module's name) and returns the
function unchanged; ``registry.py`` lists the functions in catalogue order and resolves names.
Options several losses take are declared once here.

A loss's analytic derivatives are declared right below it, in the same module:

    @derivatives_of(mean_squared_error)
    def _mean_squared_error_derivatives(y_true, y_pred, scale, hessian): ...

(see :data:`DerivativesFn` for the contract; ``docs/derivatives.md`` for the formulas).

Where the derivatives need what the value computed on its way (a maximum, a tensor already
multiplied out), the loss can be written as a ``forward`` function returning the values and
those intermediates; the loss calls it and drops them, and ``@derivatives_of(loss, forward=...)``
has the engine call it instead when derivatives are asked for, handing the intermediates on as
``saved=`` rather than computing them twice (see :data:`ForwardFn`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from app.losses.options import OptionSpec

LossFn = Callable[..., Any]
F = TypeVar("F", bound=LossFn)

#: ``fn(y_true, y_pred, scale, hessian, **options) -> (gradient, hessian_diagonal or None)``.
#:
#: ``y_true`` and ``y_pred`` are aligned as for the loss itself; ``scale`` (an array broadcastable
#: against ``y_pred``, in its dtype) is the derivative of the reduced value with respect to each
#: per-sample loss, already expanded along the reduced axes (weights, mask and ``1 / count``); a
#: 0-d array when every per-sample loss weighs the same (no sample weights, no mask).
#: The function returns ``sum_s scale_s * d per_sample_s / d y_pred`` and, when ``hessian`` is
#: true, the diagonal of its second derivative, both shaped like ``y_pred`` and in its dtype.
DerivativesFn = Callable[..., tuple[Any, Any]]
D = TypeVar("D", bound=DerivativesFn)

#: ``forward(y_true, y_pred, **options) -> (values, saved)``: the loss's values (what the loss
#: function returns) and the intermediates its derivatives take as the keyword ``saved``. The
#: derivatives own ``saved`` and may overwrite its arrays.
ForwardFn = Callable[..., tuple[Any, Any]]

#: The derivatives a loss may offer, in catalogue order.
DERIVATIVES: tuple[str, ...] = ("gradient", "hessian_diagonal")

#: The reductions of each flavour, its default first: Keras 3's, and PyTorch's (``batchmean``
#: only for the losses that list it).
KERAS_REDUCTIONS: tuple[str, ...] = (
    "sum_over_batch_size",
    "mean",
    "sum",
    "mean_with_sample_weight",
    "none",
)
TORCH_REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none")

#: ``divisor(y_true, y_pred, **options) -> number``: the divisor of a torch loss's ``mean``
#: (its element count when a loss declares none).
DivisorFn = Callable[..., Any]

FROM_LOGITS = OptionSpec(
    "from_logits",
    "boolean",
    False,
    "Treat y_pred as logits (unnormalised scores) instead of probabilities.",
)
LABEL_SMOOTHING = OptionSpec(
    "label_smoothing",
    "number",
    0.0,
    "Move this share of each target's mass evenly over the classes.",
    minimum=0.0,
    maximum=1.0,
)
CLASS_AXIS = OptionSpec("axis", "integer", -1, "The class axis, reduced to give per-sample losses.")
MEAN_AXIS = OptionSpec("axis", "integer", -1, "The axis averaged to give per-sample losses.")
GAMMA = OptionSpec(
    "gamma",
    "number",
    2.0,
    "Focusing exponent: higher values down-weight easy examples more.",
    minimum=0.0,
)
FOCAL_ALPHA = OptionSpec(
    "alpha", "number", 0.25, "Weight of the positive class.", minimum=0.0, maximum=1.0
)
CONVERT_BINARY_LABELS = OptionSpec(
    "convert_binary_labels",
    "boolean",
    False,
    "Keras 3 behaviour (tf.keras 2.x and keras 2.4+ too): when every label is 0 or 1, map them "
    "to -1 and 1 first. The default (false) uses y_true as given, as the hinge formula does "
    "and the original multi-backend Keras (<= 2.3) did.",
)
OVERLAP_AXES = OptionSpec(
    "axis",
    "axes",
    None,
    "Axes to reduce: null (Keras's default) gives one value for the whole batch; e.g. [1, 2] "
    "gives one value per sample.",
)


@dataclass(frozen=True)
class LossSpec:
    """Everything lossd knows about one loss."""

    name: str
    fn: LossFn
    family: str
    class_name: str
    formula: str
    doc: str
    aliases: tuple[str, ...] = ()
    options: tuple[OptionSpec, ...] = ()
    sparse_labels: bool = False
    mask: Callable[..., Any] | None = field(default=None, repr=False)
    derivatives: DerivativesFn | None = field(default=None, repr=False)
    #: The values and the intermediates ``derivatives`` takes as ``saved``, or None when they
    #: take none (see :data:`ForwardFn`).
    forward: ForwardFn | None = field(default=None, repr=False)
    #: ``keras`` or ``torch``: whose conventions (names, reductions, options) the loss follows.
    flavour: str = "keras"
    #: The reductions the loss takes, its default first.
    reductions: tuple[str, ...] = KERAS_REDUCTIONS
    divisor: DivisorFn | None = field(default=None, repr=False)

    @property
    def default_reduction(self) -> str:
        """The reduction used when none is asked for (Keras: sum_over_batch_size; torch: mean)."""
        return self.reductions[0]

    @property
    def offers(self) -> tuple[str, ...]:
        """The derivatives lossd computes for this loss (``gradient``, ``hessian_diagonal``)."""
        return DERIVATIVES if self.derivatives is not None else ()

    def describe(self) -> dict[str, Any]:
        """The catalogue entry: every public field, options as dicts (the API's ``LossInfo``
        and ``lossd losses --json``)."""
        return {
            "name": self.name,
            "aliases": list(self.aliases),
            "class_name": self.class_name,
            "family": self.family,
            "formula": self.formula,
            "doc": self.doc,
            "options": [dataclasses.asdict(o) for o in self.options],
            "sparse_labels": self.sparse_labels,
            "derivatives": list(self.offers),
            "flavour": self.flavour,
        }

    @property
    def names(self) -> tuple[str, ...]:
        """Every spelling that resolves to this loss (case aside), canonical first. (A torch
        loss lists its class and functional forms among its aliases; R's ``loss_`` is Keras's.)"""
        if self.flavour != "keras":
            return (self.name, *self.aliases)
        base = (self.name, *self.aliases, self.class_name)
        return base + tuple(f"loss_{n}" for n in base)


_DECLARED: dict[LossFn, LossSpec] = {}


def loss(
    *,
    class_name: str,
    formula: str,
    doc: str,
    aliases: tuple[str, ...] = (),
    options: tuple[OptionSpec, ...] = (),
    sparse_labels: bool = False,
    mask: Callable[..., Any] | None = None,
    name: str | None = None,
    family: str | None = None,
    flavour: str = "keras",
    reductions: tuple[str, ...] | None = None,
    divisor: DivisorFn | None = None,
) -> Callable[[F], F]:
    """Declare the decorated function a loss: its canonical name is the function's, its family
    the module's (``app.losses.regression`` -> ``regression``). ``options`` are its keyword
    arguments beyond ``y_true, y_pred``, in catalogue order; ``sparse_labels`` means ``y_true``
    holds class indices; ``mask(y_true, ignore_class)`` marks the samples the mean counts.
    A torch loss gives its ``name`` and ``family``, ``flavour="torch"``, its ``reductions``
    (default: mean, sum, none) and the ``divisor`` of its mean when that is not its element
    count; its function returns torch's ``reduction='none'`` output."""

    def declare(fn: F) -> F:
        if fn in _DECLARED:
            raise ValueError(f"{fn.__qualname__} is already declared a loss")
        _DECLARED[fn] = LossSpec(
            name=name or fn.__name__,
            fn=fn,
            family=family or fn.__module__.rpartition(".")[2],
            class_name=class_name,
            formula=formula,
            doc=doc,
            aliases=aliases,
            options=options,
            sparse_labels=sparse_labels,
            mask=mask,
            flavour=flavour,
            reductions=reductions or (TORCH_REDUCTIONS if flavour == "torch" else KERAS_REDUCTIONS),
            divisor=divisor,
        )
        return fn

    return declare


def derivatives_of(loss_fn: LossFn, *, forward: ForwardFn | None = None) -> Callable[[D], D]:
    """Declare the decorated function the analytic derivatives of ``loss_fn`` (declared with
    :func:`loss` just above it); see :data:`DerivativesFn` for its contract. With ``forward``
    (which ``loss_fn`` calls for its values), the derivatives also take the keyword ``saved``:
    the intermediates ``forward`` returns beside the values (:data:`ForwardFn`)."""

    def declare(fn: D) -> D:
        spec = spec_of(loss_fn)
        if spec.derivatives is not None:
            raise ValueError(f"{spec.name} already has derivatives")
        _DECLARED[loss_fn] = dataclasses.replace(spec, derivatives=fn, forward=forward)
        return fn

    return declare


def spec_of(fn: LossFn) -> LossSpec:
    """The spec declared on ``fn`` with :func:`loss`."""
    try:
        return _DECLARED[fn]
    except KeyError:
        raise LookupError(f"{fn!r} is not declared with @loss") from None


def declared() -> tuple[LossSpec, ...]:
    """Every spec declared so far, in declaration (import) order."""
    return tuple(_DECLARED.values())
