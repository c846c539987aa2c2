"""lossd's PyTorch losses against torch itself (``torch.nn.functional``, CPU).

Values: every loss, with its options, on random and edge inputs (probabilities of exactly 0 and
1, ignored classes, a batch with every target ignored, K-dimensional cross-entropy), in float32
and float64, for each reduction: ``value`` against torch's result, ``per_sample`` against its
``reduction='none'`` output, and ``sum / count == mean``. Derivatives: gradient and Hessian
diagonal of the reduced value against ``torch.autograd`` in float64 (torch's own backward
formulas).

Tolerances: float32 ``rtol=1e-5, atol=1e-6``; float64 ``rtol=1e-10, atol=1e-12``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from app.losses import TORCH_LOSSES, evaluate, resolve

torch = pytest.importorskip("torch")
F = torch.nn.functional
pytestmark = pytest.mark.conformance

TOL = {"float32": {"rtol": 1e-5, "atol": 1e-6}, "float64": {"rtol": 1e-10, "atol": 1e-12}}
DERIVATIVE_TOL = {"rtol": 1e-9, "atol": 1e-12}
Array = np.ndarray
Inputs = Callable[[np.random.Generator], tuple[Array, Array]]


@dataclass(frozen=True)
class Case:
    """One loss with one set of options on one kind of input."""

    name: str  # lossd's name
    function: str  # torch.nn.functional's
    inputs: Inputs
    options: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    class_target: bool = False  # y_true holds class indices (a long tensor for torch)
    reductions: tuple[str, ...] = ("mean", "sum", "none")
    hessian: bool = True  # torch has a double backward for the loss

    @property
    def id(self) -> str:
        return f"{self.function}-{self.label}" if self.label else self.function


def _normal(*shape: int) -> Inputs:
    return lambda rng: (rng.normal(size=shape), rng.normal(size=shape))


def _probabilities(*shape: int, edges: bool = False) -> Inputs:
    def make(rng: np.random.Generator) -> tuple[Array, Array]:
        y_true = rng.uniform(size=shape)
        y_pred = rng.uniform(0.01, 0.99, size=shape)
        if edges:  # exact 0 and 1 in both, where BCELoss's log clamp at -100 matters
            y_pred.flat[:4] = [0.0, 1.0, 0.0, 1.0]
            y_true.flat[:4] = [0.0, 1.0, 1.0, 0.0]
        return y_true, y_pred

    return make


def _binary_targets(*shape: int) -> Inputs:
    return lambda rng: (rng.integers(0, 2, size=shape).astype(float), rng.normal(size=shape))


def _signs(*shape: int) -> Inputs:
    return lambda rng: (rng.choice([-1.0, 1.0], size=shape), rng.normal(size=shape) * 2)


def _indices(
    shape: tuple[int, ...], ignore: int | None = None, share: float = 0.3, log_probs: bool = False
) -> Inputs:
    """Scores ``shape`` = (N, C, d1, ...) and class indices (N, d1, ...), a ``share`` of them
    ``ignore`` (all of them for share 1)."""

    def make(rng: np.random.Generator) -> tuple[Array, Array]:
        y_pred = rng.normal(size=shape) * 2
        if log_probs:
            y_pred = y_pred - np.log(np.exp(y_pred).sum(axis=1, keepdims=True))
        labels = rng.integers(0, shape[1], size=shape[:1] + shape[2:]).astype(float)
        if ignore is not None:
            labels[rng.uniform(size=labels.shape) < share] = ignore
        return labels, y_pred

    return make


def _class_probabilities(*shape: int) -> Inputs:
    def make(rng: np.random.Generator) -> tuple[Array, Array]:
        t = rng.uniform(size=shape)
        return t / t.sum(axis=1, keepdims=True), rng.normal(size=shape) * 2

    return make


def _kl(*shape: int, zeros: bool = False) -> Inputs:
    def make(rng: np.random.Generator) -> tuple[Array, Array]:
        t = rng.uniform(size=shape)
        t = t / t.sum(axis=-1, keepdims=True)
        if zeros:
            t.flat[:3] = 0.0
        x = np.log(rng.dirichlet(np.ones(shape[-1]), size=shape[:-1]))
        return t, x

    return make


def _counts(*shape: int, rates: bool = False) -> Inputs:
    def make(rng: np.random.Generator) -> tuple[Array, Array]:
        t = rng.poisson(3.0, size=shape).astype(float)
        x = rng.uniform(0.1, 5.0, size=shape) if rates else rng.normal(size=shape)
        return t, x

    return make


def _kinks(*points: float) -> Inputs:
    """Targets 0 and inputs exactly at the losses' kinks (0, +-points)."""

    def make(rng: np.random.Generator) -> tuple[Array, Array]:
        x = np.array([*points, *(-p for p in points), 0.0, 0.3])
        return np.zeros((1, x.size)), x.reshape(1, -1)

    return make


