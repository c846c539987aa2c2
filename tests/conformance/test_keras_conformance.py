"""lossd against Keras 3 (NumPy backend): every loss, option, sample-weight form and reduction.

The reference is always computed by Keras itself (``keras.losses.<Class>(...)(y_true, y_pred,
sample_weight=...)``), or, where the project deliberately differs from Keras 3.15, by Keras fed
inputs that express the documented formula, or by a float64 derivation written out here. Each
such deviation is named in the test that covers it.

Tolerances: float32 ``rtol=1e-5, atol=1e-6`` (the brief's); float64 ``rtol=1e-10, atol=1e-12``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from unittest import mock

import numpy as np
import pytest

from app.losses import LOSSES, evaluate, resolve
from app.losses.probabilistic import _product_if_hard

keras = pytest.importorskip("keras")
pytestmark = pytest.mark.conformance
from keras.src.backend.common import dtypes as keras_dtypes  # noqa: E402

if keras.backend.backend() != "numpy":  # pragma: no cover - depends on the environment
    pytest.skip("conformance runs against Keras's NumPy backend", allow_module_level=True)

Array = np.ndarray
Options = Mapping[str, Any]
TOL = {
    "float32": {"rtol": 1e-5, "atol": 1e-6},
    "float64": {"rtol": 1e-10, "atol": 1e-12},
}
REDUCTIONS = ("sum_over_batch_size", "sum", "mean_with_sample_weight", "none", "mean")
SHAPES: dict[int, tuple[int, ...]] = {1: (7,), 2: (5, 6), 3: (3, 4, 5), 4: (2, 3, 4, 5)}
WEIGHT_KINDS = ("none", "scalar", "exact", "prefix", "trailing_one")


# ---------------------------------------------------------------------------------------------
# Inputs: each loss gets data in its own domain (probabilities, labels, counts, ...).


def _softmax(x: Array, axis: int) -> Array:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _one_hot(rng: np.random.Generator, shape: tuple[int, ...], axis: int) -> Array:
    moved = list(shape)
    classes = moved.pop(axis % len(shape))
    labels = rng.integers(0, classes, size=tuple(moved))
    return np.moveaxis(np.eye(classes)[labels], -1, axis % len(shape))


def _class_scores(rng: np.random.Generator, shape: tuple[int, ...], o: Options) -> Array:
    """Logits (|x| up to ~6) with from_logits, else rows of probabilities along the class axis."""
    logits = rng.normal(scale=2.0, size=shape)
    return logits if o.get("from_logits") else _softmax(logits, o.get("axis", -1))


def _binary_scores(rng: np.random.Generator, shape: tuple[int, ...], o: Options) -> Array:
    # Keras's NumPy backend is only accurate for small logits (see test_bce_from_logits_*).
    if o.get("from_logits"):
        return rng.uniform(-3.0, 3.0, size=shape)
    return rng.uniform(0.001, 0.999, size=shape)


def _regression(rng: np.random.Generator, shape: tuple[int, ...], o: Options) -> tuple[Array, ...]:
    return rng.normal(size=shape), rng.normal(scale=1.5, size=shape)


def _mape(rng: np.random.Generator, shape: tuple[int, ...], o: Options) -> tuple[Array, ...]:
    y_true = rng.normal(size=shape)
    return y_true, y_true + rng.normal(scale=0.5, size=shape)


def _msle(rng: np.random.Generator, shape: tuple[int, ...], o: Options) -> tuple[Array, ...]:
    # Negative values exercise the max(x, eps) floor.
    return rng.uniform(-0.5, 5.0, size=shape), rng.uniform(-0.5, 5.0, size=shape)


def _hinge(rng: np.random.Generator, shape: tuple[int, ...], o: Options) -> tuple[Array, ...]:
    # Without convert_binary_labels lossd uses labels as given, and Keras 3 does too as long as
    # they are not all 0/1, so {-1, 1} labels compare directly.
    labels = (0.0, 1.0) if o.get("convert_binary_labels") else (-1.0, 1.0)
    return rng.choice(labels, size=shape), rng.normal(size=shape)


def _categorical_hinge(rng: np.random.Generator, shape: tuple[int, ...], o: Options):
    return _one_hot(rng, shape, -1), rng.normal(size=shape)


def _categorical(rng: np.random.Generator, shape: tuple[int, ...], o: Options):
    axis = o.get("axis", -1)
    y_true = _one_hot(rng, shape, axis)
    if len(shape) >= 3:  # soft targets too: rows that are distributions but not one-hot
        y_true = 0.5 * y_true + 0.5 * _softmax(rng.normal(size=shape), axis)
    return y_true, _class_scores(rng, shape, o)


def _sparse(rng: np.random.Generator, shape: tuple[int, ...], o: Options):
    axis = o.get("axis", -1) % len(shape)
    label_shape = shape[:axis] + shape[axis + 1 :]
    labels = rng.integers(0, shape[axis], size=label_shape).astype(np.float64)
    ignore = o.get("ignore_class")
    if ignore is not None:
        labels = np.where(rng.random(label_shape) < 0.3, float(ignore), labels)
    if labels.ndim == 0:  # one sample of classes: Keras takes the label as shape (1,)
        labels = labels.reshape(1)
    return labels, _class_scores(rng, shape, o)


def _binary(rng: np.random.Generator, shape: tuple[int, ...], o: Options):
    y_true = rng.integers(0, 2, size=shape).astype(np.float64)
    if len(shape) == 4:  # soft binary targets
        y_true = rng.uniform(0.0, 1.0, size=shape)
    return y_true, _binary_scores(rng, shape, o)


def _kl(rng: np.random.Generator, shape: tuple[int, ...], o: Options):
    return _softmax(rng.normal(size=shape), -1), _softmax(rng.normal(size=shape), -1)


def _poisson(rng: np.random.Generator, shape: tuple[int, ...], o: Options):
    return rng.poisson(2.0, size=shape).astype(np.float64), rng.uniform(0.05, 4.0, size=shape)


def _overlap(rng: np.random.Generator, shape: tuple[int, ...], o: Options):
    return rng.integers(0, 2, size=shape).astype(np.float64), rng.uniform(0.0, 1.0, size=shape)


GENERATORS: dict[str, Callable[..., tuple[Array, ...]]] = {
    "mean_squared_error": _regression,
    "mean_absolute_error": _regression,
    "mean_absolute_percentage_error": _mape,
    "mean_squared_logarithmic_error": _msle,
    "squared_hinge": _hinge,
    "hinge": _hinge,
    "categorical_hinge": _categorical_hinge,
    "log_cosh": _regression,
    "categorical_crossentropy": _categorical,
    "sparse_categorical_crossentropy": _sparse,
    "binary_crossentropy": _binary,
    "kl_divergence": _kl,
    "poisson": _poisson,
    "cosine_similarity": _regression,
    "huber": _regression,
    "binary_focal_crossentropy": _binary,
    "categorical_focal_crossentropy": _categorical,
    "dice": _overlap,
    "tversky": _overlap,
}


def _seed(*parts: object) -> int:
    """A fixed seed per test case (stable across runs and processes, unlike ``hash``)."""
    return int.from_bytes(repr(parts).encode()[-8:], "little") ^ 0x5EED


def make_inputs(
    name: str, rank: int, options: Options, dtype: str = "float32", seed: int = 0
) -> tuple[Array, Array]:
    rng = np.random.default_rng(seed)
    y_true, y_pred = GENERATORS[name](rng, SHAPES[rank], options)
    return y_true.astype(dtype), y_pred.astype(dtype)


# ---------------------------------------------------------------------------------------------
# The Keras reference.


def keras_kwargs(name: str, options: Options) -> dict[str, Any]:
    """lossd options as Keras constructor arguments."""
    kwargs = dict(options)
    # Keras 3 always converts all-{0,1} hinge labels; our inputs make that explicit instead.
    kwargs.pop("convert_binary_labels", None)
    if name == "tversky":
        # Keras 3.15 weighs false negatives by alpha and false positives by beta (its code swaps
        # the documented roles); lossd follows the documentation, so swap them back here.
        kwargs["alpha"], kwargs["beta"] = options.get("beta", 0.5), options.get("alpha", 0.5)
    if isinstance(kwargs.get("axis"), list):
        kwargs["axis"] = tuple(kwargs["axis"])
    return kwargs


def keras_loss(
    name: str,
    y_true: Array,
    y_pred: Array,
    *,
    options: Options | None = None,
    reduction: str = "none",
    dtype: str = "float32",
    sample_weight: Array | float | None = None,
) -> Array:
    spec = resolve(name)
    cls = getattr(keras.losses, spec.class_name)
    loss = cls(reduction=reduction, dtype=dtype, **keras_kwargs(spec.name, options or {}))
    with keras_precision(dtype), warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return np.asarray(loss(y_true, y_pred, sample_weight=sample_weight))


@contextlib.contextmanager
def keras_precision(dtype: str) -> Iterator[None]:
    """Let Keras really compute in float64 when asked to.

    Keras 3.15's type promotion maps every 64-bit dtype to 32 bits "to be aligned with JAX's
    default behavior" (``BIT64_TO_BIT32_DTYPE``), so each loss function's
    ``ops.convert_to_tensor(y_pred)`` quietly drops a float64 input to float32 and a
    ``dtype="float64"`` loss is computed in float32 (see test_stock_keras_float64_is_float32).
    Emptying that map makes Keras evaluate its own formulas in float64: a float64 reference.
    """
    if dtype != "float64":
        yield
        return
    with mock.patch.object(keras_dtypes, "BIT64_TO_BIT32_DTYPE", {}):
        yield


def make_weights(kind: str, per_sample: tuple[int, ...], dtype: str, seed: int):
    """(ours, Keras's) sample weights of the given kind for per-sample losses of this shape.

    ``prefix`` weights (one per leading index) are lossd's extension: Keras 3's NumPy backend
    would broadcast them against the wrong axes, so Keras gets the explicitly repeated weights.
    """
    rng = np.random.default_rng(seed)
    ndim = len(per_sample)
    if kind == "none":
        return None, None
    if kind == "scalar" or ndim == 0:
        w = np.asarray(rng.uniform(0.2, 2.0), dtype=dtype)
        return w, w
    if kind == "prefix" and ndim >= 2:
        w = rng.uniform(0.0, 2.0, size=per_sample[:1]).astype(dtype)
        expanded = np.broadcast_to(w.reshape(per_sample[:1] + (1,) * (ndim - 1)), per_sample)
        return w, np.ascontiguousarray(expanded)
    w = rng.uniform(0.0, 2.0, size=per_sample).astype(dtype)
    if kind == "trailing_one" and ndim >= 2:  # Keras squeezes a trailing axis of 1 off weights
        return w[..., np.newaxis], w[..., np.newaxis]
    return w, w


# Keras computes log_cosh's log(2) as ops.log(2.0), in float32, even for float64 losses: its
# float64 log_cosh is off by 1.9e-9 (absolute). lossd uses the float64 log 2; see
# test_log_cosh_float64_uses_exact_log2.
FLOAT64_LOG_COSH_ATOL = 5e-9


def assert_close(
    actual: Any, expected: Any, dtype: str = "float32", atol: float | None = None
) -> None:
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"shape {actual.shape} != Keras's {expected.shape}"
    tol = dict(TOL[dtype])
    if atol is not None:
        tol["atol"] = atol
    np.testing.assert_allclose(actual, expected, **tol)


def check_against_keras(
    name: str,
    y_true: Array,
    y_pred: Array,
    *,
    options: Options | None = None,
    reduction: str = "sum_over_batch_size",
    dtype: str = "float32",
    weight_kind: str = "none",
    seed: int = 0,
) -> None:
    """Evaluate with lossd and Keras; compare the weighted per-sample values and the result."""
    options = dict(options or {})
    per_sample = keras_loss(name, y_true, y_pred, options=options, dtype=dtype).shape
    squeeze = resolve(name).name == "cosine_similarity" and y_pred.ndim == 1
    if squeeze:
        # Keras's NumPy-backend normalize shortcut (np.atleast_1d) turns one vector's cosine
        # into shape (1,); ops.normalize (its other backends) and lossd give a scalar.
        per_sample = ()
    ours_w, keras_w = make_weights(weight_kind, per_sample, dtype, seed)
    result = evaluate(
        name,
        y_true,
        y_pred,
        sample_weight=ours_w,
        options=options,
        reduction=reduction,
        dtype=dtype,
    ).result
    assert result.per_sample.dtype == np.dtype(dtype)
    scalar_w = keras_w is not None and np.ndim(keras_w) == 0
    masked = options.get("ignore_class") is not None
    if scalar_w and len(per_sample) and (reduction == "mean_with_sample_weight" or masked):
        # Keras 3.15 divides by the scalar itself under mean_with_sample_weight (returning the
        # plain sum), and raises on a scalar weight combined with the ignore_class mask; lossd
        # weighs every per-sample value by it. Keras gets the weights written out per sample.
        # See test_scalar_weight_mean_with_sample_weight and test_scalar_weight_with_ignore_class.
        keras_w = np.full(per_sample, keras_w, dtype=dtype)
    kw = {"options": options, "dtype": dtype, "sample_weight": keras_w}
    expected_none = keras_loss(name, y_true, y_pred, reduction="none", **kw)
    if squeeze:
        expected_none = expected_none.reshape(())
    tol = FLOAT64_LOG_COSH_ATOL if dtype == "float64" and resolve(name).name == "log_cosh" else None
    assert_close(result.per_sample, expected_none, dtype, atol=tol)
    if reduction == "none":
        assert result.value is None
    else:
        expected = keras_loss(name, y_true, y_pred, reduction=reduction, **kw)
        assert_close(result.value, expected, dtype, atol=tol)


# ---------------------------------------------------------------------------------------------
# 1. Every loss with its defaults: ranks 1-4 x every reduction, the weight form cycling.

LOSS_NAMES = [spec.name for spec in LOSSES]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("rank", [1, 2, 3, 4])
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_defaults_match_keras(name: str, rank: int, reduction: str) -> None:
    kind = WEIGHT_KINDS[(rank + REDUCTIONS.index(reduction)) % len(WEIGHT_KINDS)]
    seed = _seed(name, rank, reduction)
    y_true, y_pred = make_inputs(name, rank, {}, seed=seed)
    check_against_keras(name, y_true, y_pred, reduction=reduction, weight_kind=kind, seed=seed + 1)


# ---------------------------------------------------------------------------------------------
# 2. Every option, on the ranks where it means something.

OPTION_CASES: list[tuple[str, dict[str, Any], int]] = [
    ("categorical_crossentropy", {"from_logits": True}, 2),
    ("categorical_crossentropy", {"from_logits": True}, 3),
    ("categorical_crossentropy", {"label_smoothing": 0.1}, 2),
    ("categorical_crossentropy", {"from_logits": True, "label_smoothing": 0.3}, 4),
    ("categorical_crossentropy", {"axis": 1}, 3),
    ("categorical_crossentropy", {"axis": 0, "from_logits": True}, 2),
    ("categorical_crossentropy", {"axis": -2}, 4),
    ("sparse_categorical_crossentropy", {"from_logits": True}, 2),
    ("sparse_categorical_crossentropy", {"from_logits": True}, 4),
    ("sparse_categorical_crossentropy", {"ignore_class": -1}, 2),
    ("sparse_categorical_crossentropy", {"ignore_class": 255}, 3),
    ("sparse_categorical_crossentropy", {"ignore_class": 0, "from_logits": True}, 3),
    ("binary_crossentropy", {"from_logits": True}, 2),
    ("binary_crossentropy", {"from_logits": True}, 4),
    ("binary_crossentropy", {"label_smoothing": 0.2}, 2),
    ("binary_crossentropy", {"label_smoothing": 1.0}, 3),
    ("binary_crossentropy", {"axis": 0}, 2),
    ("binary_crossentropy", {"axis": 1}, 3),
    ("binary_crossentropy", {"from_logits": True, "label_smoothing": 0.1, "axis": -2}, 3),
    ("binary_focal_crossentropy", {"apply_class_balancing": True}, 2),
    ("binary_focal_crossentropy", {"apply_class_balancing": True, "alpha": 0.6, "gamma": 1.5}, 3),
    ("binary_focal_crossentropy", {"gamma": 0.0}, 2),
    ("binary_focal_crossentropy", {"from_logits": True}, 2),
    ("binary_focal_crossentropy", {"from_logits": True, "gamma": 3.0, "label_smoothing": 0.1}, 3),
    ("binary_focal_crossentropy", {"axis": 0, "apply_class_balancing": True}, 2),
    ("categorical_focal_crossentropy", {"alpha": 0.5}, 2),
    ("categorical_focal_crossentropy", {"gamma": 0.0}, 2),
    ("categorical_focal_crossentropy", {"gamma": 3.5, "alpha": 1.0}, 3),
    ("categorical_focal_crossentropy", {"from_logits": True}, 2),
    ("categorical_focal_crossentropy", {"label_smoothing": 0.2}, 2),
    ("categorical_focal_crossentropy", {"axis": 1, "from_logits": True}, 3),
    ("cosine_similarity", {"axis": 1}, 3),
    ("cosine_similarity", {"axis": -2}, 4),
    ("cosine_similarity", {"axis": 2}, 4),
    ("huber", {"delta": 0.5}, 2),
    ("huber", {"delta": 2.5}, 3),
    ("huber", {"delta": 1e-3}, 2),
    ("hinge", {"convert_binary_labels": True}, 2),
    ("hinge", {"convert_binary_labels": True}, 3),
    ("squared_hinge", {"convert_binary_labels": True}, 2),
    ("squared_hinge", {"convert_binary_labels": True}, 4),
    ("dice", {"axis": 1}, 2),
    ("dice", {"axis": 0}, 2),
    ("dice", {"axis": [1, 2]}, 3),
    ("dice", {"axis": [1, 2, 3]}, 4),
    ("dice", {"axis": -1}, 3),
    ("tversky", {"alpha": 0.7, "beta": 0.3}, 2),
    ("tversky", {"alpha": 0.2, "beta": 0.9, "axis": [1, 2]}, 3),
    ("tversky", {"axis": [1, 2, 3]}, 4),
    ("tversky", {"alpha": 0.0, "beta": 1.0, "axis": 1}, 2),
    ("tversky", {"alpha": 2.0, "beta": 0.5, "axis": [-1]}, 3),
]
OPTION_REDUCTIONS = ("none", "sum_over_batch_size", "sum", "mean_with_sample_weight")


def _case_id(case: tuple[str, dict[str, Any], int]) -> str:
    name, options, rank = case
    return f"{name}-{json.dumps(options, separators=(',', ':'))}-r{rank}"


def test_option_cases_cover_every_option() -> None:
    covered = {key for _, options, _ in OPTION_CASES for key in options}
    declared = {option.name for spec in LOSSES for option in spec.options}
    assert covered == declared


@pytest.mark.parametrize("reduction", OPTION_REDUCTIONS)
@pytest.mark.parametrize("case", OPTION_CASES, ids=_case_id)
def test_options_match_keras(case: tuple[str, dict[str, Any], int], reduction: str) -> None:
    name, options, rank = case
    seed = _seed(name, sorted(options.items()), rank)
    kind = ("none", "exact", "prefix", "scalar")[OPTION_REDUCTIONS.index(reduction)]
    y_true, y_pred = make_inputs(name, rank, options, seed=seed)
    check_against_keras(
        name,
        y_true,
        y_pred,
        options=options,
        reduction=reduction,
        weight_kind=kind,
        seed=seed + 1,
    )


# ---------------------------------------------------------------------------------------------
# 3. float64 requests against Keras computing in float64.

FLOAT64_CASES: list[tuple[str, dict[str, Any], int]] = [(n, {}, 3) for n in LOSS_NAMES] + [
    ("categorical_crossentropy", {"from_logits": True, "label_smoothing": 0.1}, 2),
    ("sparse_categorical_crossentropy", {"from_logits": True, "ignore_class": -1}, 3),
    ("binary_crossentropy", {"from_logits": True}, 2),
    ("binary_focal_crossentropy", {"from_logits": True, "apply_class_balancing": True}, 2),
    ("categorical_focal_crossentropy", {"from_logits": True, "gamma": 1.0}, 4),
    ("huber", {"delta": 0.3}, 2),
    ("tversky", {"alpha": 0.8, "beta": 0.1, "axis": [1, 2]}, 3),
    ("cosine_similarity", {"axis": 1}, 3),
]


@pytest.mark.parametrize("case", FLOAT64_CASES, ids=_case_id)
def test_float64_matches_keras_float64(case: tuple[str, dict[str, Any], int]) -> None:
    name, options, rank = case
    seed = _seed("f64", name, rank)
    y_true, y_pred = make_inputs(name, rank, options, dtype="float64", seed=seed)
    for reduction, kind in (("none", "exact"), ("sum_over_batch_size", "scalar")):
        check_against_keras(
            name,
            y_true,
            y_pred,
            options=options,
            reduction=reduction,
            dtype="float64",
            weight_kind=kind,
            seed=seed,
        )


def test_stock_keras_float64_is_float32() -> None:
    """Why keras_precision exists: unpatched, Keras's float64 MSE equals the float32 one."""
    y_true, y_pred = np.array([[0.1, 0.2, 0.3]]), np.array([[0.3, 0.2, 0.7]])
    stock = np.asarray(keras.losses.MeanSquaredError(dtype="float64")(y_true, y_pred))
    as_float32 = np.mean(np.square(y_true.astype(np.float32) - y_pred.astype(np.float32)))
    exact = np.mean(np.square(y_true - y_pred))
    assert stock == np.float64(as_float32) and stock != exact
    ours = evaluate("mse", y_true, y_pred, dtype="float64").result.value
    assert ours == pytest.approx(exact, rel=1e-15)
    patched = keras_loss("mse", y_true, y_pred, reduction="sum_over_batch_size", dtype="float64")
    assert_close(ours, patched, "float64")


def test_float64_is_computed_in_float64() -> None:
    # 1 + 1e-12 is 1 in float32 but not in float64: the difference must survive.
    y_true, y_pred = np.array([[1.0, 2.0]]), np.array([[1.0 + 1e-12, 2.0]])
    ours = evaluate("mae", y_true, y_pred, dtype="float64").result.value
    expected = keras_loss("mae", y_true, y_pred, reduction="sum_over_batch_size", dtype="float64")
    assert ours is not None and ours > 0
    assert_close(ours, expected, "float64")
    assert evaluate("mae", y_true, y_pred).result.value == 0.0  # float32 rounds it away


# ---------------------------------------------------------------------------------------------
# 4. Edge cases: zeros, exact 0/1 probabilities, large logits, tiny values, all-zero rows.

_ONE_HOT = [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
_EXACT = [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]  # exact 0/1, one row wrong
_HUGE_LOGITS = [[100.0, -100.0, 0.0], [-1e3, 1e3, 5.0], [30.0, 30.0, -30.0]]
_BIN_TRUE = [[0.0, 1.0, 1.0, 0.0], [1.0, 0.0, 1.0, 1.0]]
_BIN_EXACT = [[0.0, 1.0, 0.0, 1.0], [1.0, 1.0, 0.0, 0.0]]
_ZEROS = [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]

EDGE_CASES: list[tuple[str, str, Any, Any, dict[str, Any]]] = [
    ("zeros", "mean_squared_error", _ZEROS, _ZEROS, {}),
    ("zeros", "mean_absolute_error", _ZEROS, _ZEROS, {}),
    ("zeros", "log_cosh", _ZEROS, _ZEROS, {}),
    ("zeros", "huber", _ZEROS, _ZEROS, {}),
    ("zeros", "hinge", _ZEROS, _ZEROS, {}),
    ("zeros", "squared_hinge", _ZEROS, _ZEROS, {}),
    ("zeros", "categorical_hinge", _ZEROS, _ZEROS, {}),
    ("zeros", "kl_divergence", _ZEROS, _ZEROS, {}),
    ("zeros", "poisson", _ZEROS, _ZEROS, {}),
    ("zeros", "mean_squared_logarithmic_error", _ZEROS, _ZEROS, {}),
    ("zeros", "cosine_similarity", _ZEROS, _ZEROS, {}),
    ("zeros", "dice", _ZEROS, _ZEROS, {}),
    ("zeros", "tversky", _ZEROS, _ZEROS, {}),
    ("zeros", "binary_crossentropy", _ZEROS, _ZEROS, {}),
    ("zero-targets", "mean_absolute_percentage_error", _ZEROS, [[1.0, -2.0, 0.0], [0, 3, 0]], {}),
    ("tiny-targets", "mean_absolute_percentage_error", [[1e-9, -3e-8, 2.0]], [[0, 0, 2.5]], {}),
    ("negatives", "mean_squared_logarithmic_error", [[-1.0, 0.0, 2.0]], [[-5.0, 3.0, 0.0]], {}),
    ("exact-0-1", "categorical_crossentropy", _ONE_HOT, _EXACT, {}),
    ("exact-0-1", "categorical_crossentropy", _ONE_HOT, _EXACT, {"label_smoothing": 0.1}),
    ("exact-0-1", "sparse_categorical_crossentropy", [1.0, 0.0, 2.0], _EXACT, {}),
    ("exact-0-1", "binary_crossentropy", _BIN_TRUE, _BIN_EXACT, {}),
    ("exact-0-1", "binary_crossentropy", _BIN_TRUE, _BIN_EXACT, {"label_smoothing": 0.05}),
    ("exact-0-1", "binary_focal_crossentropy", _BIN_TRUE, _BIN_EXACT, {}),
    ("exact-0-1", "binary_focal_crossentropy", _BIN_TRUE, _BIN_EXACT, {"gamma": 0.5}),
    ("exact-0-1", "categorical_focal_crossentropy", _ONE_HOT, _EXACT, {}),
    ("exact-0-1", "kl_divergence", _ONE_HOT, _EXACT, {}),
    ("exact-0-1", "poisson", _ONE_HOT, _EXACT, {}),
    ("exact-0-1", "dice", _BIN_TRUE, _BIN_EXACT, {"axis": 1}),
    ("exact-0-1", "tversky", _BIN_TRUE, _BIN_EXACT, {"axis": 1, "alpha": 0.3, "beta": 0.7}),
    ("large-logits", "categorical_crossentropy", _ONE_HOT, _HUGE_LOGITS, {"from_logits": True}),
    (
        "large-logits",
        "sparse_categorical_crossentropy",
        [0, 0, 2],
        _HUGE_LOGITS,
        {"from_logits": True},
    ),
    (
        "large-logits",
        "categorical_focal_crossentropy",
        _ONE_HOT,
        _HUGE_LOGITS,
        {"from_logits": True},
    ),
    ("large-logits", "binary_focal_crossentropy", _ONE_HOT, _HUGE_LOGITS, {"from_logits": True}),
    ("large-errors", "log_cosh", [[0.0, 0.0, 0.0]], [[100.0, -1e3, 88.0]], {}),
    ("large-errors", "huber", [[0.0, 0.0, 0.0]], [[1e4, -3.0, 0.5]], {"delta": 2.0}),
    ("large-errors", "mean_squared_error", [[0.0, 0.0]], [[1e18, -1e18]], {}),
    ("large-scores", "hinge", [[-1.0, 1.0]], [[1e6, -1e6]], {}),
    ("large-scores", "categorical_hinge", _ONE_HOT, _HUGE_LOGITS, {}),
    ("tiny", "mean_squared_error", [[1e-30, 0.0]], [[0.0, 1e-20]], {}),
    ("tiny", "log_cosh", [[1e-30, 0.0]], [[0.0, 1e-5]], {}),
    ("tiny", "categorical_crossentropy", _ONE_HOT, [[1e-30, 1e-30, 1e-30]] * 3, {}),
    ("tiny", "kl_divergence", [[1e-12, 1.0]], [[1.0, 1e-12]], {}),
    ("tiny", "poisson", [[1.0, 2.0]], [[1e-12, 1e-30]], {}),
    ("tiny", "binary_crossentropy", [[1.0, 0.0]], [[1e-12, 1e-12]], {}),
    (
        "all-zero-row",
        "categorical_crossentropy",
        _ONE_HOT,
        [[0.0] * 3, [0.2, 0.8, 0.0], [1, 1, 1]],
        {},
    ),
    (
        "all-zero-row",
        "categorical_focal_crossentropy",
        _ONE_HOT,
        [[0.0] * 3, [0.5] * 3, [0, 0, 2]],
        {},
    ),
    (
        "all-zero-row",
        "sparse_categorical_crossentropy",
        [1, 0, 2],
        [[0.0] * 3, [0.5] * 3, [0, 0, 2]],
        {},
    ),
    ("all-zero-row", "cosine_similarity", [[0.0, 0.0], [1.0, 2.0]], [[1.0, 1.0], [0.0, 0.0]], {}),
    ("all-zero-row", "kl_divergence", [[0.0, 0.0], [0.5, 0.5]], [[0.3, 0.7], [0.0, 0.0]], {}),
    ("all-zero-row", "dice", [[0.0, 0.0], [1.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]], {"axis": 1}),
    ("all-zero-row", "tversky", [[0.0, 0.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]], {"axis": 1}),
    ("negative-rate", "poisson", [[1.0, 2.0]], [[-0.5, 1.0]], {}),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    ("what", "name", "y_true", "y_pred", "options"),
    EDGE_CASES,
    ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(EDGE_CASES)],
)
def test_edge_cases_match_keras(
    what: str, name: str, y_true: Any, y_pred: Any, options: dict[str, Any], dtype: str
) -> None:
    true, pred = np.asarray(y_true, dtype=dtype), np.asarray(y_pred, dtype=dtype)
    for reduction in ("none", "sum_over_batch_size"):
        check_against_keras(name, true, pred, options=options, reduction=reduction, dtype=dtype)


def test_edge_cases_really_are_edges() -> None:
    """The cases above hit the clipping and the non-finite paths they are named after."""
    cce = evaluate("categorical_crossentropy", _ONE_HOT, _EXACT, reduction="none").result
    # Row 1 puts probability 0 on the true class: clipped to eps, so -log(1e-7) = 16.118 nats.
    np.testing.assert_allclose(cce.per_sample[1], -np.log(np.float32(1e-7)), rtol=1e-5)
    zero_row = evaluate(
        "categorical_crossentropy", _ONE_HOT, [[0.0] * 3, [0.2, 0.8, 0.0], [1, 1, 1]]
    ).result
    assert np.isnan(zero_row.per_sample[0]) and zero_row.non_finite == 1
    assert evaluate("poisson", [[1.0, 2.0]], [[-0.5, 1.0]]).result.non_finite == 1


# ---------------------------------------------------------------------------------------------
# 5. Deliberate differences from Keras 3.15, each against its documented formula.


def test_bce_from_logits_small_logits_match_keras() -> None:
    rng = np.random.default_rng(11)
    y_true = rng.integers(0, 2, size=(64, 8)).astype(np.float32)
    logits = rng.uniform(-3.0, 3.0, size=(64, 8)).astype(np.float32)
    for options in ({"from_logits": True}, {"from_logits": True, "label_smoothing": 0.2}):
        check_against_keras("bce", y_true, logits, options=options, reduction="none")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bce_from_logits_large_logits_exact(dtype: str) -> None:
    """Large logits: lossd uses the exact log-sigmoid; the reference is derived in float64.

    -(y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))) = y softplus(-x) + (1 - y) softplus(x),
    with softplus(x) = logaddexp(0, x).
    """
    x = np.array([[-80.0, -30.0, -8.0, -0.5, 0.0], [0.5, 8.0, 30.0, 80.0, 17.0]])
    y = np.array([[1.0, 1.0, 0.3, 0.0, 1.0], [1.0, 0.0, 0.0, 1.0, 0.9]])
    for smoothing in (0.0, 0.1):
        t = y * (1.0 - smoothing) + 0.5 * smoothing
        expected = np.mean(t * np.logaddexp(0.0, -x) + (1.0 - t) * np.logaddexp(0.0, x), axis=-1)
        ours = evaluate(
            "binary_crossentropy",
            y.astype(dtype),
            x.astype(dtype),
            options={"from_logits": True, "label_smoothing": smoothing},
            reduction="none",
            dtype=dtype,
        ).result.per_sample
        np.testing.assert_allclose(ours, expected, rtol=1e-6 if dtype == "float32" else 1e-12)


def test_bce_from_logits_keras_numpy_backend_saturates() -> None:
    """Why large logits are not compared with Keras: its NumPy backend computes sigmoid(x) in
    float32 and clips it to [eps, 1 - eps], so a logit of -30 for a positive label costs
    -log(1e-7) = 16.1 nats there instead of the true 30 (Keras's JAX/TF/torch backends give 30)."""
    y, x = np.float32([[1.0]]), np.float32([[-30.0]])
    keras_value = keras_loss("bce", y, x, options={"from_logits": True})
    ours = evaluate("bce", y, x, options={"from_logits": True}, reduction="none").result
    np.testing.assert_allclose(keras_value, [16.118095], rtol=1e-5)
    np.testing.assert_allclose(ours.per_sample, [np.logaddexp(0.0, 30.0)], rtol=1e-6)


@pytest.mark.parametrize("name", ["hinge", "squared_hinge"])
def test_hinge_labels_as_given_by_default(name: str) -> None:
    """Default (seed formula, Keras 2): {0, 1} labels are used as given. Hand derivation."""
    rng = np.random.default_rng(5)
    y_true = rng.integers(0, 2, size=(6, 4)).astype(np.float64)
    y_pred = rng.normal(size=(6, 4))
    margin = np.maximum(1.0 - y_true * y_pred, 0.0)
    expected = np.mean(margin if name == "hinge" else margin**2, axis=-1)
    ours = evaluate(name, y_true, y_pred, reduction="none").result.per_sample
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)
    # Keras 3 converts these labels; with the option, so do we.
    converted = evaluate(
        name, y_true, y_pred, reduction="none", options={"convert_binary_labels": True}
    ).result.per_sample
    assert_close(converted, keras_loss(name, y_true.astype(np.float32), y_pred.astype(np.float32)))
    assert not np.allclose(converted, ours)


