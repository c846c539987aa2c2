"""Probabilistic losses: cross-entropies, KL divergence and Poisson, in nats.

``y_pred`` holds probabilities (or logits with ``from_logits=True``). Probabilities are clipped
to ``[eps, 1 - eps]`` exactly where Keras 3 clips them, so an exact 0 or 1 costs at most
``-log(eps) = 16.118`` nats instead of infinity.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from app.losses.errors import InvalidInputError
from app.losses.numerics import (
    EPSILON,
    Derivatives,
    FloatArray,
    add_at_indices,
    clip,
    const,
    dot,
    log_sigmoids,
    log_softmax,
    per_element,
    power,
    probabilities_from,
    sigmoid,
    softmax,
)
from app.losses.options import OptionSpec
from app.losses.spec import (
    CLASS_AXIS,
    FOCAL_ALPHA,
    FROM_LOGITS,
    GAMMA,
    LABEL_SMOOTHING,
    MEAN_AXIS,
    derivatives_of,
    loss,
)


def _smooth_categorical(y_true: FloatArray, label_smoothing: float, axis: int) -> FloatArray:
    """``y (1 - s) + s / num_classes``: move ``s`` of the mass evenly over the classes.

    ``num_classes`` is the size of the class ``axis``. Keras 3.15 divides by the last axis's size
    even when ``axis`` names another, so its smoothed targets no longer sum to 1; lossd keeps
    the documented formula (tests/conformance: test_label_smoothing_with_class_axis_not_last).
    """
    if not label_smoothing:
        return y_true
    s, classes = const(label_smoothing, y_true), const(y_true.shape[axis], y_true)
    return y_true * (const(1.0, y_true) - s) + s / classes


def _smooth_binary(y_true: FloatArray, label_smoothing: float) -> FloatArray:
    """``y (1 - s) + s / 2``: pull binary targets towards 0.5."""
    if not label_smoothing:
        return y_true
    s = const(label_smoothing, y_true)
    return y_true * (const(1.0, y_true) - s) + const(0.5, y_true) * s


def _log_likelihood(
    y_true: FloatArray, y_pred: FloatArray, miss: FloatArray | None = None
) -> FloatArray:
    """Element-wise ``y log p + (1 - y) log(1 - p)`` with ``p`` clipped to ``[eps, 1 - eps]``:
    minus the binary cross-entropy, in Keras's order of operations, in two buffers besides
    ``miss``, which is ``1 - y_true`` (computed unless the caller has it).

    Labels that are all exactly 0 or 1 (the usual case) take one logarithm per element instead
    of two: ``log(y p + (1 - y)(1 - p))`` picks ``log p`` or ``log(1 - p)`` with the same bits as
    Keras's sum (``1 p + 0 = p``, ``0 + 1 (1 - p) = 1 - p``, and Keras adds an exact 0). The
    logarithms are most of the loss's time; checking the labels costs two cheap passes."""
    one = const(1.0, y_pred)
    p = clip(y_pred, EPSILON, 1.0 - EPSILON)
    if miss is None:
        miss = np.subtract(one, y_true)
    picked = _product_if_hard(y_true, miss) if y_true.shape == p.shape else None
    if picked is not None:
        np.multiply(y_true, p, out=picked)  # y p
        np.subtract(one, p, out=p)
        p *= miss
        p += picked  # y p + (1 - y)(1 - p): p or 1 - p
        return np.log(p, out=p)
    result = np.log(p)
    result *= y_true
    np.subtract(one, p, out=p)
    np.log(p, out=p)
    p *= miss
    result += p
    return result


#: How many labels :func:`_product_if_hard` looks at before it checks them all.
_HEAD = 256


def _product_if_hard(y_true: FloatArray, miss: FloatArray) -> FloatArray | None:
    """``y (1 - y)``, a buffer the caller may reuse, if every label ``y`` is exactly 0 or 1
    (then it is 0 everywhere); None otherwise. Soft labels are usually seen in the first few,
    so those are checked first, without a pass over the whole tensor."""
    if y_true.flags.c_contiguous:  # (a view; .flat stops at 32 dimensions)
        head = y_true.reshape(-1)[:_HEAD]
        if np.any(head * (const(1.0, head) - head)):
            return None
    product = np.multiply(y_true, miss)
    return None if product.any() else product


def _inside(p: FloatArray, low: float, high: float) -> npt.NDArray[np.bool_]:
    """Where ``clip(p, low, high)`` passes ``p`` through: its derivative is 1 there and 0
    outside. The bounds themselves count as inside (the one-sided derivative from within)."""
    return (p >= const(low, p)) & (p <= const(high, p))


def _sigmoid_slope(x: FloatArray) -> FloatArray:
    """``sigmoid'(x) = sigmoid(x) sigmoid(-x) = e / (1 + e)^2`` with ``e = exp(-|x|)``: never
    overflows, and keeps its relative precision where the sigmoid saturates."""
    e = np.abs(x)
    np.negative(e, out=e)
    np.exp(e, out=e)
    d = np.add(e, const(1.0, x))
    e /= d
    e /= d
    return e


