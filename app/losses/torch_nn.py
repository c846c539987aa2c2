"""PyTorch's losses (``torch.nn``), with PyTorch's conventions and numbers, in NumPy.

``y_pred`` is torch's ``input`` and ``y_true`` its ``target``. Each function returns torch's
``reduction='none'`` output; ``evaluate.py`` reduces it with torch's divisor (``reduce_torch``):
the element count of that output for ``mean``, the batch size for ``batchmean``, and for
class-index cross-entropy and NLL the number (with ``weight``: the summed class weights) of the
targets not ignored. The extra tensors (``weight``, ``pos_weight``, ``var``) are options.

Each loss's derivatives sit below it and follow torch's own backward formulas (what
``torch.autograd`` gives), not always the derivative of the forward formula: BCELoss's gradient
divides by ``max(x (1 - x), 1e-12)`` rather than seeing its -100 clamp. Here ``scale`` is shaped
like the loss's ``none`` output (a class axis is put back where a loss reduces one).
See ``docs/torch.md``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from app.losses.errors import InvalidInputError, InvalidOptionError
from app.losses.numerics import (
    Derivatives,
    FloatArray,
    absolute_value_derivatives,
    add_at_indices,
    at_least,
    at_most,
    const,
    filled,
    log1p,
    log1p_in_place,
    log_sigmoid,
    log_sigmoids,
    scalar_if_uniform,
    sigmoid,
    sum_where,
    zeros_pair,
)
from app.losses.options import OptionSpec
from app.losses.spec import derivatives_of, loss

FAMILY = "torch"
MEAN_SUM_NONE = ("mean", "sum", "none")

WEIGHT_CLASSES = OptionSpec(
    "weight",
    "tensor",
    None,
    "A weight for each class: a list of C numbers (torch's weight), or null for 1.",
)
WEIGHT_ELEMENTS = OptionSpec(
    "weight",
    "tensor",
    None,
    "A rescaling weight broadcast against the input (a number or nested lists), or null.",
)
IGNORE_INDEX = OptionSpec(
    "ignore_index",
    "integer",
    -100,
    "A target class index that is ignored: it adds nothing and is not counted by the mean.",
)


def _names(class_name: str, function: str) -> dict[str, Any]:
    """The ``@loss`` arguments every torch loss shares: its canonical name ``torch.nn.<Class>``
    and the other three spellings."""
    return {
        "name": f"torch.nn.{class_name}",
        "aliases": (
            f"torch.nn.functional.{function}",
            f"torch.{class_name}",
            f"torch.{function}",
        ),
        "class_name": class_name,
        "family": FAMILY,
        "flavour": "torch",
    }


# ---------------------------------------------------------------------------------------------
# Shapes, labels and tensors given as options.


def _same_shape(y_true: FloatArray, y_pred: FloatArray) -> None:
    if y_true.shape != y_pred.shape:
        raise InvalidInputError(
            f"y_true (target) has shape {list(y_true.shape)} but y_pred (input) has shape "
            f"{list(y_pred.shape)}; they must match",
            field="y_true",
        )


def _option_tensor(
    value: Any, name: str, like: FloatArray, shape: tuple[int, ...] | None = None
) -> FloatArray:
    """An option tensor in ``like``'s dtype, broadcast to ``shape`` (``like``'s by default)."""
    target = like.shape if shape is None else shape
    array = np.asarray(value).astype(like.dtype)
    try:
        return np.broadcast_to(array, target)
    except ValueError:
        raise InvalidOptionError(
            f"{name} has shape {list(array.shape)}, which does not broadcast to {list(target)}",
            field=f"options.{name}",
        ) from None


def _class_weight(weight: Any, classes: int, like: FloatArray) -> FloatArray:
    """``weight`` as C class weights in ``like``'s dtype (ones for None)."""
    if weight is None:
        return np.ones(classes, like.dtype)
    array = np.asarray(weight)
    if array.shape != (classes,):
        raise InvalidOptionError(
            f"weight must hold one number for each of the {classes} classes, got shape "
            f"{list(array.shape)}",
            field="options.weight",
        )
    return array.astype(like.dtype)


def _class_input(y_pred: FloatArray) -> int:
    if y_pred.ndim < 2:
        raise InvalidInputError(
            f"y_pred (input) must have shape (N, C) or (N, C, d1, ...), got {list(y_pred.shape)}",
            field="y_pred",
        )
    return int(y_pred.shape[1])


def _labels(y_true: FloatArray, y_pred: FloatArray, ignore_index: int | None) -> Any:
    """Class indices ``y_true`` of shape ``(N, d1, ...)`` for ``y_pred`` ``(N, C, d1, ...)``,
    as int64; each in ``[0, C)`` or ``ignore_index``."""
    classes = _class_input(y_pred)
    expected = y_pred.shape[:1] + y_pred.shape[2:]
    if y_true.shape != expected:
        raise InvalidInputError(
            f"y_true (target) has shape {list(y_true.shape)}; class indices need "
            f"{list(expected)} for y_pred of shape {list(y_pred.shape)} (or y_pred's shape, "
            "for class probabilities where the loss takes them)",
            field="y_true",
        )
    if not np.array_equal(y_true, np.round(y_true)):
        where = tuple(int(i) for i in np.argwhere(y_true != np.round(y_true))[0])
        raise InvalidInputError(
            f"class indices must be whole numbers, got {float(y_true[where])!r}",
            field="y_true",
            index=where,
        )
    labels = y_true.astype(np.int64)
    bad = (labels < 0) | (labels >= classes)
    if ignore_index is not None:
        bad &= labels != ignore_index
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InvalidInputError(
            f"class index {int(labels[where])} is out of range for {classes} classes "
            f"(ignore_index is {ignore_index})",
            field="y_true",
            index=where,
        )
    return labels