@pytest.mark.parametrize("labels", [(-1.0, 1.0), (0.0, 1.0, 2.0), (0.0, 0.5, 1.0)])
def test_hinge_conversion_only_for_all_binary_labels(labels: tuple[float, ...]) -> None:
    """Keras converts only when *every* label is 0 or 1; otherwise labels stay as given."""
    rng = np.random.default_rng(6)
    y_true = rng.choice(labels, size=(5, 4)).astype(np.float32)
    y_true[0, : len(labels)] = labels  # every label value appears
    y_pred = rng.normal(size=(5, 4)).astype(np.float32)
    for name in ("hinge", "squared_hinge"):
        for convert in (False, True):
            check_against_keras(
                name,
                y_true,
                y_pred,
                options={"convert_binary_labels": convert},
                reduction="none",
            )


def test_tversky_alpha_weighs_false_positives() -> None:
    """lossd's alpha multiplies FP = sum((1 - y) p) as documented; Keras 3.15's code multiplies
    FN by alpha, so lossd(alpha=a, beta=b) == Keras(alpha=b, beta=a). Hand derivation too."""
    y_true = np.float32([[1, 1, 0, 0], [1, 0, 0, 0]])
    y_pred = np.float32([[1.0, 0.0, 1.0, 1.0], [0.5, 0.5, 0.0, 0.0]])
    ours = evaluate(
        "tversky", y_true, y_pred, options={"alpha": 1.0, "beta": 0.0, "axis": 1}, reduction="none"
    ).result.per_sample
    # Row 0: TP 1, FP 2, FN 1 -> 1 - 1/(1 + 2) ; row 1: TP .5, FP .5, FN .5 -> 1 - .5/1.
    np.testing.assert_allclose(ours, [2 / 3, 0.5], rtol=1e-6)
    keras_swapped = np.asarray(
        keras.losses.Tversky(alpha=0.0, beta=1.0, axis=1, reduction="none")(y_true, y_pred)
    )
    assert_close(ours, keras_swapped)
    keras_unswapped = np.asarray(
        keras.losses.Tversky(alpha=1.0, beta=0.0, axis=1, reduction="none")(y_true, y_pred)
    )
    assert not np.allclose(ours, keras_unswapped)  # the swap is real in this Keras version


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cosine_similarity_axis_0(dtype: str) -> None:
    """Keras 3.15's NumPy backend takes a shortcut for ndarray input (``keras.utils.normalize``)
    that replaces axis 0 by -1 (``axis = axis or -1``): it then raises or normalises the wrong
    axis. Its other backends use ``ops.normalize``. lossd computes the cosine along axis 0; the
    reference is Keras along the last axis of the transposed tensors, and a float64 formula."""
    rng = np.random.default_rng(7)
    y_true = rng.normal(size=(4, 3, 2)).astype(dtype)
    y_pred = rng.normal(size=(4, 3, 2)).astype(dtype)
    ours = evaluate(
        "cosine", y_true, y_pred, options={"axis": 0}, reduction="none", dtype=dtype
    ).result.per_sample
    moved = keras_loss(
        "cosine", np.moveaxis(y_true, 0, -1), np.moveaxis(y_pred, 0, -1), dtype=dtype
    )
    assert_close(ours, moved, dtype)
    t, p = y_true.astype(np.float64), y_pred.astype(np.float64)
    formula = -np.sum(t * p, axis=0) / np.sqrt(np.sum(t * t, axis=0) * np.sum(p * p, axis=0))
    np.testing.assert_allclose(ours, formula, **TOL[dtype])
    square = rng.normal(size=(4, 4)).astype(dtype)  # broadcastable: Keras silently goes wrong
    keras_axis0 = keras_loss("cosine", square, square * 2, options={"axis": 0}, dtype=dtype)
    ours_square = evaluate(
        "cosine", square, square * 2, options={"axis": 0}, reduction="none", dtype=dtype
    ).result.per_sample
    np.testing.assert_allclose(ours_square, -np.ones(4), **TOL[dtype])  # parallel columns
    assert not np.allclose(keras_axis0, -np.ones(4))