@loss(
    class_name="CategoricalCrossentropy",
    formula="-sum(y_true * log(clip(y_pred / sum(y_pred), 1e-7, 1 - 1e-7)), axis)",
    doc="Cross-entropy for one-hot (or soft) targets, in nats.",
    options=(FROM_LOGITS, LABEL_SMOOTHING, CLASS_AXIS),
)
def categorical_crossentropy(
    y_true: FloatArray,
    y_pred: FloatArray,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> FloatArray:
    """``-sum(y_true * log(p), axis)``, ``p = clip(y_pred / sum(y_pred), eps, 1 - eps)`` or
    ``log p = log_softmax(y_pred)`` with ``from_logits``.

    >>> categorical_crossentropy(np.float32([[0, 1, 0]]), np.float32([[0.05, 0.95, 0]]))
    array([0.05129331], dtype=float32)
    """
    y_true = _smooth_categorical(y_true, label_smoothing, axis)
    if from_logits:
        log_prob = log_softmax(y_pred, axis)
    else:
        log_prob = probabilities_from(y_pred, axis)
        np.log(log_prob, out=log_prob)
    return -dot(y_true, log_prob, axis)


@derivatives_of(categorical_crossentropy)
def _categorical_crossentropy_derivatives(
    y_true: FloatArray,
    y_pred: FloatArray,
    scale: FloatArray,
    hessian: bool,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> Derivatives:
    """Along the class axis, with ``t`` the (smoothed) targets:

    - probabilities: ``S = sum(y_pred)``, ``q = y_pred / S``, ``c = [eps <= q <= 1 - eps]``
      (0 where the clip holds ``p`` constant), ``T = sum(c t)``: gradient ``T / S - c t / y_pred``,
      Hessian diagonal ``c t / y_pred^2 - T / S^2`` (the normalisation couples the classes, so
      the Hessian is not diagonal; this is its exact diagonal);
    - logits: ``s = softmax(y_pred)``, ``T = sum(t)``: gradient ``T s - t``, Hessian diagonal
      ``T s (1 - s)``.
    """
    y_true = _smooth_categorical(y_true, label_smoothing, axis)
    if from_logits:
        prob = softmax(y_pred, axis)
        total = np.sum(y_true, axis=axis, keepdims=True)
        total *= scale
        hess = None
        if hessian:
            hess = np.subtract(const(1.0, prob), prob)
            hess *= prob
            hess *= total
        grad = np.multiply(prob, total, out=prob)
        grad -= y_true * scale
        return grad, hess
    with np.errstate(divide="ignore", invalid="ignore"):  # a row summing to 0 gives NaN
        inv_sum = const(1.0, y_pred) / np.sum(y_pred, axis=axis, keepdims=True)
        q = np.multiply(y_pred, inv_sum)
        counted = np.multiply(y_true, _inside(q, EPSILON, 1.0 - EPSILON))  # c t
        total = np.sum(counted, axis=axis, keepdims=True)  # T
        # 1 / y_pred as 1 / (S clip(q)): finite where the clip is active (and c = 0 there).
        inv_pred = np.clip(q, const(EPSILON, q), const(1.0 - EPSILON, q), out=q)
        np.divide(inv_sum, inv_pred, out=inv_pred)
        ratio = np.multiply(counted, inv_pred, out=counted)  # c t / y_pred
    total *= scale
    hess = None
    if hessian:
        hess = np.multiply(ratio, inv_pred, out=inv_pred)
        hess *= scale
        hess -= total * np.square(inv_sum)
    grad = np.multiply(ratio, -scale, out=ratio)
    grad += total * inv_sum
    return grad, hess


def _check_sparse_labels(labels: FloatArray, classes: int, ignore_class: int | None) -> None:
    """Labels must be whole numbers in ``[0, classes)`` (or equal to ``ignore_class``)."""
    whole = labels == np.floor(labels)
    in_range = (labels >= 0) & (labels < classes)
    if ignore_class is not None:
        in_range |= labels == ignore_class
    bad = ~(whole & in_range)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        value = labels[where]
        allowed = f"an integer in [0, {classes - 1}]"
        if ignore_class is not None:
            allowed += f" or the ignore_class {ignore_class}"
        raise InvalidInputError(
            f"label {value:g} is not {allowed} (y_pred has {classes} classes)",
            field="y_true",
            index=where,
        )


def sparse_valid_mask(y_true: FloatArray, ignore_class: int | None = None) -> np.ndarray | None:
    """True where a sparse label counts; None when every label does (no ``ignore_class``)."""
    if ignore_class is None:
        return None
    return np.asarray(y_true != ignore_class)


def _pick(y_pred: FloatArray, labels: npt.NDArray[np.intp], axis: int) -> FloatArray:
    """``y_pred[..., labels, ...]`` along ``axis``, keeping that axis (of length 1).

    Taken from a 3-D view (before, classes, after): ``take_along_axis`` on ``y_pred`` itself
    builds one index array per axis, and NumPy refuses 64 of them, so a rank-64 ``y_pred`` (the
    most NumPy holds) would fail. The reshapes are views for a contiguous ``y_pred``.
    """
    shape = y_pred.shape
    before, after = math.prod(shape[:axis]), math.prod(shape[axis + 1 :])
    view = y_pred.reshape(before, shape[axis], after)
    picked = np.take_along_axis(view, labels.reshape(before, 1, after), axis=1)
    return picked.reshape((*shape[:axis], 1, *shape[axis + 1 :]))


def _sparse_categorical_crossentropy_forward(
    y_true: FloatArray,
    y_pred: FloatArray,
    from_logits: bool = False,
    ignore_class: int | None = None,
    axis: int = -1,
) -> tuple[FloatArray, tuple[npt.NDArray[np.intp], FloatArray, FloatArray, FloatArray | None]]:
    """:func:`sparse_categorical_crossentropy`'s values and, for its derivatives, (the labels
    as indices, ``y_pred`` at them, the sum along the class axis: of ``y_pred``, or of
    ``exp(y_pred - max)`` from logits, and those exponentials (None for probabilities))."""
    axis = axis % y_pred.ndim
    _check_sparse_labels(y_true, y_pred.shape[axis], ignore_class)
    valid = sparse_valid_mask(y_true, ignore_class)
    labels = (
        np.where(valid, y_true, 0).astype(np.intp) if valid is not None else y_true.astype(np.intp)
    )
    # Only the labelled class's log-probability is needed: the same operations as on the whole
    # tensor (Keras sums one-hot * log_prob), applied to one element per sample.
    picked = _pick(y_pred, labels, axis)
    if from_logits:
        top = np.max(y_pred, axis=axis, keepdims=True)
        shifted = np.subtract(y_pred, top)
        total = np.sum(np.exp(shifted, out=shifted), axis=axis, keepdims=True)
        log_prob = (picked - top) - np.log(total)  # log_softmax at the label
        exps: FloatArray | None = shifted
    else:
        total, exps = np.sum(y_pred, axis=axis, keepdims=True), None
        with np.errstate(divide="ignore", invalid="ignore"):  # as probabilities_from
            log_prob = np.log(clip(picked / total, EPSILON, 1.0 - EPSILON))
    losses = -np.squeeze(log_prob, axis=axis)
    if valid is not None:
        losses = np.where(valid, losses, const(0.0, losses))
    return losses, (labels, picked, total, exps)


@loss(
    class_name="SparseCategoricalCrossentropy",
    formula="-log(clip(y_pred / sum(y_pred), 1e-7, 1 - 1e-7)[y_true])",
    doc="Cross-entropy for integer class labels (y_true has one axis fewer than y_pred, "
    "or a trailing axis of 1), in nats. ignore_class leaves samples out of the mean.",
    options=(
        FROM_LOGITS,
        OptionSpec(
            "ignore_class",
            "integer_or_null",
            None,
            "A label value whose samples contribute 0 and are left out of the mean.",
        ),
        CLASS_AXIS,
    ),
    sparse_labels=True,
    mask=sparse_valid_mask,
)
def sparse_categorical_crossentropy(
    y_true: FloatArray,
    y_pred: FloatArray,
    from_logits: bool = False,
    ignore_class: int | None = None,
    axis: int = -1,
) -> FloatArray:
    """``-log(p[y_true])`` with ``p`` as in :func:`categorical_crossentropy`; ``y_true`` holds
    integer class indices with one axis fewer than ``y_pred``.

    With ``ignore_class``, samples whose label equals it contribute 0 and are left out of the mean
    (see :func:`sparse_valid_mask`).

    >>> sparse_categorical_crossentropy(np.float32([1]), np.float32([[0.05, 0.95, 0]]))
    array([0.05129331], dtype=float32)
    """
    return _sparse_categorical_crossentropy_forward(
        y_true, y_pred, from_logits, ignore_class, axis
    )[0]


@derivatives_of(sparse_categorical_crossentropy, forward=_sparse_categorical_crossentropy_forward)
def _sparse_categorical_crossentropy_derivatives(
    y_true: FloatArray,
    y_pred: FloatArray,
    scale: FloatArray,
    hessian: bool,
    from_logits: bool = False,
    ignore_class: int | None = None,
    axis: int = -1,
    saved: tuple[npt.NDArray[np.intp], FloatArray, FloatArray, FloatArray | None] | None = None,
) -> Derivatives:
    """:func:`categorical_crossentropy`'s derivatives with a one-hot ``t`` at the label ``l``:

    - probabilities (``S = sum(y_pred)``, ``c = [eps <= y_pred[l] / S <= 1 - eps]``): gradient
      ``c (1 / S - [i = l] / y_pred[l])``, Hessian diagonal ``c ([i = l] / y_pred[l]^2 - 1/S^2)``;
    - logits: gradient ``softmax(y_pred) - [i = l]``, Hessian diagonal ``s (1 - s)``.

    Samples whose label is ``ignore_class`` have weight 0 in ``scale``: their derivatives are 0.
    The sums, the picked elements and the exponentials of the softmax are the value's.
    """
    axis = axis % y_pred.ndim
    labels, picked, total, exps = (
        _sparse_categorical_crossentropy_forward(y_true, y_pred, from_logits, ignore_class, axis)[1]
        if saved is None
        else saved
    )
    labels = np.expand_dims(labels, axis)
    if from_logits:
        assert exps is not None  # the forward keeps them from logits
        # softmax(y_pred), in the exponentials' buffer unless their layout is not C's (the
        # labels are added through flat indices)
        out = exps if exps.flags.c_contiguous else np.empty(exps.shape, exps.dtype)
        prob = np.multiply(exps, const(1.0, total) / total, out=out)
        hess = None
        if hessian:
            hess = np.subtract(const(1.0, prob), prob)
            hess *= prob
            hess *= scale
        grad = add_at_indices(prob, labels, axis, const(-1.0, prob))
        grad *= scale
        return grad, hess
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_sum = const(1.0, y_pred) / total
        counted = np.where(_inside(picked * inv_sum, EPSILON, 1.0 - EPSILON), scale, 0)
        counted = counted.astype(y_pred.dtype)
        at_label = np.divide(counted, picked, out=np.zeros_like(picked), where=counted != 0)
    grad = np.empty(y_pred.shape, y_pred.dtype)  # C-contiguous, whatever y_pred's layout
    grad[...] = counted * inv_sum
    grad = add_at_indices(grad, labels, axis, -at_label)
    hess = None
    if hessian:
        hess = np.empty(y_pred.shape, y_pred.dtype)
        hess[...] = -counted * np.square(inv_sum)
        hess = add_at_indices(hess, labels, axis, at_label / picked)
    return grad, hess


@loss(
    class_name="BinaryCrossentropy",
    aliases=("bce", "BCE"),
    formula="mean(-(y_true * log(p) + (1 - y_true) * log(1 - p)), axis), "
    "p = clip(y_pred, 1e-7, 1 - 1e-7)",
    doc="Log loss for independent binary targets, in nats. With from_logits it is "
    "computed with the exact log-sigmoid.",
    options=(FROM_LOGITS, LABEL_SMOOTHING, MEAN_AXIS),
)
def binary_crossentropy(
    y_true: FloatArray,
    y_pred: FloatArray,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> FloatArray:
    """``mean(-(y log p + (1 - y) log(1 - p)), axis)`` with ``p = clip(y_pred, eps, 1 - eps)``.

    With ``from_logits`` the loss is ``-(y log_sigmoid(x) + (1 - y) log_sigmoid(-x))``, exact for
    large logits (as Keras's JAX, TensorFlow and torch backends compute it; its NumPy backend clips
    the sigmoid instead and loses precision past |x| of about 10).

    >>> binary_crossentropy(np.float32([[0, 1]]), np.float32([[0.4, 0.6]]))
    array([0.5108256], dtype=float32)
    """
    y_true = _smooth_binary(y_true, label_smoothing)
    if from_logits:
        one = const(1.0, y_pred)
        log_p, log_q = log_sigmoids(y_pred)
        likelihood = y_true * log_p + (one - y_true) * log_q
    else:
        likelihood = _log_likelihood(y_true, y_pred)
    return -np.mean(likelihood, axis=axis)  # mean(-x) = -mean(x) exactly


@derivatives_of(binary_crossentropy)
def _binary_crossentropy_derivatives(
    y_true: FloatArray,
    y_pred: FloatArray,
    scale: FloatArray,
    hessian: bool,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> Derivatives:
    """Per element, over ``n`` averaged along ``axis``, with ``y`` the (smoothed) targets:

    - probabilities (``p = y_pred``): gradient ``((1 - y) / (1 - p) - y / p) / n``, Hessian
      diagonal ``(y / p^2 + (1 - y) / (1 - p)^2) / n`` for ``eps <= p <= 1 - eps``, 0 outside
      (where the clip holds ``p`` constant);
    - logits: gradient ``(sigmoid(y_pred) - y) / n``, Hessian diagonal
      ``sigmoid(y_pred) sigmoid(-y_pred) / n`` (from ``exp(-|y_pred|)``: no overflow).
    """
    y_true = _smooth_binary(y_true, label_smoothing)
    k = per_element(scale, 1.0, y_pred, axis)
    one = const(1.0, y_pred)
    if from_logits:
        slope = _sigmoid_slope(y_pred)
        hess = slope * k if hessian else None
        grad = sigmoid(y_pred)
        grad -= y_true
        grad *= k
        return grad, hess
    # g = (p - y) / (p (1 - p)), h = ((p - y)^2 + y (1 - y)) / (p (1 - p))^2: the same as
    # (1 - y)/(1 - p) - y/p and y/p^2 + (1 - y)/(1 - p)^2, in four full-size buffers.
    p = clip(y_pred, EPSILON, 1.0 - EPSILON)
    inside = p == y_pred  # the clip holds p constant elsewhere: derivatives 0
    r = np.subtract(one, p)
    r *= p
    np.divide(one, r, out=r)  # 1 / (p (1 - p))
    r *= inside
    d = np.subtract(p, y_true)
    grad = np.multiply(d, r)
    grad *= k
    if not hessian:
        return grad, None
    spread = np.subtract(one, y_true, out=p)
    spread *= y_true  # y (1 - y)
    hess = np.square(d, out=d)
    hess += spread
    hess *= r
    hess *= r
    hess *= k
    return grad, hess


@loss(
    class_name="BinaryFocalCrossentropy",
    formula="mean(w * (1 - p_t)^gamma * bce, axis), p_t = y_true p + (1 - y_true)(1 - p)",
    doc="Binary cross-entropy down-weighted for well-classified examples (Lin et al., 2017).",
    options=(
        OptionSpec(
            "apply_class_balancing",
            "boolean",
            False,
            "Weight positives by alpha and negatives by 1 - alpha.",
        ),
        FOCAL_ALPHA,
        GAMMA,
        FROM_LOGITS,
        LABEL_SMOOTHING,
        MEAN_AXIS,
    ),
)
def binary_focal_crossentropy(
    y_true: FloatArray,
    y_pred: FloatArray,
    apply_class_balancing: bool = False,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> FloatArray:
    """``mean(w * (1 - p_t)^gamma * bce, axis)`` with ``p_t = y p + (1 - y)(1 - p)`` and
    ``w = y alpha + (1 - y)(1 - alpha)`` when ``apply_class_balancing`` (else 1).

    Down-weights well-classified examples (Lin et al., 2017). ``p`` is ``sigmoid(y_pred)`` with
    ``from_logits``, then clipped as in :func:`binary_crossentropy`, as Keras 3 does.

    >>> binary_focal_crossentropy(np.float32([[0, 1]]), np.float32([[0.4, 0.6]]))
    array([0.08173208], dtype=float32)
    """
    return _binary_focal_parts(
        y_true, y_pred, apply_class_balancing, alpha, gamma, from_logits, label_smoothing, axis
    )[0]


#: What :func:`binary_focal_crossentropy`'s derivatives take from its value: the probabilities
#: (``sigmoid(y_pred)`` from logits), ``b`` (the clipped binary cross-entropy), ``m = 1 - p_t``
#: and ``F = m^gamma``.
BinaryFocalSaved = tuple[FloatArray, FloatArray, FloatArray, FloatArray]


def _binary_focal_parts(
    y_true: FloatArray,
    y_pred: FloatArray,
    apply_class_balancing: bool,
    alpha: float,
    gamma: float,
    from_logits: bool,
    label_smoothing: float,
    axis: int,
    keep: bool = False,
) -> tuple[FloatArray, BinaryFocalSaved | None]:
    """:func:`binary_focal_crossentropy`'s values and, with ``keep``, what its derivatives
    need (:data:`BinaryFocalSaved`), kept in buffers of their own (two more) where the value
    alone overwrites them."""
    y_true = _smooth_binary(y_true, label_smoothing)
    if from_logits:
        y_pred = sigmoid(y_pred)
    one = const(1.0, y_pred)
    miss = np.subtract(one, y_true)
    focal = _log_likelihood(y_true, y_pred, miss)  # -bce
    bce = np.negative(focal) if keep else focal
    p_t = np.multiply(y_true, y_pred)
    scratch = np.subtract(one, y_pred)
    scratch *= miss
    p_t += scratch  # y p + (1 - y)(1 - p)
    np.subtract(one, p_t, out=p_t)
    modulation = power(p_t, gamma, out=None if keep else p_t)
    focal *= modulation
    if apply_class_balancing:
        a = const(alpha, y_pred)
        np.multiply(y_true, a, out=scratch)
        miss *= one - a
        scratch += miss  # y alpha + (1 - y)(1 - alpha)
        focal *= scratch
    values = -np.mean(focal, axis=axis)  # mean(-x) = -mean(x) exactly
    return values, ((y_pred, bce, p_t, modulation) if keep else None)


def _binary_focal_forward(
    y_true: FloatArray,
    y_pred: FloatArray,
    apply_class_balancing: bool = False,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> tuple[FloatArray, BinaryFocalSaved | None]:
    """:func:`binary_focal_crossentropy`'s values and what its derivatives take from them."""
    return _binary_focal_parts(
        y_true,
        y_pred,
        apply_class_balancing,
        alpha,
        gamma,
        from_logits,
        label_smoothing,
        axis,
        keep=True,
    )


@derivatives_of(binary_focal_crossentropy, forward=_binary_focal_forward)
def _binary_focal_crossentropy_derivatives(
    y_true: FloatArray,
    y_pred: FloatArray,
    scale: FloatArray,
    hessian: bool,
    apply_class_balancing: bool = False,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
    saved: BinaryFocalSaved | None = None,
) -> Derivatives:
    """The element loss is ``w F(m) b(p)`` with ``m = 1 - p_t = p + y - 2 y p`` (``dm/dp =
    1 - 2y``), ``F = m^gamma``, ``b`` the clipped binary cross-entropy (``b' = (1 - y)/(1 - p)
    - y/p`` and ``b'' = y/p^2 + (1 - y)/(1 - p)^2`` for ``eps <= p <= 1 - eps``, else 0) and
    ``w`` the class-balancing weight (1 without it). Along ``p``: gradient
    ``w (F' b + F b') / n``, Hessian diagonal ``w (F'' b + 2 F' b' + F b'') / n``. With
    ``from_logits``, ``p = sigmoid(y_pred)`` and the chain rule adds ``s = p (1 - p)``:
    ``l_x = l_p s`` and ``l_xx = l_pp s^2 + l_p s (1 - 2p)``.

    ``p``, ``b``, ``m`` and ``F`` are the value's (two logarithms and a power not computed
    again).
    """
    if saved is None:
        saved = _binary_focal_forward(
            y_true, y_pred, apply_class_balancing, alpha, gamma, from_logits, label_smoothing, axis
        )[1]
        assert saved is not None
    p, b, m, f = saved
    y = _smooth_binary(y_true, label_smoothing)
    one, two, g = const(1.0, y_pred), const(2.0, y_pred), const(gamma, y_pred)
    # Buffer by buffer, reused as soon as free: at 1M elements each further temporary costs
    # more in page faults than its arithmetic.
    a = clip(p, EPSILON, 1.0 - EPSILON)
    r = np.subtract(one, a)
    r *= a
    np.divide(one, r, out=r)
    r *= a == p  # 1 / (p (1 - p)), 0 where the clip holds p constant
    d = np.subtract(a, y)  # p - y
    grad = np.multiply(d, r)  # b' = (p - y) / (p (1 - p)) = (1 - y)/(1 - p) - y/p
    hess = None
    if hessian:
        hess = np.subtract(one, y)
        hess *= y
        hess += np.square(d, out=d)
        hess *= r
        hess *= r  # b'' = ((p - y)^2 + y (1 - y)) / (p (1 - p))^2 = y/p^2 + (1 - y)/(1 - p)^2
    slope = np.multiply(y, -two, out=r)
    slope += one  # dm/dp = 1 - 2y
    f1 = np.zeros_like(m) if gamma == 0.0 else _power(m, gamma - 1.0)
    f1 *= g
    f1 *= slope  # F' = gamma m^(gamma - 1) (1 - 2y)
    if hess is not None:
        hess *= f  # F b''
        if gamma not in (0.0, 1.0):
            f2 = _power(m, gamma - 2.0)
            f2 *= g * (g - one)
            f2 *= slope
            f2 *= slope
            f2 *= b
            hess += f2  # F'' b, F'' = gamma (gamma - 1) m^(gamma - 2) (1 - 2y)^2
            np.multiply(f1, grad, out=f2)
        else:
            f2 = np.multiply(f1, grad)
        f2 *= two
        hess += f2  # 2 F' b'
    grad *= f
    f1 *= b
    grad += f1  # F b' + F' b
    if from_logits:  # the chain rule through p = sigmoid(x): s = p (1 - p)
        s = _sigmoid_slope(y_pred)
        if hess is not None:
            hess *= s
            hess *= s
            lean = np.multiply(p, -two, out=a)
            lean += one
            lean *= grad
            lean *= s
            hess += lean  # l_pp s^2 + l_p s (1 - 2p)
        grad *= s
    k = per_element(scale, 1.0, y_pred, axis)
    if apply_class_balancing:
        w = np.multiply(y, const(2.0 * alpha - 1.0, y_pred), out=m)  # (m is free by now)
        w += const(1.0 - alpha, y_pred)  # y alpha + (1 - y)(1 - alpha)
        w *= k
        k = w
    grad *= k
    if hess is not None:
        hess *= k
    return grad, hess


def _power(x: FloatArray, exponent: float, out: FloatArray | None = None) -> FloatArray:
    """``x ** exponent`` with 0 and 1 written out (``power`` has 2); a new array unless ``out``."""
    if exponent == 0.0:
        result = np.empty_like(x) if out is None else out
        result[...] = 1
        return result
    if exponent == 1.0:
        if out is None:
            return x.copy()
        np.copyto(out, x)
        return out
    return power(x, exponent, out=out)


@loss(
    class_name="CategoricalFocalCrossentropy",
    formula="sum(-alpha * (1 - p)^gamma * y_true * log(p), axis), p as in categorical_crossentropy",
    doc="Categorical cross-entropy down-weighted for well-classified examples.",
    options=(FOCAL_ALPHA, GAMMA, FROM_LOGITS, LABEL_SMOOTHING, CLASS_AXIS),
)
def categorical_focal_crossentropy(
    y_true: FloatArray,
    y_pred: FloatArray,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> FloatArray:
    """``sum(-alpha (1 - p)^gamma y log p, axis)``, ``p`` as in :func:`categorical_crossentropy`
    (``softmax`` first with ``from_logits``).

    >>> categorical_focal_crossentropy(np.float32([[0, 1, 0]]), np.float32([[0.05, 0.95, 0]]))
    array([3.205833e-05], dtype=float32)
    """
    return _categorical_focal_parts(
        y_true, y_pred, alpha, gamma, from_logits, label_smoothing, axis
    )[0]


#: What :func:`categorical_focal_crossentropy`'s derivatives take from its value, for
#: probabilities: ``1 / S`` (``S = sum(y_pred)``), ``q = y_pred / S``, ``p = clip(q)``,
#: ``t log p`` and ``alpha (1 - p)^gamma``.
CategoricalFocalSaved = tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]


def _categorical_focal_parts(
    y_true: FloatArray,
    y_pred: FloatArray,
    alpha: float,
    gamma: float,
    from_logits: bool,
    label_smoothing: float,
    axis: int,
    keep: bool = False,
) -> tuple[FloatArray, CategoricalFocalSaved | None]:
    """:func:`categorical_focal_crossentropy`'s values and, with ``keep`` and probabilities,
    what its derivatives take (:data:`CategoricalFocalSaved`): ``q`` and ``p`` in buffers of
    their own (two more), where the value alone clips ``q`` and then turns ``p`` into the
    weight in place."""
    y_true = _smooth_categorical(y_true, label_smoothing, axis)
    if from_logits:
        y_pred = softmax(y_pred, axis)
    keep = keep and not from_logits
    if keep:  # probabilities_from's operations, with the sum and the unclipped q kept
        with np.errstate(divide="ignore", invalid="ignore"):
            total = np.sum(y_pred, axis=axis, keepdims=True)
            scaled = y_pred / total
        output = clip(scaled, EPSILON, 1.0 - EPSILON)
    else:
        output = probabilities_from(y_pred, axis)
    likelihood = np.log(output)
    likelihood *= y_true  # -cce
    weight = np.subtract(const(1.0, output), output, out=None if keep else output)
    power(weight, gamma, out=weight)
    weight *= const(alpha, output)
    values = -dot(weight, likelihood, axis)  # sum(w * -x) = -sum(w * x) exactly
    if not keep:
        return values, None
    with np.errstate(divide="ignore"):
        inv_total = const(1.0, total) / total
    return values, (inv_total, scaled, output, likelihood, weight)


def _categorical_focal_forward(
    y_true: FloatArray,
    y_pred: FloatArray,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> tuple[FloatArray, CategoricalFocalSaved | None]:
    """:func:`categorical_focal_crossentropy`'s values and what its derivatives take from them
    (nothing from logits)."""
    return _categorical_focal_parts(
        y_true, y_pred, alpha, gamma, from_logits, label_smoothing, axis, keep=True
    )


@derivatives_of(categorical_focal_crossentropy, forward=_categorical_focal_forward)
def _categorical_focal_crossentropy_derivatives(
    y_true: FloatArray,
    y_pred: FloatArray,
    scale: FloatArray,
    hessian: bool,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
    saved: CategoricalFocalSaved | None = None,
) -> Derivatives:
    """The loss is ``sum_j f_j(q_j)`` over the class axis, ``f(p) = -alpha t (1 - p)^gamma
    log p`` on the clipped ``p``, so
    ``f' = alpha t (gamma (1-p)^(gamma-1) log p - (1-p)^gamma / p)`` and
    ``f'' = alpha t (-gamma (gamma-1) (1-p)^(gamma-2) log p + 2 gamma (1-p)^(gamma-1) / p
    + (1-p)^gamma / p^2)`` for ``eps <= q <= 1 - eps`` (0 outside). With ``A = sum(f' q)`` and
    ``B = sum(f'' q^2)``:

    - probabilities (``q = y_pred / S``): gradient ``(f'_i - A) / S``, Hessian diagonal
      ``(f''_i (1 - 2 q_i) + B + 2 A - 2 f'_i) / S^2``;
    - logits (``q = softmax(y_pred)``): gradient ``q_i (f'_i - A)``, Hessian diagonal
      ``f''_i q_i^2 (1 - 2 q_i) + q_i^2 B + q_i (1 - 2 q_i) (f'_i - A)``.

    For probabilities, from the value's intermediates: :func:`_categorical_focal_from_value`.
    """
    if not from_logits:
        if saved is None:
            saved = _categorical_focal_forward(
                y_true, y_pred, alpha, gamma, from_logits, label_smoothing, axis
            )[1]
            assert saved is not None
        y_true = _smooth_categorical(y_true, label_smoothing, axis)
        return _categorical_focal_from_value(y_true, scale, hessian, alpha, gamma, axis, saved)
    y_true = _smooth_categorical(y_true, label_smoothing, axis)
    one, two = const(1.0, y_pred), const(2.0, y_pred)
    inv_sum = one
    if from_logits:
        q = softmax(y_pred, axis)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            inv_sum = one / np.sum(y_pred, axis=axis, keepdims=True)
        q = y_pred * inv_sum
    # Buffer by buffer, reused as soon as free: at 1M elements each further temporary costs
    # more in page faults than its arithmetic.
    v = clip(q, EPSILON, 1.0 - EPSILON)  # p
    weight = np.multiply(y_true, v == q, dtype=y_pred.dtype)
    weight *= const(-alpha, y_pred)  # -alpha t c: 0 where the clip holds p constant
    log_p = np.log(v)
    u = np.subtract(one, v)
    np.divide(one, v, out=v)  # 1 / p
    g = const(gamma, y_pred)
    f2 = None
    if hessian and gamma not in (0.0, 1.0):
        f2 = _power(u, gamma - 2.0)
        f2 *= g * (g - one)  # d2/dp2 (1 - p)^gamma
    f = _power(u, gamma)
    f1 = np.zeros_like(u) if gamma == 0.0 else _power(u, gamma - 1.0, out=u)
    f1 *= -g  # d/dp (1 - p)^gamma
    scratch = np.multiply(f, v)  # (1 - p)^gamma / p
    d2 = None
    if hessian:  # f'' = -alpha t c (F'' log p + 2 F' / p - F / p^2)
        d2 = np.zeros_like(u) if f2 is None else np.multiply(f2, log_p, out=f2)
        scratch *= v
        d2 -= scratch
        np.multiply(f1, v, out=scratch)
        scratch *= two
        d2 += scratch
        d2 *= weight
        np.multiply(f, v, out=scratch)
    d1 = np.multiply(f1, log_p, out=log_p)
    d1 += scratch
    d1 *= weight  # f' = -alpha t c (F' log p + F / p)
    total1 = np.expand_dims(dot(d1, q, axis), axis) if q.ndim > 1 else dot(d1, q, axis)  # A
    centred = np.subtract(d1, total1, out=d1)  # f' - A
    hess = None
    if d2 is not None:
        q2 = np.square(q, out=f)
        total2 = dot(d2, q2, axis)
        total2 = np.expand_dims(total2, axis) if q.ndim > 1 else total2  # B
        lean = np.multiply(q, -two, out=weight)
        lean += one  # 1 - 2q
        if from_logits:  # q ((1 - 2q)(f'' q + f' - A) + q B)
            d2 *= q
            d2 += centred
            d2 *= lean
            d2 += np.multiply(q, total2, out=q2)
            d2 *= q
            d2 *= scale
        else:  # (f'' (1 - 2q) + B - 2 (f' - A)) / S^2
            d2 *= lean
            d2 += np.multiply(centred, -two, out=lean)
            d2 += total2
            d2 *= np.square(inv_sum) * scale
        hess = d2
    if from_logits:
        centred *= q  # q (f' - A)
        centred *= scale
    else:
        centred *= inv_sum * scale  # (f' - A) / S
    return centred, hess


def _categorical_focal_from_value(
    t: FloatArray,
    scale: FloatArray,
    hessian: bool,
    alpha: float,
    gamma: float,
    axis: int,
    saved: CategoricalFocalSaved,
) -> Derivatives:
    """The probabilities' derivatives from the value's ``1/S, q, p, t log p, W = alpha F``
    (``F = (1 - p)^gamma``, ``u = 1 - p``): with ``c = [p = q]`` (0 where the clip holds),

    ``f' = c (alpha gamma u^(gamma-1) t log p - W t / p)`` and
    ``f'' = c ((t / p) (W / p + 2 alpha gamma u^(gamma-1))
    - alpha gamma (gamma - 1) u^(gamma-2) t log p)``,

    the docstring's formulas with ``alpha`` and ``F`` folded into ``W``; no logarithm again.
    """
    inv_sum, q, p, tlog, weight = saved
    one, two = const(1.0, q), const(2.0, q)
    g, a = const(gamma, q), const(alpha, q)
    # In the saved buffers and two more: past eight 4 MB buffers the passes spill out of a
    # 32 MB cache and each costs twice as much.
    counted = p == q  # c
    clipped = not counted.all()  # (else c = 1: two passes fewer)
    ratio = np.divide(t, p)  # t / p
    u = np.subtract(one, p)
    if gamma != 2.0:
        _power(u, gamma - 1.0, out=u)  # u^(gamma - 1)
    d1 = np.multiply(weight, ratio, out=weight)  # W t / p
    d2 = np.divide(d1, p, out=p) if hessian else None  # W t / p^2 (p is not needed again)
    tlog *= a * g  # alpha gamma t log p
    if d2 is not None and gamma != 0.0:
        ratio *= u
        ratio *= two * a * g
        d2 += ratio  # + 2 alpha gamma u^(gamma-1) t / p
    u *= tlog
    u -= d1
    d1 = u  # f' / c = alpha gamma u^(gamma-1) t log p - W t / p
    if d2 is not None and gamma not in (0.0, 1.0):
        curve = tlog if gamma == 2.0 else np.multiply(tlog, g - one, out=tlog)
        if gamma != 2.0:  # times u^(gamma - 2) (u again: p's buffer holds d2 now)
            u2 = clip(q, EPSILON, 1.0 - EPSILON)
            np.subtract(one, u2, out=u2)
            curve *= _power(u2, gamma - 2.0, out=u2)
        d2 -= curve  # f'' / c
    if clipped:
        d1 *= counted  # f'
    keep = np.expand_dims if q.ndim > 1 else _scalar
    total1 = keep(dot(d1, q, axis), axis)  # A
    hess = None
    if d2 is not None:
        if clipped:
            d2 *= counted  # f''
        # f'' (1 - 2q) - 2 (f' - A) + B = f'' - 2 (f'' q + f') + 2 A + B, B = sum(f'' q q)
        lean = np.multiply(d2, q, out=ratio)
        total2 = keep(dot(lean, q, axis), axis)  # B
        lean += d1
        lean *= two
        d2 -= lean
        d2 += total2 + two * total1
        d2 *= np.square(inv_sum) * scale
        hess = d2
    d1 -= total1
    d1 *= inv_sum * scale  # (f' - A) / S
    return d1, hess


def _scalar(a: FloatArray, axis: int) -> FloatArray:
    """A 1-D ``y_pred``'s per-sample value (0-d) as it is: it broadcasts already."""
    return a


@loss(
    class_name="KLDivergence",
    aliases=("kullback_leibler_divergence", "kld", "KLD"),
    formula="sum(t * log(t / p), axis=-1), t = clip(y_true, 1e-7, 1), p = clip(y_pred, 1e-7, 1)",
    doc="Kullback-Leibler divergence of y_pred from y_true, in nats.",
)
def kl_divergence(y_true: FloatArray, y_pred: FloatArray) -> FloatArray:
    """``sum(t * log(t / p), axis=-1)`` with ``t, p`` clipped to ``[eps, 1]``.

    >>> kl_divergence(np.float32([[0.5, 0.5]]), np.float32([[0.25, 0.75]]))
    array([0.14384106], dtype=float32)
    """
    t = clip(y_true, EPSILON, 1.0)
    ratio = clip(y_pred, EPSILON, 1.0)
    np.divide(t, ratio, out=ratio)
    return dot(t, np.log(ratio, out=ratio), -1)


@derivatives_of(kl_divergence)
def _kl_divergence_derivatives(
    y_true: FloatArray, y_pred: FloatArray, scale: FloatArray, hessian: bool
) -> Derivatives:
    """With ``t = clip(y_true, eps, 1)``: gradient ``-t / y_pred``, Hessian diagonal
    ``t / y_pred^2`` for ``eps <= y_pred <= 1``, 0 outside (where the clip holds it constant).
    KL sums the last axis, so there is no ``1/n``."""
    t = clip(y_true, EPSILON, 1.0)
    p = clip(y_pred, EPSILON, 1.0)
    t *= p == y_pred  # 0 where the clip holds y_pred constant (a multiply: no masked store)
    t *= scale
    np.divide(const(1.0, p), p, out=p)  # 1 / y_pred where it counts, finite elsewhere
    grad = np.multiply(t, p, out=t)  # t / y_pred
    hess = np.multiply(grad, p, out=p) if hessian else None
    np.negative(grad, out=grad)
    return grad, hess


@loss(
    class_name="Poisson",
    formula="mean(y_pred - y_true * log(y_pred + 1e-7), axis=-1)",
    doc="Poisson negative log-likelihood (up to a constant) for count targets; "
    "y_pred is a rate (>= 0).",
)
def poisson(y_true: FloatArray, y_pred: FloatArray) -> FloatArray:
    """``mean(y_pred - y_true * log(y_pred + eps), axis=-1)``; ``y_pred`` is a rate, so >= 0.

    A negative ``y_pred`` makes the log undefined: the result is NaN, as in Keras, and reported.

    >>> poisson(np.float32([[1, 0]]), np.float32([[1, 2]]))  # ((1 - log 1) + (2 - 0)) / 2
    array([1.5], dtype=float32)
    """
    terms = np.add(y_pred, const(EPSILON, y_pred))
    with np.errstate(invalid="ignore", divide="ignore"):
        np.log(terms, out=terms)  # in place: one buffer for the whole loss
    terms *= y_true
    np.subtract(y_pred, terms, out=terms)
    return np.mean(terms, axis=-1)


@derivatives_of(poisson)
def _poisson_derivatives(
    y_true: FloatArray, y_pred: FloatArray, scale: FloatArray, hessian: bool
) -> Derivatives:
    """Gradient ``(1 - y_true / (y_pred + eps)) / n``, Hessian diagonal
    ``y_true / (y_pred + eps)^2 / n``. (Finite where ``y_pred < 0`` although the loss is NaN
    there, as autodiff of the formula gives; ``y_pred = -eps`` divides by 0.)"""
    one = const(1.0, y_pred)
    k = per_element(scale, 1.0, y_pred, -1)
    inv = y_pred + const(EPSILON, y_pred)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(one, inv, out=inv)  # 1 / (p + eps)
        ratio = y_true * inv  # t / (p + eps)
        hess = None
        if hessian:
            hess = np.multiply(ratio, inv, out=inv)
            hess *= k
    grad = np.subtract(one, ratio, out=ratio)
    grad *= k
    return grad, hess