def _gather(values: FloatArray, labels: Any) -> FloatArray:
    """``values[n, labels[n, ...], ...]``: the class axis 1 picked by ``labels``."""
    return np.take_along_axis(values, labels[:, np.newaxis], axis=1)[:, 0]


def _picked(labels: Any, ignore_index: int) -> tuple[Any, Any]:
    """(labels with ignored ones replaced by class 0, the mask of those not ignored)."""
    kept = labels != ignore_index
    return np.where(kept, labels, 0), kept


def _expand_classes(scale: FloatArray, like: FloatArray, axis: int = 1) -> FloatArray:
    """``scale`` (of the ``none`` output) with the reduced class ``axis`` put back; a 0-d
    scale broadcasts as it is."""
    return scale if scale.ndim in (0, like.ndim) else np.expand_dims(scale, axis)


# ---------------------------------------------------------------------------------------------
# Regression.


@loss(
    **_names("MSELoss", "mse_loss"),
    formula="(input - target)^2",
    doc="Squared error per element; mean over every element by default (torch's mean).",
)
def mse_loss(y_true: FloatArray, y_pred: FloatArray) -> FloatArray:
    """``(input - target)^2`` element by element."""
    _same_shape(y_true, y_pred)
    return np.square(y_pred - y_true)


@derivatives_of(mse_loss)
def _mse_loss_derivatives(
    y_true: FloatArray, y_pred: FloatArray, scale: FloatArray, hessian: bool
) -> Derivatives:
    """Gradient ``2 (x - t)``, Hessian ``2``."""
    two = const(2.0, y_pred)
    return two * scale * (y_pred - y_true), (filled(two * scale, y_pred) if hessian else None)


def _l1_forward(y_true: FloatArray, y_pred: FloatArray) -> tuple[FloatArray, FloatArray]:
    """:func:`l1_loss`'s output and, for its derivatives, the difference ``input - target``."""
    _same_shape(y_true, y_pred)
    difference = np.subtract(y_pred, y_true)
    return np.abs(difference), difference


@loss(
    **_names("L1Loss", "l1_loss"),
    formula="|input - target|",
    doc="Absolute error per element; mean over every element by default.",
)
def l1_loss(y_true: FloatArray, y_pred: FloatArray) -> FloatArray:
    """``|input - target|`` element by element."""
    return _l1_forward(y_true, y_pred)[0]


@derivatives_of(l1_loss, forward=_l1_forward)
def _l1_loss_derivatives(
    y_true: FloatArray,
    y_pred: FloatArray,
    scale: FloatArray,
    hessian: bool,
    saved: FloatArray | None = None,
) -> Derivatives:
    """Gradient ``sign(x - t)`` (0 at the kink, torch's ``sgn``), Hessian 0; from the value's
    difference."""
    difference = _l1_forward(y_true, y_pred)[1] if saved is None else saved
    return absolute_value_derivatives(difference, scale, hessian)


BETA = OptionSpec(
    "beta",
    "number",
    1.0,
    "Where the loss turns from quadratic to linear; 0 gives L1Loss.",
    minimum=0.0,
)


@loss(
    **_names("SmoothL1Loss", "smooth_l1_loss"),
    formula="z < beta ? 0.5 z^2 / beta : z - 0.5 beta, z = |input - target|",
    doc="Quadratic below beta, linear above; 0.5 z^2 / beta is HuberLoss / beta.",
    options=(BETA,),
)
def smooth_l1_loss(y_true: FloatArray, y_pred: FloatArray, beta: float = 1.0) -> FloatArray:
    """``0.5 z^2 / beta`` where ``z = |input - target| < beta``, else ``z - 0.5 beta``; L1 for
    beta 0.

    Both sides in torch's order of operations (so where ``0.5 z^2`` overflows, lossd answers
    torch's inf too), picked by :func:`sum_where` (``np.where`` over a random mask costs more
    than the rest of the loss)."""
    _same_shape(y_true, y_pred)
    z = np.abs(y_pred - y_true)
    if beta == 0:
        return z
    b = const(beta, z)
    inside = z < b
    with np.errstate(over="ignore", invalid="ignore"):
        quadratic = np.multiply(z, const(0.5, z))
        quadratic *= z
        quadratic /= b
        linear = np.subtract(z, const(0.5 * beta, z))
    return sum_where((inside, quadratic), (~inside, linear))


@derivatives_of(smooth_l1_loss)
def _smooth_l1_loss_derivatives(
    y_true: FloatArray, y_pred: FloatArray, scale: FloatArray, hessian: bool, beta: float = 1.0
) -> Derivatives:
    """torch's backward: ``d / beta`` where ``|d| < beta`` (``d = x - t``), else ``sign(d)``
    (``sign`` alone for beta 0); Hessian ``[|d| < beta] / beta`` (0 for beta 0). The gradient
    is ``clip(d / beta, -1, 1)``, the same numbers (``d / beta`` rounds to +-1 only at or past
    beta, or just below it, where torch's quotient rounds to +-1 as well)."""
    d = y_pred - y_true
    if beta == 0:
        return absolute_value_derivatives(d, scale, hessian)
    b = const(beta, d)
    with np.errstate(over="ignore"):
        grad = np.divide(d, b)
    np.clip(grad, const(-1.0, d), const(1.0, d), out=grad)
    grad *= scale
    if not hessian:
        return grad, None
    hess = np.abs(d, out=d)
    hess = np.multiply(hess < b, scale, dtype=d.dtype)  # 0, not inf * 0, outside
    hess /= b
    return grad, hess


