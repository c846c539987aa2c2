"""Baseline for small requests (target T4): the leanest plain FastAPI app.

``async def`` handlers (no worker-thread hop), a Pydantic ``list[list[float]]`` body model, no
middleware, FastAPI's default JSON response: what a request costs in FastAPI itself, with nothing
of lossd's (request ids, metrics, logs, body limit, admission, problem+json errors). Served by
uvicorn with the settings ``lossd serve`` uses (``bench.servers.lean``)::

    uvicorn bench.baselines.lean_app:app --no-access-log --port 8003
"""

from __future__ import annotations

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class Pair(BaseModel):
    """Two float tensors of the same shape (batch, features)."""

    y_true: list[list[float]]
    y_pred: list[list[float]]


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    """Hello world: the cheapest request FastAPI serves."""
    return {"status": "ok"}


@app.post("/mse")
async def mse(pair: Pair) -> dict[str, object]:
    """Per-sample mean squared error over the last axis, and their mean."""
    y_true = np.asarray(pair.y_true, dtype=np.float32)
    y_pred = np.asarray(pair.y_pred, dtype=np.float32)
    per_sample = np.mean(np.square(y_pred - y_true), axis=-1)
    return {"per_sample": per_sample.tolist(), "mean": float(per_sample.mean())}
