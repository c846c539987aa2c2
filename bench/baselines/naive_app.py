"""Baseline N: MSE the way most FastAPI services are written.

A Pydantic body model with ``list[list[float]]`` fields (FastAPI parses the body with the stdlib
``json`` module and validates every float in Python mode), ``np.asarray``, and a ``tolist()``
response through FastAPI's default JSON encoding. Served by uvicorn in its own process::

    uvicorn bench.baselines.naive_app:app --port 8001
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


@app.post("/mse")
def mse(pair: Pair) -> dict[str, object]:
    """Per-sample mean squared error over the last axis, and their mean."""
    y_true = np.asarray(pair.y_true, dtype=np.float32)
    y_pred = np.asarray(pair.y_pred, dtype=np.float32)
    per_sample = np.mean(np.square(y_pred - y_true), axis=-1)
    return {"per_sample": per_sample.tolist(), "mean": float(per_sample.mean())}


@app.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness, for the harness to know the server is up."""
    return {"status": "ok"}