DELTA = OptionSpec(
    "delta",
    "number",
    1.0,
    "Where the loss turns from quadratic to linear.",
    minimum=0.0,
    exclusive_minimum=True,
)


@loss(
    **_names("HuberLoss", "huber_loss"),
    formula="z < delta ? 0.5 z^2 : delta (z - 0.5 delta), z = |input - target|",
    doc="Quadratic below delta, linear above (Keras's huber, per element).",
    options=(DELTA,),
)
def huber_loss(y_true: FloatArray, y_pred: FloatArray, delta: float = 1.0) -> FloatArray:
    """``0.5 z^2`` where ``z = |input - target| < delta``, else ``delta (z - 0.5 delta)``."""
    _same_shape(y_true, y_pred)
    z = np.abs(y_pred - y_true)
    # c (z - c / 2) with c = min(z, delta) is both sides at once (equal at z = delta), without
    # np.where, which costs more over a random mask than the rest of the loss.
    c = at_most(z, delta)  # z >= +0
    values = np.multiply(c, const(-0.5, c))
    values += z
    values *= c
    return values


@derivatives_of(huber_loss)
def _huber_loss_derivatives(
    y_true: FloatArray, y_pred: FloatArray, scale: FloatArray, hessian: bool, delta: float = 1.0
) -> Derivatives:
    """torch's backward: ``d`` where ``|d| <= delta`` (``d = x - t``), else ``delta sign(d)``;
    Hessian ``[|d| < delta]``."""
    d = y_pred - y_true
    dl = const(delta, d)
    grad = scale * np.clip(d, -dl, dl)
    return grad, (scale * (np.abs(d) < dl).astype(d.dtype) if hessian else None)


# ---------------------------------------------------------------------------------------------
# Binary classification.


@loss(
    **_names("BCELoss", "binary_cross_entropy"),
    formula="-weight (target max(log(input), -100) + (1 - target) max(log(1 - input), -100))",
    doc="Binary cross-entropy of probabilities in [0, 1]; each log is clamped at -100.",
    options=(WEIGHT_ELEMENTS,),
)
def binary_cross_entropy(y_true: FloatArray, y_pred: FloatArray, weight: Any = None) -> FloatArray:
    """``-w (t max(log x, -100) + (1 - t) max(log(1 - x), -100))``; ``x`` must be in [0, 1]."""
    _same_shape(y_true, y_pred)
    outside = (y_pred < 0) | (y_pred > 1)
    if outside.any():
        where = tuple(int(i) for i in np.argwhere(outside)[0])
        raise InvalidInputError(
            f"BCELoss takes probabilities: every y_pred (input) must be in [0, 1], got "
            f"{float(y_pred[where])!r}",
            field="y_pred",
            index=where,
        )
    one = const(1.0, y_pred)
    log_x = at_least(np.log(y_pred), -100.0)
    log_1mx = at_least(log1p_in_place(-y_pred), -100.0)  # -y_pred in [-1, 0]
    out = (y_true - one) * log_1mx - y_true * log_x
    return out if weight is None else out * _option_tensor(weight, "weight", y_pred)


#: torch's ``EPSILON`` in BCELoss's backward: 1e-12 as a float32 constant.
_BCE_EPSILON = float(np.float32(1e-12))


@derivatives_of(binary_cross_entropy)
def _binary_cross_entropy_derivatives(
    y_true: FloatArray, y_pred: FloatArray, scale: FloatArray, hessian: bool, weight: Any = None
) -> Derivatives:
    """torch's backward: ``w (x - t) / max(x (1 - x), 1e-12)`` (its 1e-12 a float32
    constant); its double backward:
    ``w (x^2 - 2 x t + t) / ((x + 1e-12)^2 (1 - x + 1e-12)^2)``."""
    one = const(1.0, y_pred)
    k = scale if weight is None else scale * _option_tensor(weight, "weight", y_pred)
    grad = k * (y_pred - y_true) / at_least((one - y_pred) * y_pred, _BCE_EPSILON)
    if not hessian:
        return grad, None
    x, t, eps = y_pred, y_true, const(1e-12, y_pred)  # here a double constant
    num = x * x - const(2.0, x) * x * t + t
    hess = k * num / (np.square(x + eps) * np.square(one - x + eps))
    return grad, hess


POS_WEIGHT = OptionSpec(
    "pos_weight",
    "tensor",
    None,
    "A weight of the positive term, broadcast against the input (e.g. one per class), or null.",
)


@loss(
    **_names("BCEWithLogitsLoss", "binary_cross_entropy_with_logits"),
    formula="weight ((1 - target) input - (1 + (pos_weight - 1) target) log(sigmoid(input)))",
    doc="Binary cross-entropy of logits, computed stably; pos_weight weighs the positives.",
    options=(WEIGHT_ELEMENTS, POS_WEIGHT),
)
def binary_cross_entropy_with_logits(
    y_true: FloatArray, y_pred: FloatArray, weight: Any = None, pos_weight: Any = None
) -> FloatArray:
    """``w ((1 - t) x - (1 + (p - 1) t) log sigmoid(x))``, as torch writes it."""
    _same_shape(y_true, y_pred)
    one = const(1.0, y_pred)
    log_sig = log_sigmoid(y_pred)  # torch's form, min(x, 0) - log1p(exp(-|x|))
    if pos_weight is not None:
        p = _option_tensor(pos_weight, "pos_weight", y_pred)
        log_sig = log_sig * ((p - one) * y_true + one)
    out = (one - y_true) * y_pred - log_sig
    return out if weight is None else out * _option_tensor(weight, "weight", y_pred)