def _hinge_kinks(margin: float) -> Inputs:
    def make(rng: np.random.Generator) -> tuple[Array, Array]:
        x = np.array([[margin, margin, 0.0, 1.0, margin + 0.5, -0.5]])
        t = np.array([[-1.0, 1.0, -1.0, 1.0, -1.0, 0.5]])
        return t, x

    return make


W4 = [0.5, 2.0, 1.0, 3.0]
CASES: list[Case] = [
    Case("torch.nn.MSELoss", "mse_loss", _normal(4, 5)),
    Case("torch.nn.MSELoss", "mse_loss", _normal(2, 3, 4), label="rank3"),
    Case("torch.nn.L1Loss", "l1_loss", _normal(4, 5)),
    Case("torch.nn.SmoothL1Loss", "smooth_l1_loss", _normal(4, 5)),
    Case("torch.nn.SmoothL1Loss", "smooth_l1_loss", _normal(4, 5), {"beta": 0.3}, "beta"),
    Case("torch.nn.SmoothL1Loss", "smooth_l1_loss", _normal(4, 5), {"beta": 0.0}, "beta0"),
    Case("torch.nn.HuberLoss", "huber_loss", _normal(4, 5)),
    Case("torch.nn.HuberLoss", "huber_loss", _normal(4, 5), {"delta": 0.4}, "delta"),
    Case("torch.nn.L1Loss", "l1_loss", _kinks(1.0), label="kinks"),
    Case("torch.nn.SmoothL1Loss", "smooth_l1_loss", _kinks(1.0), label="kinks"),
    Case("torch.nn.SmoothL1Loss", "smooth_l1_loss", _kinks(0.5), {"beta": 0.5}, "beta-kinks"),
    Case("torch.nn.HuberLoss", "huber_loss", _kinks(1.0), label="kinks"),
    Case("torch.nn.HuberLoss", "huber_loss", _kinks(0.25), {"delta": 0.25}, "delta-kinks"),
    Case("torch.nn.HingeEmbeddingLoss", "hinge_embedding_loss", _hinge_kinks(1.0), {}, "kinks"),
    Case(
        "torch.nn.MultiMarginLoss",
        "multi_margin_loss",
        lambda rng: (np.array([0.0, 1.0]), np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.0]])),
        {},
        "kinks",
        class_target=True,
        hessian=False,
    ),
    Case("torch.nn.BCELoss", "binary_cross_entropy", _probabilities(4, 5)),
    Case("torch.nn.BCELoss", "binary_cross_entropy", _probabilities(4, 5, edges=True), {}, "edges"),
    Case(
        "torch.nn.BCELoss",
        "binary_cross_entropy",
        _probabilities(3, 4),
        {"weight": [0.5, 2.0, 1.0, 3.0]},
        "weight",
    ),
    Case("torch.nn.BCEWithLogitsLoss", "binary_cross_entropy_with_logits", _binary_targets(4, 5)),
    Case(
        "torch.nn.BCEWithLogitsLoss",
        "binary_cross_entropy_with_logits",
        _probabilities(3, 4),
        {"weight": W4, "pos_weight": [1.0, 2.0, 0.5, 4.0]},
        "weights",
    ),
    Case("torch.nn.CrossEntropyLoss", "cross_entropy", _indices((6, 4)), class_target=True),
    Case(
        "torch.nn.CrossEntropyLoss",
        "cross_entropy",
        _indices((6, 4), ignore=-100),
        label="ignored",
        class_target=True,
    ),
    Case(
        "torch.nn.CrossEntropyLoss",
        "cross_entropy",
        _indices((6, 4), ignore=2),
        {"weight": W4, "ignore_index": 2, "label_smoothing": 0.2},
        "weight-ignore-smoothing",
        class_target=True,
    ),
    Case(
        "torch.nn.CrossEntropyLoss",
        "cross_entropy",
        _indices((3, 4, 2, 3), ignore=-100),
        {"weight": W4},
        "k-dim-weight",
        class_target=True,
    ),
    Case(
        "torch.nn.CrossEntropyLoss",
        "cross_entropy",
        _indices((3, 4, 2, 3), ignore=1),
        {"ignore_index": 1, "label_smoothing": 0.1},
        "k-dim-smoothing",
        class_target=True,
    ),
    Case(
        "torch.nn.CrossEntropyLoss",
        "cross_entropy",
        _indices((4, 4), ignore=-100, share=1),
        {"weight": W4},
        "all-ignored",
        class_target=True,
    ),
    Case(
        "torch.nn.CrossEntropyLoss",
        "cross_entropy",
        _indices((4, 3), ignore=-100, share=1),
        {"label_smoothing": 0.3},
        "all-ignored-smoothing",
        class_target=True,
    ),
    Case(
        "torch.nn.CrossEntropyLoss",
        "cross_entropy",
        _class_probabilities(5, 4),
        {},
        "probabilities",
    ),
    Case(
        "torch.nn.CrossEntropyLoss",
        "cross_entropy",
        lambda rng: (np.eye(4)[[0, 3, 1]], rng.normal(size=(3, 4)) * 30),
        {"weight": W4},
        "one-hot-probabilities-large-logits",
    ),
    Case(
        "torch.nn.CrossEntropyLoss",
        "cross_entropy",
        _class_probabilities(3, 4, 2, 2),
        {"weight": W4, "label_smoothing": 0.25},
        "probabilities-k-dim-weight-smoothing",
    ),
    Case("torch.nn.NLLLoss", "nll_loss", _indices((6, 4), log_probs=True), class_target=True),
    Case(
        "torch.nn.NLLLoss",
        "nll_loss",
        _indices((3, 4, 5), ignore=3, log_probs=True),
        {"weight": W4, "ignore_index": 3},
        "k-dim-weight-ignore",
        class_target=True,
    ),
    Case(
        "torch.nn.NLLLoss",
        "nll_loss",
        _indices((3, 4), ignore=-100, share=1),
        {},
        "all-ignored",
        class_target=True,
    ),
    Case(
        "torch.nn.KLDivLoss", "kl_div", _kl(4, 5), reductions=("mean", "sum", "none", "batchmean")
    ),
    Case(
        "torch.nn.KLDivLoss",
        "kl_div",
        _kl(4, 5, zeros=True),
        {},
        "zero-targets",
        reductions=("batchmean", "none"),
    ),
    Case(
        "torch.nn.KLDivLoss",
        "kl_div",
        lambda rng: (np.log(_kl(4, 5)(rng)[0]), _kl(4, 5)(rng)[1]),
        {"log_target": True},
        "log-target",
        reductions=("mean", "sum", "none", "batchmean"),
    ),
    Case("torch.nn.PoissonNLLLoss", "poisson_nll_loss", _counts(4, 5)),
    Case(
        "torch.nn.PoissonNLLLoss",
        "poisson_nll_loss",
        _counts(4, 5, rates=True),
        {"log_input": False, "full": True, "eps": 1e-3},
        "rates-full",
    ),
    Case("torch.nn.PoissonNLLLoss", "poisson_nll_loss", _counts(4, 5), {"full": True}, "full"),
    Case(
        "torch.nn.GaussianNLLLoss",
        "gaussian_nll_loss",
        _normal(4, 3),
        {"var": [[0.5, 1.0, 2.0]] * 4},
        "heteroscedastic",
    ),
    Case(
        "torch.nn.GaussianNLLLoss",
        "gaussian_nll_loss",
        _normal(4, 3),
        {"var": [0.5, 1e-9, 2.0, 3.0], "full": True},
        "per-sample-full",
    ),
    Case(
        "torch.nn.GaussianNLLLoss",
        "gaussian_nll_loss",
        _normal(4, 3),
        {"var": [[0.5], [1.0], [2.0], [3.0]], "eps": 0.1},
        "trailing-one-eps",
    ),
    Case("torch.nn.GaussianNLLLoss", "gaussian_nll_loss", _normal(4, 3), {"var": 0.7}, "scalar"),
    Case("torch.nn.SoftMarginLoss", "soft_margin_loss", _signs(4, 5)),
    Case("torch.nn.MultiLabelSoftMarginLoss", "multilabel_soft_margin_loss", _binary_targets(4, 5)),
    Case(
        "torch.nn.MultiLabelSoftMarginLoss",
        "multilabel_soft_margin_loss",
        _binary_targets(3, 4),
        {"weight": W4},
        "weight",
    ),
    Case("torch.nn.HingeEmbeddingLoss", "hinge_embedding_loss", _signs(4, 5)),
    Case(
        "torch.nn.HingeEmbeddingLoss",
        "hinge_embedding_loss",
        _signs(4, 5),
        {"margin": 2.5},
        "margin",
    ),
    Case(
        "torch.nn.MultiMarginLoss",
        "multi_margin_loss",
        _indices((6, 4)),
        class_target=True,
        hessian=False,
    ),
    Case(
        "torch.nn.MultiMarginLoss",
        "multi_margin_loss",
        _indices((6, 4)),
        {"p": 2, "margin": 1.5, "weight": W4},
        "p2-margin-weight",
        class_target=True,
        hessian=False,
    ),
]
TENSOR_OPTIONS = {"weight", "pos_weight", "var"}


