"""lossd's analytic derivatives against JAX autodiff of Keras 3's own losses, in float64.

One command runs everything (``make test`` -> ``pytest``, with ``KERAS_BACKEND=numpy`` for the
conformance suite), yet Keras fixes its backend per process. So this module builds every case
here, writes them to one ``.npz`` file, and runs :mod:`tests.derivatives.jax_reference` once, in
a subprocess with ``KERAS_BACKEND=jax`` and ``jax_enable_x64`` (the ``reference`` fixture); the
tests then compare lossd's float64 gradient and Hessian diagonal with it, case by case, to
``rtol=1e-6`` (``atol`` 1e-9 relative to the largest reference element), and lossd's float32
answers with its float64 ones (looser).

The reference differentiates Keras's loss *object* (``keras.losses.<Class>(reduction=...)``),
so weights and reductions are Keras's too. Where lossd deliberately differs from Keras 3.15
(README, "The losses"), Keras is given inputs that express lossd's formula, as in
``tests/conformance``: weights written out per sample, tversky's ``alpha``/``beta`` swapped back,
hinge labels already in {-1, 1} unless ``convert_binary_labels`` (then {0, 1}, which Keras
always converts). Points are random and interior: off the kinks (MAE at 0, hinge at the margin,
huber at delta) and off the clip boundaries, where the derivative is a convention
(docs/derivatives.md).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.losses import LOSSES, evaluate, resolve

# The first test waits for the reference (~100 s on 2 cores): past pytest-timeout's default 300 s
# on a slower machine, so this module allows more.
pytestmark = [pytest.mark.conformance, pytest.mark.slow, pytest.mark.timeout(1200)]

if importlib.util.find_spec("jax") is None or importlib.util.find_spec("keras") is None:
    pytest.skip("needs the conformance extra (keras, jax)", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
Array = np.ndarray
SHAPES: dict[int, tuple[int, ...]] = {1: (6,), 2: (4, 5), 3: (2, 3, 4), 4: (2, 2, 3, 3)}
REDUCTIONS = ("sum_over_batch_size", "sum", "mean_with_sample_weight", "none", "mean")
WEIGHT_KINDS = ("none", "exact", "scalar", "prefix", "trailing_one")
RTOL, ATOL = 1e-6, 1e-9


@dataclass(frozen=True)
class Case:
    name: str
    rank: int
    reduction: str
    weights: str = "none"
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        opts = json.dumps(self.options, separators=(",", ":")) if self.options else ""
        return f"{self.name}{opts}-r{self.rank}-{self.reduction}-w{self.weights}"

    @property
    def seed(self) -> int:
        return int.from_bytes(self.id.encode()[-8:], "little") % 2**32


# ---------------------------------------------------------------------------------------------
# Inputs, in each loss's domain, away from kinks and clip boundaries.


def _softmax(x: Array, axis: int) -> Array:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _one_hot(rng: np.random.Generator, shape: tuple[int, ...], axis: int) -> Array:
    moved = list(shape)
    classes = moved.pop(axis % len(shape))
    labels = rng.integers(0, classes, size=tuple(moved))
    return np.moveaxis(np.eye(classes)[labels], -1, axis % len(shape))


def make_inputs(case: Case) -> tuple[Array, Array]:
    rng = np.random.default_rng(case.seed)
    shape, o, name = SHAPES[case.rank], case.options, resolve(case.name).name
    axis = o.get("axis", -1)
    logits = o.get("from_logits", False)
    if name in ("mean_squared_error", "mean_absolute_error", "log_cosh", "huber"):
        return rng.normal(size=shape), rng.normal(scale=1.5, size=shape)
    if name == "cosine_similarity":
        return rng.normal(size=shape), rng.normal(scale=1.5, size=shape)
    if name == "mean_absolute_percentage_error":
        t = rng.normal(size=shape)
        return t, t + rng.normal(scale=0.5, size=shape)
    if name == "mean_squared_logarithmic_error":  # below eps too: the max(x, eps) floor
        return rng.uniform(-0.5, 5.0, size=shape), rng.uniform(-0.5, 5.0, size=shape)
    if name in ("hinge", "squared_hinge"):
        labels = (0.0, 1.0) if o.get("convert_binary_labels") else (-1.0, 1.0)
        return rng.choice(labels, size=shape), rng.normal(size=shape)
    if name == "categorical_hinge":
        return _one_hot(rng, shape, -1), rng.normal(size=shape)
    if name in ("categorical_crossentropy", "categorical_focal_crossentropy"):
        t = _one_hot(rng, shape, axis)
        if case.rank >= 3:  # soft targets
            t = 0.5 * t + 0.5 * _softmax(rng.normal(size=shape), axis)
        scores = rng.normal(scale=2.0, size=shape)
        if logits:
            return t, scores
        # Unnormalised probabilities: the loss divides by their sum first.
        return t, _softmax(scores, axis) * rng.uniform(0.5, 2.0, size=shape)
    if name == "sparse_categorical_crossentropy":
        ax = axis % len(shape)
        label_shape = shape[:ax] + shape[ax + 1 :]
        labels = rng.integers(0, shape[ax], size=label_shape).astype(np.float64)
        if o.get("ignore_class") is not None:
            labels = np.where(rng.random(label_shape) < 0.3, float(o["ignore_class"]), labels)
        if labels.ndim == 0:  # one sample of classes: the label as shape (1,)
            labels = labels.reshape(1)
        scores = rng.normal(scale=2.0, size=shape)
        return labels, scores if logits else _softmax(scores, axis) * rng.uniform(0.5, 2.0)
    if name in ("binary_crossentropy", "binary_focal_crossentropy"):
        t = rng.integers(0, 2, size=shape).astype(np.float64)
        if case.rank >= 3:
            t = rng.uniform(0.0, 1.0, size=shape)
        if logits:
            return t, rng.uniform(-6.0, 6.0, size=shape)
        return t, rng.uniform(0.001, 0.999, size=shape)
    if name == "kl_divergence":  # some y_pred above 1: the clip to [eps, 1]
        t = _softmax(rng.normal(size=shape), -1)
        return t, _softmax(rng.normal(size=shape), -1) * rng.uniform(0.5, 3.0, size=shape)
    if name == "poisson":
        return rng.poisson(2.0, size=shape).astype(np.float64), rng.uniform(0.05, 4.0, size=shape)
    if name in ("dice", "tversky"):
        return rng.integers(0, 2, size=shape).astype(np.float64), rng.uniform(0, 1, size=shape)
    raise AssertionError(f"no inputs for {name}")


def make_weights(case: Case, per_sample: tuple[int, ...]) -> tuple[Array | None, Array | None]:
    """(lossd's, Keras's) sample weights; Keras gets them written out per sample."""
    rng = np.random.default_rng(case.seed + 1)
    kind, ndim = case.weights, len(per_sample)
    if kind == "none":
        return None, None
    if kind == "scalar" or ndim == 0:
        w = np.asarray(rng.uniform(0.2, 2.0))
        return w, np.full(per_sample, w)
    if kind == "prefix" and ndim >= 2:
        w = rng.uniform(0.0, 2.0, size=per_sample[:1])
        return w, np.broadcast_to(w.reshape(per_sample[:1] + (1,) * (ndim - 1)), per_sample)
    w = rng.uniform(0.0, 2.0, size=per_sample)
    if kind == "trailing_one":
        return w[..., np.newaxis], w
    return w, w


def keras_spec(case: Case) -> dict[str, Any]:
    kwargs = dict(case.options)
    kwargs.pop("convert_binary_labels", None)
    name = resolve(case.name).name
    if name == "tversky":  # Keras 3.15 swaps the documented roles (README)
        kwargs["alpha"], kwargs["beta"] = (
            case.options.get("beta", 0.5),
            case.options.get("alpha", 0.5),
        )
    if isinstance(kwargs.get("axis"), list):
        kwargs["axis"] = tuple(kwargs["axis"])
    spec = {"class_name": resolve(name).class_name, "kwargs": kwargs, "reduction": case.reduction}
    if name == "sparse_categorical_crossentropy" and kwargs.get("axis", -1) % case.rank != (
        case.rank - 1
    ):
        # Keras's JAX backend takes sparse labels against a last class axis only: the reference
        # moves lossd's class axis last inside the differentiated function.
        spec["move_axis"] = kwargs.pop("axis")
    return spec


def lossd(case: Case, dtype: str = "float64") -> Any:
    y_true, y_pred = make_inputs(case)
    per_sample = evaluate(case.name, y_true, y_pred, options=case.options, reduction="none")
    weights, _ = make_weights(case, per_sample.result.per_sample.shape)
    return evaluate(
        case.name,
        y_true,
        y_pred,
        sample_weight=weights,
        options=case.options,
        reduction=case.reduction,
        dtype=dtype,
        gradient=True,
        hessian_diagonal=True,
    )


# ---------------------------------------------------------------------------------------------
# The cases: every loss with its defaults (ranks 1-3, every reduction, the weight form
# cycling), then every option.

NAMES = [spec.name for spec in LOSSES]
#: The case checked against a hand derivation (test_reference_is_float64_exact).
HAND_CASE = Case("mean_squared_error", 2, "sum_over_batch_size", "none")
CASES: list[Case] = [HAND_CASE]
for _name in NAMES:
    for _rank, _reductions in ((2, REDUCTIONS), (1, REDUCTIONS[:2]), (3, REDUCTIONS[2:4])):
        for _reduction in _reductions:
            _k = (NAMES.index(_name) + _rank + REDUCTIONS.index(_reduction)) % len(WEIGHT_KINDS)
            if Case(_name, _rank, _reduction, WEIGHT_KINDS[_k]) != HAND_CASE:
                CASES.append(Case(_name, _rank, _reduction, WEIGHT_KINDS[_k]))

OPTION_CASES: list[tuple[str, dict[str, Any], int]] = [
    ("categorical_crossentropy", {"from_logits": True}, 2),
    ("categorical_crossentropy", {"from_logits": True}, 3),
    ("categorical_crossentropy", {"label_smoothing": 0.1}, 2),
    ("categorical_crossentropy", {"from_logits": True, "label_smoothing": 0.3}, 3),
    ("categorical_crossentropy", {"axis": 1}, 3),
    ("categorical_crossentropy", {"axis": 0, "from_logits": True}, 2),
    ("sparse_categorical_crossentropy", {"from_logits": True}, 2),
    ("sparse_categorical_crossentropy", {"from_logits": True}, 3),
    ("sparse_categorical_crossentropy", {"ignore_class": -1}, 2),
    ("sparse_categorical_crossentropy", {"ignore_class": 0, "from_logits": True}, 3),
    ("sparse_categorical_crossentropy", {"axis": 1}, 3),
    ("binary_crossentropy", {"from_logits": True}, 2),
    ("binary_crossentropy", {"from_logits": True}, 3),
    ("binary_crossentropy", {"label_smoothing": 0.2}, 2),
    ("binary_crossentropy", {"axis": 0}, 2),
    ("binary_crossentropy", {"from_logits": True, "label_smoothing": 0.1, "axis": -2}, 3),
    ("binary_focal_crossentropy", {"apply_class_balancing": True}, 2),
    ("binary_focal_crossentropy", {"apply_class_balancing": True, "alpha": 0.6, "gamma": 1.5}, 3),
    ("binary_focal_crossentropy", {"gamma": 0.0}, 2),
    ("binary_focal_crossentropy", {"gamma": 1.0}, 2),
    ("binary_focal_crossentropy", {"from_logits": True}, 2),
    ("binary_focal_crossentropy", {"from_logits": True, "gamma": 3.0, "label_smoothing": 0.1}, 3),
    ("binary_focal_crossentropy", {"axis": 0, "apply_class_balancing": True}, 2),
    ("categorical_focal_crossentropy", {"alpha": 0.5}, 2),
    ("categorical_focal_crossentropy", {"gamma": 0.0}, 2),
    ("categorical_focal_crossentropy", {"gamma": 1.0}, 2),
    ("categorical_focal_crossentropy", {"gamma": 3.5, "alpha": 1.0}, 3),
    ("categorical_focal_crossentropy", {"from_logits": True}, 2),
    ("categorical_focal_crossentropy", {"from_logits": True, "gamma": 1.5}, 3),
    ("categorical_focal_crossentropy", {"label_smoothing": 0.2}, 2),
    ("categorical_focal_crossentropy", {"axis": 1, "from_logits": True}, 3),
    ("cosine_similarity", {"axis": 1}, 3),
    ("cosine_similarity", {"axis": 0}, 2),
    ("huber", {"delta": 0.5}, 2),
    ("huber", {"delta": 2.5}, 3),
    ("hinge", {"convert_binary_labels": True}, 2),
    ("squared_hinge", {"convert_binary_labels": True}, 3),
    ("dice", {"axis": 1}, 2),
    ("dice", {"axis": 0}, 2),
    ("dice", {"axis": [1, 2]}, 3),
    ("dice", {"axis": -1}, 3),
    ("tversky", {"alpha": 0.7, "beta": 0.3}, 2),
    ("tversky", {"alpha": 0.2, "beta": 0.9, "axis": [1, 2]}, 3),
    ("tversky", {"alpha": 0.0, "beta": 1.0, "axis": 1}, 2),
    ("tversky", {"alpha": 2.0, "beta": 0.5, "axis": [-1]}, 4),
]
for _i, (_name, _options, _rank) in enumerate(OPTION_CASES):
    for _j, _reduction in enumerate(("sum_over_batch_size", "none", "mean_with_sample_weight")):
        _kind = ("prefix", "exact", "scalar")[(_i + _j) % 3]
        CASES.append(Case(_name, _rank, _reduction, _kind, _options))


# ---------------------------------------------------------------------------------------------
# The reference, computed once in a JAX-backend subprocess.


@pytest.fixture(scope="module")
def reference(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Array]]:
    """The JAX reference for every case a selected test needs (``-k`` selects fewer), computed
    by two subprocesses at once (the machine's cores; JAX compiles each operation per shape,
    which is most of the ~0.3 s a case costs)."""
    wanted = {HAND_CASE.id}
    for item in request.session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if isinstance(params.get("case"), Case):
            wanted.add(params["case"].id)
    cases = [c for c in CASES if c.id in wanted]
    tmp = tmp_path_factory.mktemp("jax_reference")
    jobs = max(1, min(2, os.cpu_count() or 1, len(cases)))
    parts = [cases[j::jobs] for j in range(jobs)]
    procs = []
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    for j, part in enumerate(parts):
        arrays: dict[str, Any] = {}
        for i, case in enumerate(part):
            y_true, y_pred = make_inputs(case)
            per_sample = evaluate(case.name, y_true, y_pred, options=case.options, reduction="none")
            _, keras_w = make_weights(case, per_sample.result.per_sample.shape)
            arrays[f"{i}/spec"] = np.asarray(json.dumps(keras_spec(case)))
            arrays[f"{i}/y_true"], arrays[f"{i}/y_pred"] = y_true, y_pred
            if keras_w is not None:
                arrays[f"{i}/sample_weight"] = np.ascontiguousarray(keras_w)
        np.savez(tmp / f"cases{j}.npz", **arrays)
        command = [sys.executable, "-m", "tests.derivatives.jax_reference"]
        procs.append(
            subprocess.Popen(
                [*command, f"cases{j}.npz", f"out{j}.npz"],
                cwd=tmp,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    result: dict[str, dict[str, Array]] = {}
    for j, (part, proc) in enumerate(zip(parts, procs, strict=True)):
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-3000:]
        out = np.load(tmp / f"out{j}.npz")
        for i, case in enumerate(part):
            result[case.id] = {
                k.split("/")[1]: out[k] for k in out.files if k.split("/")[0] == str(i)
            }
    return result


def _close(actual: Any, expected: Any, what: str, rtol: float = RTOL, atol: float = ATOL) -> None:
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale, err_msg=what)


def test_cases_cover_every_loss_option_and_reduction() -> None:
    assert {c.name for c in CASES} == set(NAMES)
    assert {c.reduction for c in CASES} == set(REDUCTIONS)
    covered = {key for _, options, _ in OPTION_CASES for key in options}
    assert covered == {option.name for spec in LOSSES for option in spec.options}


def test_reference_is_float64_exact(reference: dict[str, dict[str, Array]]) -> None:
    """The reference against a hand derivation: d/dp mean((p - t)^2) = 2 (p - t) / n, second
    derivative 2 / n, to float64 precision (a float32 mean would be off by ~1e-8)."""
    y_true, y_pred = make_inputs(HAND_CASE)
    ref = reference[HAND_CASE.id]
    n = y_pred.size
    np.testing.assert_allclose(ref["value"], np.mean((y_pred - y_true) ** 2), rtol=1e-14)
    np.testing.assert_allclose(ref["gradient"], 2 * (y_pred - y_true) / n, rtol=1e-13)
    np.testing.assert_allclose(ref["hessian_diagonal"], np.full(y_pred.shape, 2 / n), rtol=1e-13)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_float64_matches_jax(case: Case, reference: dict[str, dict[str, Array]]) -> None:
    ref = reference[case.id]
    assert "error" not in ref, str(ref["error"])
    ours = lossd(case)
    value = ours.result.sum if case.reduction == "none" else ours.result.value
    _close(value, ref["value"], "value", rtol=1e-10, atol=1e-12)
    _close(ours.gradient, ref["gradient"], "gradient")
    _close(ours.hessian_diagonal, ref["hessian_diagonal"], "hessian_diagonal")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_float32_consistent_with_float64(case: Case) -> None:
    ours64, ours32 = lossd(case, "float64"), lossd(case, "float32")
    for what in ("gradient", "hessian_diagonal"):
        a32, a64 = getattr(ours32, what), getattr(ours64, what)
        assert a32.dtype == np.float32 and a64.dtype == np.float64
        _close(a32, a64, what, rtol=2e-3, atol=1e-5)