@pytest.mark.parametrize("name", ["binary_crossentropy", "binary_focal_crossentropy"])
@pytest.mark.parametrize(
    "labels",
    ["hard", "soft_after_the_first_300", "soft_everywhere", "out_of_range"],
)
def test_binary_likelihood_takes_the_one_log_path_only_for_hard_labels(
    name: str, labels: str
) -> None:
    """Labels all exactly 0 or 1 take one log per element (probabilistic._log_likelihood);
    a single soft label anywhere, even past the first ones checked, takes Keras's two logs.
    Both agree with Keras, and hard labels give exactly the elementwise formula's bits."""
    rng = np.random.default_rng(23)
    y_true = rng.integers(0, 2, size=(40, 30)).astype(np.float32)
    if labels == "soft_after_the_first_300":
        y_true[35, 7] = 0.3
    elif labels == "soft_everywhere":
        y_true = rng.uniform(0, 1, size=y_true.shape).astype(np.float32)
    elif labels == "out_of_range":
        y_true[20, 0] = 2.0
    y_pred = rng.uniform(0, 1, size=y_true.shape).astype(np.float32)
    y_pred[0, :4] = [0.0, 1.0, 1e-9, 1 - 1e-9]  # clipped to [eps, 1 - eps]
    # the path taken: one log only for hard labels (both give these bits for hard labels)
    one_log = _product_if_hard(y_true, np.float32(1) - y_true) is not None
    assert one_log == (labels == "hard")
    check_against_keras(name, y_true, y_pred, reduction="none")
    if name == "binary_crossentropy":
        p = np.clip(y_pred, np.float32(1e-7), np.float32(1 - 1e-7))
        one = np.float32(1)
        by_hand = -np.mean(y_true * np.log(p) + (one - y_true) * np.log(one - p), axis=-1)
        ours = evaluate(name, y_true, y_pred, reduction="none").result.per_sample
        if labels == "hard":
            np.testing.assert_array_equal(ours, by_hand)
        else:
            np.testing.assert_allclose(ours, by_hand, rtol=1e-6)