def _torch_call(case: Case, y_true: Any, y_pred: Any, reduction: str) -> Any:
    kwargs = {
        k: torch.tensor(v, dtype=y_pred.dtype) if k in TENSOR_OPTIONS and k != "var" else v
        for k, v in case.options.items()
    }
    fn = getattr(F, case.function)
    if case.function == "gaussian_nll_loss":
        var = case.options.get("var", 1.0)
        var = var if isinstance(var, float) else torch.tensor(var, dtype=y_pred.dtype)
        kwargs.pop("var", None)
        return fn(y_pred, y_true, var, reduction=reduction, **kwargs)
    return fn(y_pred, y_true, reduction=reduction, **kwargs)


def _torch_tensors(case: Case, y_true: Array, y_pred: Array, dtype: str) -> tuple[Any, Any]:
    pred = torch.tensor(y_pred.astype(dtype))
    true = torch.tensor(y_true.astype(np.int64) if case.class_target else y_true.astype(dtype))
    return true, pred


def _torch_value(case: Case, y_true: Array, y_pred: Array, dtype: str, reduction: str) -> Array:
    true, pred = _torch_tensors(case, y_true, y_pred, dtype)
    return _torch_call(case, true, pred, reduction).numpy()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_values_match_torch(case: Case, dtype: str) -> None:
    rng = np.random.default_rng(abs(hash(case.id)) % 2**32)
    y_true, y_pred = case.inputs(rng)
    # lossd receives the values as the client's dtype holds them
    y_pred = y_pred.astype(dtype)
    none = _torch_value(case, y_true, y_pred, dtype, "none")
    for reduction in case.reductions:
        got = evaluate(
            case.name, y_true, y_pred, options=case.options, reduction=reduction, dtype=dtype
        )
        r = got.result
        np.testing.assert_allclose(r.per_sample, none, **TOL[dtype])
        assert r.per_sample.dtype == np.dtype(dtype)
        want = _torch_value(case, y_true, y_pred, dtype, reduction)
        if reduction == "none":
            assert r.value is None
        elif math.isnan(float(want)):
            assert math.isnan(r.value) and r.non_finite >= 1 and r.count == 0
        else:
            np.testing.assert_allclose(r.value, want, **TOL[dtype])
        if r.count:
            np.testing.assert_allclose(r.sum / r.count, r.mean, **TOL[dtype])
            mean = _torch_value(
                case, y_true, y_pred, dtype, "batchmean" if reduction == "batchmean" else "mean"
            )
            np.testing.assert_allclose(r.mean, mean, **TOL[dtype])


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_derivatives_match_autograd(case: Case) -> None:
    rng = np.random.default_rng(abs(hash(case.id)) % 2**32 + 1)
    y_true, y_pred = case.inputs(rng)
    for reduction in case.reductions:
        got = evaluate(
            case.name,
            y_true,
            y_pred,
            options=case.options,
            reduction=reduction,
            dtype="float64",
            gradient=True,
            hessian_diagonal=case.hessian,
        )
        true, pred = _torch_tensors(case, y_true, y_pred, "float64")

        def value(x: Any, true: Any = true, reduction: str = reduction) -> Any:
            out = _torch_call(case, true, x, reduction)
            return out.sum() if reduction == "none" else out

        x = pred.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(value(x), x, create_graph=case.hessian)
        assert got.gradient is not None
        np.testing.assert_allclose(got.gradient, grad.detach().numpy(), **DERIVATIVE_TOL)
        if case.hessian:
            hess = torch.autograd.functional.hessian(value, pred).reshape(pred.numel(), -1)
            want = torch.diagonal(hess).reshape(pred.shape).numpy()
            assert got.hessian_diagonal is not None
            np.testing.assert_allclose(got.hessian_diagonal, want, **DERIVATIVE_TOL)