@derivatives_of(binary_cross_entropy_with_logits)
def _binary_cross_entropy_with_logits_derivatives(
    y_true: FloatArray,
    y_pred: FloatArray,
    scale: FloatArray,
    hessian: bool,
    weight: Any = None,
    pos_weight: Any = None,
) -> Derivatives:
    """Gradient ``w ((p t + 1 - t) sigmoid(x) - p t)``, Hessian diagonal
    ``w (p t + 1 - t) sigmoid(x) (1 - sigmoid(x))`` (``p`` = 1 without pos_weight)."""
    one = const(1.0, y_pred)
    k = scale if weight is None else scale * _option_tensor(weight, "weight", y_pred)
    s = sigmoid(y_pred)
    if pos_weight is None:
        grad, a = s - y_true, np.ones_like(y_pred)
    else:
        pt = _option_tensor(pos_weight, "pos_weight", y_pred) * y_true
        a = pt + one - y_true
        grad = a * s - pt
    return k * grad, (k * a * s * (one - s) if hessian else None)


# ---------------------------------------------------------------------------------------------
# Multi-class classification.


LABEL_SMOOTHING = OptionSpec(
    "label_smoothing",
    "number",
    0.0,
    "Mix this share of a uniform distribution over the C classes into the target.",
    minimum=0.0,
    maximum=1.0,
)


def _cross_entropy_divisor(
    y_true: FloatArray,
    y_pred: FloatArray,
    weight: Any = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
) -> Any:
    """Class indices: the number of targets not ignored, or their summed class weights with
    ``weight``; class probabilities: the element count of the ``none`` output."""
    if y_true.shape == y_pred.shape:
        return y_pred.size // y_pred.shape[1]
    return _nll_divisor(y_true, y_pred, weight, ignore_index)


def _nll_divisor(
    y_true: FloatArray, y_pred: FloatArray, weight: Any = None, ignore_index: int = -100
) -> Any:
    labels = _labels(y_true, y_pred, ignore_index)
    picked, kept = _picked(labels, ignore_index)
    if weight is None:
        return int(np.count_nonzero(kept))
    w = _class_weight(weight, y_pred.shape[1], y_pred)
    return np.sum(np.where(kept, w[picked], const(0.0, y_pred)), dtype=y_pred.dtype)


def _class_shape(like: FloatArray) -> tuple[int, ...]:
    """The shape a C-vector of class weights broadcasts in against ``(N, C, d1, ...)``."""
    return (1, like.shape[1]) + (1,) * (like.ndim - 2)


def _cross_entropy_forward(
    y_true: FloatArray,
    y_pred: FloatArray,
    weight: Any = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
) -> tuple[FloatArray, tuple[FloatArray, FloatArray, Any, Any, FloatArray]]:
    """:func:`cross_entropy`'s output and, for its derivatives, (``exp(input - max)`` and its
    sum over the class axis, both from the log-softmax, the class indices with ignored ones
    made 0 and the mask of those kept (None for class probabilities), the class weights)."""
    classes = _class_input(y_pred)
    w = _class_weight(weight, classes, y_pred)
    # log_softmax (numerics.log_softmax's operations), keeping its exponentials for the softmax
    logp = np.subtract(y_pred, np.max(y_pred, axis=1, keepdims=True))
    exps = np.exp(logp)
    total = np.sum(exps, axis=1, keepdims=True)
    logp -= np.log(total)
    ls = const(label_smoothing, y_pred)
    if y_true.shape == y_pred.shape:  # class probabilities
        t = y_true
        if label_smoothing > 0:
            t = t * (const(1.0, t) - ls) + ls / const(classes, t)
        terms = logp * t
        if weight is not None:
            terms = terms * w.reshape(_class_shape(y_pred))
        return -np.sum(terms, axis=1), (exps, total, None, None, w)
    labels = _labels(y_true, y_pred, ignore_index)
    picked, kept = _picked(labels, ignore_index)
    saved = (exps, total, picked, kept, w)
    zero = const(0.0, y_pred)
    nll = np.where(kept, -w[picked] * _gather(logp, picked), zero)
    if label_smoothing == 0:
        return nll, saved
    weighted = logp if weight is None else logp * w.reshape(_class_shape(y_pred))
    smooth = np.where(kept, -np.sum(weighted, axis=1), zero)
    return (const(1.0, ls) - ls) * nll + smooth * (ls / const(classes, ls)), saved


@loss(
    **_names("CrossEntropyLoss", "cross_entropy"),
    formula="-sum_c weight_c target_c log_softmax(input)_c over the class axis 1 (target: "
    "class indices, or class probabilities of input's shape)",
    doc="Cross-entropy of logits (N, C, d1, ...). Class-index targets honour ignore_index and "
    "average over the counted targets' weights; probability targets average over N*d1*...",
    options=(WEIGHT_CLASSES, IGNORE_INDEX, LABEL_SMOOTHING),
    divisor=_cross_entropy_divisor,
)
def cross_entropy(
    y_true: FloatArray,
    y_pred: FloatArray,
    weight: Any = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
) -> FloatArray:
    """torch's ``cross_entropy``: ``(1 - ls) nll + ls / C * sum_c -w_c log p_c`` for class
    indices (0 where ignored); ``-sum_c w_c t'_c log p_c`` with ``t' = (1 - ls) t + ls / C``
    for class probabilities."""
    return _cross_entropy_forward(y_true, y_pred, weight, ignore_index, label_smoothing)[0]