def test_cosine_similarity_tiny_vectors_follow_ops_normalize() -> None:
    """For vectors with norm below eps, ``ops.normalize`` (Keras's JAX/TF/torch path) caps
    1/norm at 1/eps, so the cosine shrinks towards 0; the NumPy backend's ndarray shortcut
    divides by the norm instead. lossd follows ops.normalize: float64 derivation here, and
    Keras on JAX in test_keras_jax_backend_agrees."""
    y_true = np.float32([[1e-9, 1e-9, 1e-9], [3.0, 4.0, 0.0], [2e-8, 0.0, 0.0]])
    y_pred = np.float32([[2e-9, 2e-9, 2e-9], [3.0, 4.0, 0.0], [1.0, 0.0, 0.0]])

    def normalize(x: Array) -> Array:
        x = x.astype(np.float64)
        return x * np.minimum(1.0 / np.sqrt(np.sum(x * x, -1, keepdims=True)), 1e7)

    expected = -np.sum(normalize(y_true) * normalize(y_pred), axis=-1)
    ours = evaluate("cosine", y_true, y_pred, reduction="none").result.per_sample
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(expected, [-6e-4, -1.0, -0.2], rtol=1e-5)


@pytest.mark.parametrize("name", ["categorical_crossentropy", "categorical_focal_crossentropy"])
def test_label_smoothing_with_class_axis_not_last(name: str) -> None:
    """Keras 3.15 smooths with ``label_smoothing / shape[-1]`` even when ``axis`` names another
    class axis, so its smoothed targets do not sum to 1. lossd divides by the size of the class
    axis (the documented ``s / num_classes``); the reference is Keras given the targets smoothed
    that way and label_smoothing=0."""
    options = {"axis": 1, "label_smoothing": 0.2}
    y_true, y_pred = make_inputs(name, 3, options, seed=9)  # (3, 4, 5), 4 classes on axis 1
    smoothed = (y_true * 0.8 + 0.2 / 4).astype(np.float32)
    for reduction in ("none", "sum"):
        ours = evaluate(name, y_true, y_pred, options=options, reduction=reduction).result
        expected = keras_loss(name, smoothed, y_pred, options={"axis": 1}, reduction=reduction)
        assert_close(ours.per_sample if reduction == "none" else ours.value, expected)
    keras_own = keras_loss(name, y_true, y_pred, options=options)
    assert not np.allclose(keras_own, keras_loss(name, smoothed, y_pred, options={"axis": 1}))


