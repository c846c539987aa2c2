"""Request bodies for the benchmarks: JSON tensor pairs, Triton binary requests, NDJSON streams.

JSON numbers are written as a Python client writes float32 data (``json.dumps(a.tolist())``: the
shortest repr of each value as a double, ~18 characters for uniform [0, 1) values, no spaces), so
two 1000 x 1000 tensors make a body of 38.5 MB, the issue's "1M pairs, 38.6 MB".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson

from app.losses import LossSpec

Array = np.ndarray[Any, np.dtype[np.float32]]
Ints = np.ndarray[Any, np.dtype[np.int8]]


def tensors(elements: int, seed: int = 0, cols: int = 1000) -> tuple[Array, Array]:
    """``y_true`` and ``y_pred`` of shape ``(elements // cols, cols)``, uniform in [0, 1)."""
    cols = min(cols, elements)
    rng = np.random.default_rng(seed)
    shape = (elements // cols, cols)
    return rng.random(shape, dtype=np.float32), rng.random(shape, dtype=np.float32)


def digits(elements: int, seed: int = 0, cols: int = 100) -> tuple[Ints, Ints]:
    """``y_true`` and ``y_pred`` of shape ``(elements // cols, cols)``, integers 0 to 9: the
    densest JSON there is (2 bytes of text per number), so the most numbers per body."""
    rng = np.random.default_rng(seed)
    shape = (elements // cols, cols)
    return rng.integers(0, 10, shape, dtype=np.int8), rng.integers(0, 10, shape, dtype=np.int8)


def json_body(y_true: np.ndarray[Any, Any], y_pred: np.ndarray[Any, Any]) -> bytes:
    """``{"y_true": [[...]], "y_pred": [[...]]}`` with the numbers ``json.dumps(a.tolist())``
    writes (for floats, the shortest round-trip repr of each value widened to a double; orjson
    writes ``0.0000197`` where ``json`` writes ``1.97e-05``), built in C so 1e7 values take
    seconds."""
    wide = {
        name: a.astype(np.float64) if a.dtype.kind == "f" else a
        for name, a in (("y_true", y_true), ("y_pred", y_pred))
    }
    return orjson.dumps(wide, option=orjson.OPT_SERIALIZE_NUMPY)


def binary_request(y_true: Array, y_pred: Array) -> tuple[bytes, dict[str, str]]:
    """A v2 ``infer`` request with both inputs as Triton binary data, built by hand the way a
    non-Python client would, asking for every output as binary. Returns (body, headers)."""
    inputs = [
        {
            "name": name,
            "shape": list(array.shape),
            "datatype": "FP32",
            "parameters": {"binary_data_size": array.nbytes},
        }
        for name, array in (("y_true", y_true), ("y_pred", y_pred))
    ]
    header = orjson.dumps({"inputs": inputs, "parameters": {"binary_data_output": True}})
    body = header + y_true.astype("<f4").tobytes() + y_pred.astype("<f4").tobytes()
    headers = {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(len(header)),
    }
    return body, headers


def ndjson_stream(total_bytes: int, rows: int = 100, cols: int = 100) -> Iterator[bytes]:
    """NDJSON chunks (one ``{"y_true", "y_pred"}`` line of ``rows x cols`` each) adding up to at
    least ``total_bytes``, generated on the fly: a few distinct lines are encoded once and
    repeated, so the client never holds more than them in memory."""
    lines = [json_body(*tensors(rows * cols, seed=seed, cols=cols)) + b"\n" for seed in range(4)]
    sent = 0
    i = 0
    while sent < total_bytes:
        line = lines[i % len(lines)]
        i += 1
        sent += len(line)
        yield line


def ndjson_line_count(total_bytes: int, rows: int = 100, cols: int = 100) -> int:
    """How many lines :func:`ndjson_stream` sends for ``total_bytes``."""
    return sum(1 for _ in ndjson_stream(total_bytes, rows, cols))


#: The torch losses whose target holds class indices (N,) for an (N, C) input.
TORCH_CLASS_INDICES = ("torch.nn.CrossEntropyLoss", "torch.nn.NLLLoss", "torch.nn.MultiMarginLoss")
#: The torch losses whose target is -1 or 1, and those whose input is a probability.
TORCH_SIGNS = ("torch.nn.SoftMarginLoss", "torch.nn.HingeEmbeddingLoss")
TORCH_BINARY = (
    "torch.nn.BCELoss",
    "torch.nn.BCEWithLogitsLoss",
    "torch.nn.MultiLabelSoftMarginLoss",
)


def loss_inputs(spec: LossSpec, n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """An n x n float32 pair in ``spec``'s domain (class labels, {0, 1}, {-1, 1} or normal targets;
    probabilities or normal predictions), for the engine benchmarks. A torch loss gets torch's
    (target, input) in its domain: class indices, {0, 1} or {-1, 1} targets, probabilities for
    BCELoss and KLDivLoss's target; normal scores (logits, log-probabilities) otherwise."""
    shape = (n, n)
    if spec.flavour == "torch":
        return _torch_inputs(spec.name, n, rng)
    if spec.sparse_labels:
        y_true = rng.integers(0, n, size=(n,)).astype(np.float32)
    elif spec.family in ("probabilistic", "overlap"):
        y_true = rng.integers(0, 2, size=shape).astype(np.float32)
    elif spec.name in ("hinge", "squared_hinge"):
        y_true = rng.choice(np.float32([-1.0, 1.0]), size=shape)
    else:
        y_true = rng.normal(size=shape).astype(np.float32)
    if spec.family in ("probabilistic", "overlap"):
        y_pred = rng.uniform(0.01, 0.99, size=shape).astype(np.float32)
    else:
        y_pred = rng.normal(size=shape).astype(np.float32)
    return y_true, y_pred


def _torch_inputs(name: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    shape = (n, n)
    if name in TORCH_CLASS_INDICES:
        y_true = rng.integers(0, n, size=(n,)).astype(np.float32)
    elif name in TORCH_SIGNS:
        y_true = rng.choice(np.float32([-1.0, 1.0]), size=shape)
    elif name in TORCH_BINARY:
        y_true = rng.integers(0, 2, size=shape).astype(np.float32)
    elif name == "torch.nn.KLDivLoss":
        y_true = rng.uniform(0.01, 0.99, size=shape).astype(np.float32)
    else:
        y_true = rng.normal(size=shape).astype(np.float32)
    if name == "torch.nn.BCELoss":
        y_pred = rng.uniform(0.01, 0.99, size=shape).astype(np.float32)
    else:
        y_pred = rng.normal(size=shape).astype(np.float32)
    return y_true, y_pred