@derivatives_of(cross_entropy, forward=_cross_entropy_forward)
def _cross_entropy_derivatives(
    y_true: FloatArray,
    y_pred: FloatArray,
    scale: FloatArray,
    hessian: bool,
    weight: Any = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    saved: tuple[FloatArray, FloatArray, Any, Any, FloatArray] | None = None,
) -> Derivatives:
    """With ``p = softmax(input)`` over axis 1 and the target's effective class weights
    ``q_c`` (``w_c t'_c``; for an index ``(1 - ls) w_t [c = t] + ls w_c / C``, 0 where
    ignored) and ``S = sum_c q_c``: gradient ``S p_j - q_j``, Hessian diagonal
    ``S p_j (1 - p_j)``.

    ``p`` from the value's exponentials; for class indices, ``S = (1 - ls) w_t + ls sum(w) / C``
    per target and the one-hot part of ``q`` is added at the targets only."""
    exps, total, picked, kept, w = (
        _cross_entropy_forward(y_true, y_pred, weight, ignore_index, label_smoothing)[1]
        if saved is None
        else saved
    )
    classes = y_pred.shape[1]
    one, ls = const(1.0, y_pred), const(label_smoothing, y_pred)
    k = _expand_classes(scale, y_pred)
    # softmax, in the exponentials' buffer unless it is not C-contiguous (add_at_indices)
    out = exps if exps.flags.c_contiguous else np.empty(exps.shape, exps.dtype)
    p = np.multiply(exps, one / total, out=out)
    w_classes = w.reshape(_class_shape(y_pred))
    if picked is None:  # class probabilities
        t = y_true
        if label_smoothing > 0:
            t = t * (one - ls) + ls / const(classes, t)
        q = w_classes * t
        ks = k * np.sum(q, axis=1, keepdims=True)
        grad = np.multiply(p, ks)
        grad -= k * q
    else:
        mass = (one - ls) * w[picked]  # the one-hot part of q, at the target
        total_q = mass + ls * np.sum(w) / const(classes, ls)  # S
        kept_q = kept.astype(y_pred.dtype)
        ks = scalar_if_uniform(k * (total_q * kept_q)[:, np.newaxis])
        grad = np.multiply(p, ks)
        if label_smoothing > 0:
            grad -= k * (ls / const(classes, ls)) * w_classes * kept_q[:, np.newaxis]
        at_target = -(k * (mass * kept_q)[:, np.newaxis])
        add_at_indices(grad, picked[:, np.newaxis], 1, at_target)
    if not hessian:
        return grad, None
    hess = np.subtract(one, p)
    hess *= p
    hess *= ks
    return grad, hess


def _nll_forward(
    y_true: FloatArray, y_pred: FloatArray, weight: Any = None, ignore_index: int = -100
) -> tuple[FloatArray, tuple[Any, Any, FloatArray]]:
    """:func:`nll_loss`'s output and, for its derivatives, (the labels with ignored ones made
    0, the mask of those kept, the class weights): the labels are checked once."""
    w = _class_weight(weight, _class_input(y_pred), y_pred)
    picked, kept = _picked(_labels(y_true, y_pred, ignore_index), ignore_index)
    values = np.where(kept, -w[picked] * _gather(y_pred, picked), const(0.0, y_pred))
    return values, (picked, kept, w)


@loss(
    **_names("NLLLoss", "nll_loss"),
    formula="-weight_target input[target] (input: log-probabilities over the class axis 1)",
    doc="Negative log-likelihood of log-probabilities (N, C, d1, ...) and class indices; "
    "ignore_index'ed targets add nothing and are not counted.",
    options=(WEIGHT_CLASSES, IGNORE_INDEX),
    sparse_labels=True,
    divisor=_nll_divisor,
)
def nll_loss(
    y_true: FloatArray, y_pred: FloatArray, weight: Any = None, ignore_index: int = -100
) -> FloatArray:
    """``-w[t] input[n, t, ...]``, 0 where ``t == ignore_index``."""
    return _nll_forward(y_true, y_pred, weight, ignore_index)[0]


@derivatives_of(nll_loss, forward=_nll_forward)
def _nll_loss_derivatives(
    y_true: FloatArray,
    y_pred: FloatArray,
    scale: FloatArray,
    hessian: bool,
    weight: Any = None,
    ignore_index: int = -100,
    saved: tuple[Any, Any, FloatArray] | None = None,
) -> Derivatives:
    """Gradient ``-w[t]`` at the target's class (0 elsewhere and where ignored); Hessian 0.

    Zeros with one element per target written in: the value reads no more than that, so the
    zeros are most of the cost (one buffer for both, one memset)."""
    picked, kept, w = (
        _nll_forward(y_true, y_pred, weight, ignore_index)[1] if saved is None else saved
    )
    per = np.where(kept, -w[picked], const(0.0, y_pred)) * scale
    grad, hess = zeros_pair(y_pred, hessian)
    add_at_indices(grad, picked[:, np.newaxis], 1, per[:, np.newaxis])  # (onto zeros: a store)
    return grad, hess


