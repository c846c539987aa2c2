"""The torch losses' derivatives against central differences of their own values (float64),
without torch: the conformance tests check both against torch and ``torch.autograd``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from app.losses import TORCH_LOSSES, evaluate

RNG = np.random.default_rng(7)
SCORES = RNG.normal(size=(4, 3))
INDICES = np.array([0, 2, 1, 2], dtype=float)
PROBS = RNG.uniform(0.1, 0.9, size=(4, 3))
SIGNS = np.where(RNG.uniform(size=(4, 3)) < 0.5, -1.0, 1.0)
LOGP = np.log(PROBS / PROBS.sum(axis=1, keepdims=True))
SOFT = PROBS / PROBS.sum(axis=1, keepdims=True)
W3 = [0.5, 2.0, 1.5]

# (name, y_true, y_pred, options, reductions); inputs away from every kink
CASES: list[tuple[str, Any, Any, dict[str, Any], tuple[str, ...]]] = [
    ("torch.nn.MSELoss", SCORES * 0.3, SCORES, {}, ("mean", "sum", "none")),
    ("torch.nn.L1Loss", SCORES * 0.3, SCORES, {}, ("mean",)),
    ("torch.nn.SmoothL1Loss", SCORES * 0.3, SCORES, {"beta": 0.7}, ("mean",)),
    ("torch.nn.HuberLoss", SCORES * 0.3, SCORES, {"delta": 0.6}, ("sum",)),
    ("torch.nn.BCELoss", SOFT, PROBS, {"weight": W3}, ("mean",)),
    ("torch.nn.BCEWithLogitsLoss", SOFT, SCORES, {"pos_weight": W3}, ("mean",)),
    ("torch.nn.CrossEntropyLoss", INDICES, SCORES,
     {"weight": W3, "ignore_index": 1, "label_smoothing": 0.2}, ("mean", "sum")),
    ("torch.nn.CrossEntropyLoss", SOFT, SCORES, {"label_smoothing": 0.1}, ("mean",)),
    ("torch.nn.NLLLoss", INDICES, LOGP, {"weight": W3}, ("mean",)),
    ("torch.nn.KLDivLoss", SOFT, LOGP, {}, ("batchmean", "mean")),
    ("torch.nn.KLDivLoss", LOGP, LOGP * 0.5, {"log_target": True}, ("batchmean",)),
    ("torch.nn.PoissonNLLLoss", PROBS * 4, SCORES, {}, ("mean",)),
    ("torch.nn.PoissonNLLLoss", PROBS * 4, PROBS, {"log_input": False}, ("mean",)),
    ("torch.nn.GaussianNLLLoss", SCORES * 0.3, SCORES, {"var": [1.0, 0.5, 2.0, 3.0]},
     ("mean",)),
    ("torch.nn.SoftMarginLoss", SIGNS, SCORES, {}, ("mean",)),
    ("torch.nn.MultiLabelSoftMarginLoss", SOFT, SCORES, {"weight": W3}, ("mean",)),
    ("torch.nn.HingeEmbeddingLoss", SIGNS, np.abs(SCORES) + 0.05, {"margin": 1.3}, ("mean",)),
    ("torch.nn.MultiMarginLoss", INDICES, SCORES, {"p": 2, "weight": W3}, ("mean",)),
]  # fmt: skip


def _value(name: str, y_true: Any, y_pred: Any, options: dict[str, Any], how: str) -> float:
    r = evaluate(name, y_true, y_pred, options=options, reduction=how, dtype="float64").result
    return r.sum if how == "none" else float(r.value)  # type: ignore[arg-type]


def test_every_torch_loss_is_covered() -> None:
    assert {c[0] for c in CASES} == {s.name for s in TORCH_LOSSES}


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{'-'.join(c[3])}")
def test_gradient_and_hessian_match_central_differences(case: Any) -> None:
    name, y_true, y_pred, options, reductions = case
    for how in reductions:
        got = evaluate(
            name, y_true, y_pred, options=options, reduction=how, dtype="float64",
            gradient=True, hessian_diagonal=True,
        )  # fmt: skip
        assert got.gradient is not None and got.hessian_diagonal is not None
        h = 1e-5
        grad = np.empty_like(y_pred)
        hess = np.empty_like(y_pred)
        f0 = _value(name, y_true, y_pred, options, how)
        for i in np.ndindex(y_pred.shape):
            up, down = y_pred.copy(), y_pred.copy()
            up[i] += h
            down[i] -= h
            fu = _value(name, y_true, up, options, how)
            fd = _value(name, y_true, down, options, how)
            grad[i] = (fu - fd) / (2 * h)
            hess[i] = (fu - 2 * f0 + fd) / (h * h)
        np.testing.assert_allclose(got.gradient, grad, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(got.hessian_diagonal, hess, rtol=1e-3, atol=2e-4)
