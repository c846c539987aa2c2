"""One loss over a grid of predictions: the numbers behind a loss curve.

:func:`evaluate_grid` holds ``y_true`` fixed (one sample) and evaluates the loss at each of
``n`` predictions, one loss value per prediction, through :func:`~app.losses.evaluate` itself:
a curve shows exactly what a request would return, clipping, label handling and options
included. It knows nothing of pictures or HTTP (``app/curves.py`` chooses the grid).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from app.losses.evaluate import evaluate
from app.losses.numerics import FloatArray
from app.losses.registry import LossSpec, resolve


def evaluate_grid(
    loss: str | LossSpec,
    y_true: Sequence[float],
    y_preds: Any,
    *,
    options: Mapping[str, Any] | None = None,
    dtype: str = "float32",
) -> FloatArray:
    """The loss of ``y_true`` (one sample: a vector, or one class index for sparse labels)
    against each row of ``y_preds`` (shape ``(n, k)``): an array of ``n`` values, in float64,
    non-finite values kept (a curve leaves a gap there).

    The rows are evaluated as one batch of ``n`` samples (reduction ``none``). A loss that
    reduces more than the sample's own axis (``dice`` and ``tversky`` reduce every axis unless
    ``axis`` is given) gives no per-sample values for a batch, so each row is then evaluated on
    its own, as a 1-D tensor: each point is still the loss of one sample.

    >>> evaluate_grid("mse", [0.0], [[-1.0], [0.0], [2.0]]).tolist()
    [1.0, 0.0, 4.0]
    >>> evaluate_grid("dice", [1.0, 0.0], [[1.0, 0.0], [0.0, 1.0]]).round(6).tolist()
    [0.0, 1.0]
    """
    preds = np.asarray(y_preds, dtype=np.float64)
    if preds.ndim != 2 or preds.shape[0] == 0:
        raise ValueError(f"y_preds must have shape (n, k) with n >= 1, got {list(preds.shape)}")
    n = preds.shape[0]
    truth = np.asarray(y_true, dtype=np.float64)
    spec = loss if isinstance(loss, LossSpec) else resolve(loss)
    if spec.flavour == "torch" and truth.shape == (1,) and preds.shape[1] > 1:
        truth = truth[0]  # one class index: torch's target has no class axis at all
    batch = np.broadcast_to(truth, (n, *truth.shape))
    result = evaluate(loss, batch, preds, options=options, reduction="none", dtype=dtype)
    values = np.asarray(result.result.per_sample, dtype=np.float64)
    if values.shape == (n, 1) and spec.flavour == "torch":
        values = values[:, 0]  # a torch loss element by element, one element per sample
    if values.shape == (n,):
        return values
    return np.array([_one(loss, truth, row, options, dtype) for row in preds], dtype=np.float64)


def _one(
    loss: str | LossSpec,
    y_true: FloatArray,
    y_pred: FloatArray,
    options: Mapping[str, Any] | None,
    dtype: str,
) -> float:
    per_sample = evaluate(
        loss, y_true, y_pred, options=options, reduction="none", dtype=dtype
    ).result.per_sample
    return float(np.mean(per_sample))