# ---------------------------------------------------------------------------------------------
# Divergences and likelihoods.


LOG_TARGET = OptionSpec(
    "log_target", "boolean", False, "The target is given as log-probabilities too."
)


@loss(
    **_names("KLDivLoss", "kl_div"),
    formula="target (log(target) - input), or exp(target) (target - input) with log_target "
    "(input: log-probabilities)",
    doc="Kullback-Leibler divergence per element; 'batchmean' divides the sum by N, the "
    "mathematical KL, where 'mean' divides by every element.",
    options=(LOG_TARGET,),
    reductions=("mean", "sum", "none", "batchmean"),
)
def kl_div(y_true: FloatArray, y_pred: FloatArray, log_target: bool = False) -> FloatArray:
    """``xlogy(t, t) - t x``, or ``exp(t) (t - x)`` with ``log_target``."""
    _same_shape(y_true, y_pred)
    if log_target:
        return np.exp(y_true) * (y_true - y_pred)
    # torch's xlogy(t, t): t log t, and 0 where t is 0. log(t + (t == 0)) is log 1 = 0 there
    # and log t elsewhere (t + 0 is exact): no np.where, which costs 1.5-5 ms per million
    # elements over a mask of zeros (sparse targets), against 0.3 ms for the compare and add.
    xlogy = np.add(y_true, y_true == 0, dtype=y_true.dtype)
    np.log(xlogy, out=xlogy)
    xlogy *= y_true
    return xlogy - y_true * y_pred


@derivatives_of(kl_div)
def _kl_div_derivatives(
    y_true: FloatArray, y_pred: FloatArray, scale: FloatArray, hessian: bool, log_target: bool
) -> Derivatives:
    """Gradient ``-t`` (``-exp(t)`` with log_target); Hessian 0."""
    grad = -(np.exp(y_true) if log_target else y_true) * scale
    return grad, (np.zeros_like(y_pred) if hessian else None)


LOG_INPUT = OptionSpec(
    "log_input", "boolean", True, "The input is the log of the rate (else the rate itself)."
)
FULL_POISSON = OptionSpec(
    "full",
    "boolean",
    False,
    "Add Stirling's approximation of log(target!), for targets > 1.",
)
EPS_POISSON = OptionSpec(
    "eps",
    "number",
    1e-8,
    "Added to the input before its log when log_input is false.",
    minimum=0.0,
)


@loss(
    **_names("PoissonNLLLoss", "poisson_nll_loss"),
    formula="exp(input) - target input (log_input), or input - target log(input + eps)",
    doc="Poisson negative log-likelihood per element, with the Stirling term when full.",
    options=(LOG_INPUT, FULL_POISSON, EPS_POISSON),
)
def poisson_nll_loss(
    y_true: FloatArray,
    y_pred: FloatArray,
    log_input: bool = True,
    full: bool = False,
    eps: float = 1e-8,
) -> FloatArray:
    """torch's ``poisson_nll_loss`` element by element."""
    _same_shape(y_true, y_pred)
    t = y_true
    if log_input:
        out = np.exp(y_pred) - t * y_pred
    else:
        out = y_pred - t * np.log(y_pred + const(eps, y_pred))
    if full:
        stirling = t * np.log(t) - t + const(0.5, t) * np.log(const(2 * np.pi, t) * t)
        out = out + np.where(t <= 1, const(0.0, t), stirling)
    return out


@derivatives_of(poisson_nll_loss)
def _poisson_nll_loss_derivatives(
    y_true: FloatArray,
    y_pred: FloatArray,
    scale: FloatArray,
    hessian: bool,
    log_input: bool = True,
    full: bool = False,
    eps: float = 1e-8,
) -> Derivatives:
    """log_input: gradient ``exp(x) - t``, Hessian ``exp(x)``; else ``1 - t / (x + eps)`` and
    ``t / (x + eps)^2``."""
    if log_input:
        e = np.exp(y_pred)
        return scale * (e - y_true), (scale * e if hessian else None)
    u = y_pred + const(eps, y_pred)
    grad = scale * (const(1.0, u) - y_true / u)
    return grad, (scale * y_true / (u * u) if hessian else None)


VAR = OptionSpec(
    "var",
    "tensor",
    1.0,
    "The variance(s): one per element of the input, one per sample (input's shape without "
    "its last axis, or with one axis of length 1), or one number.",
    minimum=0.0,
)
FULL_GAUSSIAN = OptionSpec("full", "boolean", False, "Add the constant 0.5 log(2 pi).")
EPS_GAUSSIAN = OptionSpec(
    "eps", "number", 1e-6, "The variance is clamped to at least eps.", minimum=0.0
)


def _variance(var: Any, like: FloatArray, eps: float) -> FloatArray:
    """``var`` shaped against the input as torch's ``gaussian_nll_loss`` accepts it, clamped."""
    v = np.asarray(var).astype(like.dtype)
    if v.ndim == 0:
        v = np.broadcast_to(v, like.shape)
    elif v.shape != like.shape:
        if v.shape == like.shape[:-1]:
            v = v[..., np.newaxis]
        elif not (
            v.ndim == like.ndim
            and sum(b for a, b in zip(like.shape, v.shape, strict=True) if a != b) == 1
        ):
            raise InvalidOptionError(
                f"var has shape {list(v.shape)}; GaussianNLLLoss needs input's shape "
                f"{list(like.shape)}, that without its last axis, that with one axis of "
                "length 1, or one number",
                field="options.var",
            )
    return at_least(v, eps)