@pytest.mark.parametrize("options", [{"axis": 1}, {"axis": 0, "ignore_class": 2}, {"axis": -3}])
def test_sparse_class_axis_not_last(options: dict[str, Any]) -> None:
    """Keras's NumPy backend rejects a sparse class axis other than the last (it checks
    ``target.shape == output.shape[:-1]``); the reference is Keras on the tensors with the class
    axis moved last, which is what the option means."""
    rank = 3
    y_true, y_pred = make_inputs("sparse_categorical_crossentropy", rank, options, seed=12)
    axis = options["axis"]
    keras_options = {k: v for k, v in options.items() if k != "axis"}
    moved = np.moveaxis(y_pred, axis, -1)
    for reduction in ("none", "sum_over_batch_size", "sum"):
        ours = evaluate(
            "sparse_categorical_crossentropy",
            y_true,
            y_pred,
            options=options,
            reduction=reduction,
        ).result
        expected = keras_loss(
            "sparse_categorical_crossentropy",
            y_true,
            moved,
            options=keras_options,
            reduction=reduction,
        )
        assert_close(ours.per_sample if reduction == "none" else ours.value, expected)


# ---------------------------------------------------------------------------------------------
# 6. ignore_class and sample weights in detail.


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "mean_with_sample_weight"])
def test_ignore_class_mask_is_honoured_by_keras_and_us(reduction: str) -> None:
    """Keras's NumPy backend keeps the ignore_class mask (set_keras_mask stores it by id for
    ndarrays), so ignored samples are left out of the mean there too; checked against a hand
    mean over the valid samples as well."""
    y_pred = np.float32([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.2, 0.2, 0.6]])
    y_true = np.float32([0, -1, 2, -1])
    options = {"ignore_class": -1}
    ours = evaluate(
        "sparse_categorical_crossentropy", y_true, y_pred, options=options, reduction=reduction
    ).result
    expected = keras_loss(
        "sparse_categorical_crossentropy", y_true, y_pred, options=options, reduction=reduction
    )
    assert_close(ours.value, expected)
    valid = -np.log([0.7, 0.4])
    hand = valid.sum() if reduction == "sum" else valid.mean()
    np.testing.assert_allclose(ours.value, hand, rtol=1e-6)
    np.testing.assert_allclose(ours.per_sample, [valid[0], 0.0, valid[1], 0.0], rtol=1e-6)