def test_every_torch_loss_and_option_is_covered() -> None:
    assert {c.name for c in CASES} == {s.name for s in TORCH_LOSSES}
    for spec in TORCH_LOSSES:
        given = {o for c in CASES if c.name == spec.name for o in c.options}
        assert given == {o.name for o in spec.options} - {"ignore_index"} or given >= {
            o.name for o in spec.options
        }, spec.name


def test_torch_names_resolve() -> None:
    for spec in TORCH_LOSSES:
        fn = spec.aliases[0].rpartition(".")[2]
        for name in (
            spec.name,
            f"torch.nn.functional.{fn}",
            f"TORCH.{spec.class_name}",
            f"torch.{fn}",
        ):
            assert resolve(name) is spec


def test_hinge_embedding_where_margin_minus_input_overflows() -> None:
    """lossd computes HingeEmbeddingLoss with its masks as factors; where ``margin - input``
    overflows to inf under a mask of 0, that would give NaN (inf * 0) where torch's ``where``
    gives 0. Checked against torch itself, in float32."""
    x = np.float32([[-3e38, -3e38, 1.0, 2.0]])
    t = np.float32([[1.0, -1.0, 1.0, -1.0]])
    ours = evaluate(
        "torch.nn.HingeEmbeddingLoss", t, x, options={"margin": 3e38}, reduction="none"
    ).result.per_sample
    want = F.hinge_embedding_loss(
        torch.from_numpy(x), torch.from_numpy(t), margin=3e38, reduction="none"
    ).numpy()
    assert np.isinf(want[0, 1]) and want[0, 0] == np.float32(-3e38)  # what makes it an edge
    np.testing.assert_array_equal(ours, want)


@pytest.mark.parametrize("beta", [1e-45, 1e-30, 3e38])
def test_smooth_l1_with_an_extreme_beta_matches_torch(beta: float) -> None:
    """A subnormal or huge beta, in float32: the value and gradient against torch and
    torch.autograd (lossd forms d / beta first, so a subnormal beta neither underflows the value
    nor overflows the gradient's scale)."""
    x = np.float32([[0.7, -2.0, 0.0, 5e-39, 1e30]])
    t = np.float32([[0.0, 0.5, 0.0, 0.0, -1e30]])
    got = evaluate(
        "torch.nn.SmoothL1Loss", t, x, options={"beta": beta}, reduction="sum", gradient=True
    )
    pred = torch.from_numpy(x).requires_grad_(True)
    want = F.smooth_l1_loss(pred, torch.from_numpy(t), beta=beta, reduction="none")
    want.sum().backward()
    np.testing.assert_allclose(got.result.per_sample, want.detach().numpy(), **TOL["float32"])
    np.testing.assert_allclose(got.gradient, pred.grad.numpy(), **TOL["float32"])
    assert np.isfinite(got.gradient).all()