@loss(
    **_names("GaussianNLLLoss", "gaussian_nll_loss"),
    formula="0.5 (log(max(var, eps)) + (input - target)^2 / max(var, eps)) [+ 0.5 log(2 pi)]",
    doc="Gaussian negative log-likelihood per element; the variance is options.var.",
    options=(VAR, FULL_GAUSSIAN, EPS_GAUSSIAN),
)
def gaussian_nll_loss(
    y_true: FloatArray,
    y_pred: FloatArray,
    var: Any = 1.0,
    full: bool = False,
    eps: float = 1e-6,
) -> FloatArray:
    """``0.5 (log v + (x - t)^2 / v)``, ``v = max(var, eps)``."""
    _same_shape(y_true, y_pred)
    v = _variance(var, y_pred, eps)
    half = const(0.5, y_pred)
    out = half * (np.log(v) + np.square(y_pred - y_true) / v)
    if full:
        out = out + const(0.5 * np.log(2 * np.pi), y_pred)
    return np.broadcast_to(out, y_pred.shape)


@derivatives_of(gaussian_nll_loss)
def _gaussian_nll_loss_derivatives(
    y_true: FloatArray,
    y_pred: FloatArray,
    scale: FloatArray,
    hessian: bool,
    var: Any = 1.0,
    full: bool = False,
    eps: float = 1e-6,
) -> Derivatives:
    """Gradient ``(x - t) / v``, Hessian ``1 / v`` (the variance is a constant)."""
    v = _variance(var, y_pred, eps)
    grad = scale * (y_pred - y_true) / v
    return grad, (np.broadcast_to(scale / v, y_pred.shape) if hessian else None)


# ---------------------------------------------------------------------------------------------
# Margins.


@loss(
    **_names("SoftMarginLoss", "soft_margin_loss"),
    formula="log(1 + exp(-target input))",
    doc="Two-class logistic loss per element, targets -1 or 1.",
)
def soft_margin_loss(y_true: FloatArray, y_pred: FloatArray) -> FloatArray:
    """``log1p(exp(-t x))`` (as torch writes it: large ``-t x`` overflows to inf)."""
    _same_shape(y_true, y_pred)
    return log1p(np.exp(-y_true * y_pred))


@derivatives_of(soft_margin_loss)
def _soft_margin_loss_derivatives(
    y_true: FloatArray, y_pred: FloatArray, scale: FloatArray, hessian: bool
) -> Derivatives:
    """With ``z = exp(-t x)``: gradient ``-t z / (1 + z)``, Hessian ``t^2 z / (1 + z)^2``."""
    z = np.exp(-y_true * y_pred)
    one = const(1.0, z)
    grad = scale * -y_true * z / (one + z)
    return grad, (scale * y_true * y_true * z / np.square(one + z) if hessian else None)


@loss(
    **_names("MultiLabelSoftMarginLoss", "multilabel_soft_margin_loss"),
    formula="mean_c -weight_c (target_c log sigmoid(input_c) + (1 - target_c) "
    "log sigmoid(-input_c)) over the last axis",
    doc="Multi-label one-versus-all logistic loss: one value per sample (N, C) -> (N,).",
    options=(WEIGHT_ELEMENTS,),
)
def multilabel_soft_margin_loss(
    y_true: FloatArray, y_pred: FloatArray, weight: Any = None
) -> FloatArray:
    """``sum_c -w_c (t log sigmoid(x) + (1 - t) log sigmoid(-x)) / C``."""
    _same_shape(y_true, y_pred)
    one = const(1.0, y_pred)
    log_p, log_q = log_sigmoids(y_pred)
    out = -(y_true * log_p + (one - y_true) * log_q)
    if weight is not None:
        out = out * _option_tensor(weight, "weight", y_pred)
    return np.sum(out, axis=-1) / const(y_pred.shape[-1], y_pred)


@derivatives_of(multilabel_soft_margin_loss)
def _multilabel_soft_margin_loss_derivatives(
    y_true: FloatArray, y_pred: FloatArray, scale: FloatArray, hessian: bool, weight: Any = None
) -> Derivatives:
    """Gradient ``w (sigmoid(x) - t) / C``, Hessian ``w sigmoid(x) (1 - sigmoid(x)) / C``."""
    k = np.expand_dims(scale, -1) / const(y_pred.shape[-1], y_pred)
    if weight is not None:
        k = k * _option_tensor(weight, "weight", y_pred)
    s = sigmoid(y_pred)
    return k * (s - y_true), (k * s * (const(1.0, s) - s) if hessian else None)


MARGIN_HINGE = OptionSpec("margin", "number", 1.0, "The margin for targets of -1.")


@loss(
    **_names("HingeEmbeddingLoss", "hinge_embedding_loss"),
    formula="input where target is 1, max(0, margin - input) where it is -1 (any other target "
    "adds both)",
    doc="For distances: the input where the target is 1, max(0, margin - input) where it is -1.",
    options=(MARGIN_HINGE,),
)
def hinge_embedding_loss(y_true: FloatArray, y_pred: FloatArray, margin: float = 1.0) -> FloatArray:
    """torch's ``where(t != 1, max(margin - x, 0), 0) + where(t != -1, x, 0)`` (through
    :func:`sum_where`: ``margin - x`` may overflow where its mask is 0)."""
    _same_shape(y_true, y_pred)
    one = const(1.0, y_true)
    with np.errstate(over="ignore"):
        clamped = at_least(np.subtract(const(margin, y_pred), y_pred), 0.0)
    return sum_where((y_true != one, clamped), (y_true != -one, y_pred))