def test_ignore_class_everything_ignored_gives_zero() -> None:
    y_pred = np.float32([[0.5, 0.5], [0.1, 0.9]])
    y_true = np.float32([3, 3])
    options = {"ignore_class": 3}
    for reduction in ("sum_over_batch_size", "sum", "mean_with_sample_weight"):
        ours = evaluate(
            "sparse_categorical_crossentropy", y_true, y_pred, options=options, reduction=reduction
        ).result
        expected = keras_loss(
            "sparse_categorical_crossentropy", y_true, y_pred, options=options, reduction=reduction
        )
        assert ours.value == 0.0
        assert_close(ours.value, expected)


@pytest.mark.parametrize("kind", ["scalar", "exact", "prefix", "trailing_one"])
@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "mean_with_sample_weight"])
@pytest.mark.parametrize("name", ["mse", "categorical_crossentropy", "binary_crossentropy"])
def test_sample_weight_forms(name: str, reduction: str, kind: str) -> None:
    """Rank-4 inputs give (2, 3, 4) per-sample losses: every weight form applies."""
    full = resolve(name).name
    y_true, y_pred = make_inputs(full, 4, {}, seed=_seed("w", name))
    check_against_keras(
        name, y_true, y_pred, reduction=reduction, weight_kind=kind, seed=_seed(kind, reduction)
    )


