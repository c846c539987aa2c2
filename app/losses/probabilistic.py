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
    FloatArray,
    clip,
    const,
    dot,
    log_sigmoid,
    log_softmax,
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
    ``miss``, which is ``1 - y_true`` (computed unless the caller has it)."""
    one = const(1.0, y_pred)
    p = clip(y_pred, EPSILON, 1.0 - EPSILON)
    result = np.log(p)
    result *= y_true
    np.subtract(one, p, out=p)
    np.log(p, out=p)
    p *= np.subtract(one, y_true) if miss is None else miss
    result += p
    return result


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
        log_sum = np.log(np.sum(np.exp(shifted, out=shifted), axis=axis, keepdims=True))
        log_prob = (picked - top) - log_sum  # log_softmax at the label
    else:
        with np.errstate(divide="ignore", invalid="ignore"):  # as probabilities_from
            log_prob = np.log(
                clip(picked / np.sum(y_pred, axis=axis, keepdims=True), EPSILON, 1.0 - EPSILON)
            )
    losses = -np.squeeze(log_prob, axis=axis)
    if valid is not None:
        losses = np.where(valid, losses, const(0.0, losses))
    return losses


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
        likelihood = y_true * log_sigmoid(y_pred) + (one - y_true) * log_sigmoid(-y_pred)
    else:
        likelihood = _log_likelihood(y_true, y_pred)
    return -np.mean(likelihood, axis=axis)  # mean(-x) = -mean(x) exactly


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
    y_true = _smooth_binary(y_true, label_smoothing)
    if from_logits:
        y_pred = sigmoid(y_pred)
    one = const(1.0, y_pred)
    miss = np.subtract(one, y_true)
    focal = _log_likelihood(y_true, y_pred, miss)  # -bce
    p_t = np.multiply(y_true, y_pred)
    scratch = np.subtract(one, y_pred)
    scratch *= miss
    p_t += scratch  # y p + (1 - y)(1 - p)
    np.subtract(one, p_t, out=p_t)
    focal *= power(p_t, gamma, out=p_t)
    if apply_class_balancing:
        a = const(alpha, y_pred)
        np.multiply(y_true, a, out=scratch)
        miss *= one - a
        scratch += miss  # y alpha + (1 - y)(1 - alpha)
        focal *= scratch
    return -np.mean(focal, axis=axis)  # mean(-x) = -mean(x) exactly


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
    y_true = _smooth_categorical(y_true, label_smoothing, axis)
    if from_logits:
        y_pred = softmax(y_pred, axis)
    output = probabilities_from(y_pred, axis)
    likelihood = np.log(output)
    likelihood *= y_true  # -cce
    weight = np.subtract(const(1.0, output), output, out=output)
    power(weight, gamma, out=weight)
    weight *= const(alpha, output)
    return -dot(weight, likelihood, axis)  # sum(w * -x) = -sum(w * x) exactly


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
    with np.errstate(invalid="ignore", divide="ignore"):
        log_rate = np.log(y_pred + const(EPSILON, y_pred))
    return np.mean(y_pred - y_true * log_rate, axis=-1)