@derivatives_of(hinge_embedding_loss)
def _hinge_embedding_loss_derivatives(
    y_true: FloatArray, y_pred: FloatArray, scale: FloatArray, hessian: bool, margin: float = 1.0
) -> Derivatives:
    """Gradient ``-[t != 1][margin - x >= 0] + [t != -1]`` (torch's clamp passes its edge);
    Hessian 0."""
    active = (y_true != 1) & (const(margin, y_pred) - y_pred >= 0)
    grad = scale * ((y_true != -1).astype(y_pred.dtype) - active.astype(y_pred.dtype))
    return grad, (np.zeros_like(y_pred) if hessian else None)


P_MARGIN = OptionSpec("p", "integer", 1, "The exponent of each margin violation: 1 or 2.")
MARGIN_MULTI = OptionSpec("margin", "number", 1.0, "The margin the target's score must win by.")


def _multi_margin_parts(
    y_true: FloatArray, y_pred: FloatArray, p: int, margin: float, weight: Any
) -> tuple[FloatArray, FloatArray, Any]:
    """(``z_i = margin - x_y + x_i`` zeroed at ``i = y``, the target's weight, the labels)."""
    if p not in (1, 2):
        raise InvalidOptionError(f"p must be 1 or 2, got {p}", field="options.p")
    if y_pred.ndim != 2:
        raise InvalidInputError(
            f"y_pred (input) must have shape (N, C), got {list(y_pred.shape)}", field="y_pred"
        )
    labels = _labels(y_true, y_pred, None)
    w = _class_weight(weight, y_pred.shape[1], y_pred)
    z = const(margin, y_pred) - _gather(y_pred, labels)[:, np.newaxis] + y_pred
    others = np.arange(y_pred.shape[1]) != labels[:, np.newaxis]
    return np.where(others, z, const(0.0, z)), w[labels], labels


def _multi_margin_forward(
    y_true: FloatArray,
    y_pred: FloatArray,
    p: int = 1,
    margin: float = 1.0,
    weight: Any = None,
) -> tuple[FloatArray, tuple[FloatArray, FloatArray, Any]]:
    """:func:`multi_margin_loss`'s output and, for its derivatives, :func:`_multi_margin_parts`
    (``z``, the target's weight, the labels)."""
    z, wy, labels = _multi_margin_parts(y_true, y_pred, p, margin, weight)
    h = np.maximum(z, const(0.0, z))
    if p == 2:
        h = h * h
    return wy * np.sum(h, axis=1) / const(y_pred.shape[1], y_pred), (z, wy, labels)


@loss(
    **_names("MultiMarginLoss", "multi_margin_loss"),
    formula="sum_{i != y} weight_y max(0, margin - input_y + input_i)^p / C, y = target",
    doc="Multi-class hinge loss of scores (N, C) and class indices (N,): one value per sample.",
    options=(P_MARGIN, MARGIN_MULTI, WEIGHT_CLASSES),
    sparse_labels=True,
)
def multi_margin_loss(
    y_true: FloatArray,
    y_pred: FloatArray,
    p: int = 1,
    margin: float = 1.0,
    weight: Any = None,
) -> FloatArray:
    """``sum_{i != y} w_y max(0, margin - x_y + x_i)^p / C``."""
    return _multi_margin_forward(y_true, y_pred, p, margin, weight)[0]


@derivatives_of(multi_margin_loss, forward=_multi_margin_forward)
def _multi_margin_loss_derivatives(
    y_true: FloatArray,
    y_pred: FloatArray,
    scale: FloatArray,
    hessian: bool,
    p: int = 1,
    margin: float = 1.0,
    weight: Any = None,
    saved: tuple[FloatArray, FloatArray, Any] | None = None,
) -> Derivatives:
    """torch's backward: for each ``i != y`` with ``z_i > 0``, ``g_i = w_y (1 or 2 z_i) / C``
    and ``g_y = -sum_i g_i``; Hessian diagonal (p = 2) ``2 w_y / C`` at each such ``i`` and
    ``2 w_y n / C`` at ``y`` (``n`` of them); 0 for p = 1.

    From the value's ``z`` (0 at the target, so ``g_y`` starts at 0), the target's element
    stored through flat indices rather than a ``where`` over the whole tensor."""
    z, wy, labels = (
        _multi_margin_forward(y_true, y_pred, p, margin, weight)[1] if saved is None else saved
    )
    zero = const(0.0, z)
    # a factor per sample, a scalar when they are all the same (no weight: 2x faster)
    k = scalar_if_uniform((scale * wy / const(y_pred.shape[1], y_pred))[:, np.newaxis])
    at_target = labels[:, np.newaxis]
    if p == 1:
        grad = np.multiply(z > zero, k, dtype=z.dtype)
    else:
        grad = np.maximum(z, zero)
        grad *= const(2.0, z) * k
    add_at_indices(grad, at_target, 1, -np.sum(grad, axis=1, keepdims=True))
    if not hessian:
        return grad, None
    if p == 1:
        return grad, np.zeros_like(y_pred)
    hess = np.multiply(z > zero, const(2.0, z) * k, dtype=z.dtype)
    add_at_indices(hess, at_target, 1, np.sum(hess, axis=1, keepdims=True))
    return grad, hess