def test_sample_weight_rank_one_losses_with_column_weights() -> None:
    """(batch,) losses with (batch, 1) weights: Keras expands the losses to (batch, 1); lossd
    keeps the per-sample shape. Values and reductions agree."""
    rng = np.random.default_rng(3)
    y_true, y_pred = rng.normal(size=(6, 4)).astype(np.float32), rng.normal(size=(6, 4))
    y_pred = y_pred.astype(np.float32)
    w = rng.uniform(0, 2, size=(6, 1)).astype(np.float32)
    for reduction in ("none", "sum", "mean_with_sample_weight", "sum_over_batch_size"):
        ours = evaluate("mse", y_true, y_pred, sample_weight=w, reduction=reduction).result
        expected = keras_loss("mse", y_true, y_pred, sample_weight=w, reduction=reduction)
        if reduction == "none":
            assert expected.shape == (6, 1) and ours.per_sample.shape == (6,)
            assert_close(ours.per_sample, expected[:, 0])
        else:
            assert_close(ours.value, expected)


def test_scalar_weight_mean_with_sample_weight() -> None:
    """A scalar weight is the weight of every per-sample value, so mean_with_sample_weight is
    sum(w * loss) / (n * w) = the mean. Keras 3.15 divides by the scalar alone and so returns the
    plain sum; lossd gives what Keras gives for the same weights written out per sample."""
    y_true, y_pred = np.float32([[1.0, 2.0], [3.0, 4.0], [0.0, 0.0]]), np.float32([[0.0] * 2] * 3)
    ours = evaluate(
        "mae", y_true, y_pred, sample_weight=2.0, reduction="mean_with_sample_weight"
    ).result
    per_sample_weights = np.full(3, 2.0, np.float32)
    expected = keras_loss(
        "mae", y_true, y_pred, sample_weight=per_sample_weights, reduction="mean_with_sample_weight"
    )
    assert_close(ours.value, expected)
    np.testing.assert_allclose(ours.value, (1.5 + 3.5 + 0.0) / 3, rtol=1e-6)  # by hand
    keras_scalar = keras_loss(
        "mae", y_true, y_pred, sample_weight=np.float32(2.0), reduction="mean_with_sample_weight"
    )
    np.testing.assert_allclose(keras_scalar, 1.5 + 3.5, rtol=1e-6)  # Keras's quirk, documented


def test_scalar_weight_with_ignore_class() -> None:
    """Keras 3.15 raises on a scalar sample_weight plus the ignore_class mask (an in-place
    ``sample_weight *= float_mask`` on a 0-d array); lossd weighs each sample by it."""
    y_pred = np.float32([[0.7, 0.3], [0.4, 0.6], [0.5, 0.5]])
    y_true = np.float32([0, -1, 1])
    options = {"ignore_class": -1}
    with pytest.raises(ValueError, match="non-broadcastable"):
        keras_loss("sparse_categorical_crossentropy", y_true, y_pred, options=options,
                   reduction="sum", sample_weight=np.float32(2.0))  # fmt: skip
    for reduction in ("sum", "sum_over_batch_size", "mean_with_sample_weight"):
        ours = evaluate(
            "sparse_categorical_crossentropy",
            y_true,
            y_pred,
            options=options,
            sample_weight=2.0,
            reduction=reduction,
        ).result
        expected = keras_loss(
            "sparse_categorical_crossentropy",
            y_true,
            y_pred,
            options=options,
            reduction=reduction,
            sample_weight=np.full(3, 2.0, np.float32),
        )
        assert_close(ours.value, expected)
    hand = 2.0 * -(np.log(0.7) + np.log(0.5))
    np.testing.assert_allclose(ours.value, hand / 4.0, rtol=1e-6)  # divided by the weight sum


def test_log_cosh_float64_uses_exact_log2() -> None:
    """In float64 lossd's log_cosh is log(cosh(x)) to float64 precision (derived with np.cosh,
    fine for these |x|); Keras's differs by its float32 log(2) = 0.69314718246..."""
    x = np.array([[0.0, 1e-5, 0.3, -2.0, 20.0]])
    ours = evaluate("log_cosh", np.zeros_like(x), x, dtype="float64", reduction="none").result
    np.testing.assert_allclose(ours.per_sample, np.mean(np.log(np.cosh(x)), -1), rtol=1e-12)
    keras_value = keras_loss("log_cosh", np.zeros_like(x), x, dtype="float64")
    offset = float(np.float32(np.log(np.float32(2.0)))) - np.log(2.0)
    np.testing.assert_allclose(keras_value - ours.per_sample, -offset, rtol=1e-6)


def test_zero_weights_mean_with_sample_weight_is_zero() -> None:
    y_true, y_pred = np.float32([[1.0, 2.0], [3.0, 4.0]]), np.float32([[0.0, 0.0], [0.0, 1.0]])
    w = np.float32([0.0, 0.0])
    ours = evaluate("mae", y_true, y_pred, sample_weight=w, reduction="mean_with_sample_weight")
    expected = keras_loss(
        "mae", y_true, y_pred, sample_weight=w, reduction="mean_with_sample_weight"
    )
    assert ours.result.value == 0.0  # Keras's divide_no_nan
    assert_close(ours.result.value, expected)


def test_trailing_one_alignment_of_y_true() -> None:
    """(batch,) targets against (batch, 1) predictions: Keras's squeeze_or_expand rule."""
    y_true = np.float32([0.0, 1.0, 1.0, 0.0])
    y_pred = np.float32([[0.2], [0.7], [0.4], [0.1]])
    for name in ("mse", "binary_crossentropy", "huber", "log_cosh", "mape"):
        check_against_keras(name, y_true, y_pred, reduction="none")
        check_against_keras(name, y_pred, y_true, reduction="sum_over_batch_size")


# ---------------------------------------------------------------------------------------------
# 7. A second opinion: Keras on its JAX backend for the cases the NumPy backend gets wrong.

_JAX_SCRIPT = """
import json, sys
import numpy as np
import keras
cases = json.load(sys.stdin)
out = []
for name, kwargs, y_true, y_pred in cases:
    fn = getattr(keras.losses, name)
    value = fn(np.asarray(y_true, "float32"), np.asarray(y_pred, "float32"), **kwargs)
    out.append(np.asarray(value, "float64").tolist())
print(json.dumps(out))
"""


def test_keras_jax_backend_agrees() -> None:
    """Large-logit BCE, cosine of tiny vectors and along axis 0: Keras 3 on JAX (which uses
    log_sigmoid and ops.normalize) gives lossd's numbers."""
    pytest.importorskip("jax")
    big = [[-80.0, -30.0, -8.0, 0.0, 8.0, 30.0, 80.0]]
    labels = [[1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0]]
    tiny_t = [[1e-9, 1e-9, 1e-9], [3.0, 4.0, 0.0], [2e-8, 0.0, 0.0]]
    tiny_p = [[2e-9, 2e-9, 2e-9], [3.0, 4.0, 0.0], [1.0, 0.0, 0.0]]
    rng = np.random.default_rng(13)
    col_t, col_p = rng.normal(size=(4, 3)).tolist(), rng.normal(size=(4, 3)).tolist()
    cases = [
        ("binary_crossentropy", {"from_logits": True}, labels, big),
        ("cosine_similarity", {}, tiny_t, tiny_p),
        ("cosine_similarity", {"axis": 0}, col_t, col_p),
    ]
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-c", _JAX_SCRIPT],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    expected = json.loads(proc.stdout.strip().splitlines()[-1])
    for (name, kwargs, y_true, y_pred), keras_jax in zip(cases, expected, strict=True):
        ours = evaluate(name, y_true, y_pred, options=kwargs, reduction="none").result
        np.testing.assert_allclose(ours.per_sample, keras_jax, rtol=1e-5, atol=1e-6)
