"""The PyTorch losses over real sockets, against torch itself: every case of the torch conformance
suite (tests/conformance/test_torch_conformance.py) sent to a uvicorn process as JSON to
``/v1/losses/{name}`` (tensor options inside ``options``) and as binary tensors to ``/v2`` (tensor
options as inputs of their own), in float32 with each loss's default reduction (torch's
``mean``); per-sample values and ``value`` against torch's, to ``rtol=1e-5, atol=1e-6``.
"""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conformance.test_torch_conformance import CASES, TENSOR_OPTIONS, Case, _torch_value

pytestmark = [pytest.mark.e2e, pytest.mark.conformance]
TOL = {"rtol": 1e-5, "atol": 1e-6}
_DATATYPE = {np.dtype(np.float32): "FP32", np.dtype(np.int64): "INT64"}


def _inputs(case: Case) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = case.inputs(np.random.default_rng(abs(hash(case.id)) % 2**32))
    y_true = y_true.astype(np.int64 if case.class_target else np.float32)
    return y_true, y_pred.astype(np.float32)


def _expected(case: Case, y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, float]:
    none = _torch_value(case, y_true, y_pred, "float32", "none")
    return none, float(_torch_value(case, y_true, y_pred, "float32", "mean"))


def _json_default(value: Any) -> Any:
    return value.tolist() if isinstance(value, np.ndarray | np.generic) else value


def _check(per_sample: Any, value: Any, none: np.ndarray, mean: float) -> None:
    np.testing.assert_allclose(
        np.asarray(per_sample, dtype=np.float64).reshape(none.shape), none, **TOL
    )
    if math.isnan(mean):  # every target ignored: torch's NaN is lossd's null
        assert value is None
    else:
        np.testing.assert_allclose(value, mean, **TOL)


@pytest.mark.parametrize("case", [c for c in CASES if "mean" in c.reductions], ids=lambda c: c.id)
def test_v1_json_matches_torch(live_server: str, case: Case) -> None:
    y_true, y_pred = _inputs(case)
    body = {"y_true": y_true.tolist(), "y_pred": y_pred.tolist(), "options": case.options}
    r = httpx.post(
        f"{live_server}/v1/losses/{case.name}",
        content=json.dumps(body, default=_json_default),
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["reduction"] == "mean"
    _check(
        [math.nan if v is None else v for v in out["per_sample"]],
        out["value"],
        *_expected(case, y_true, y_pred),
    )


@pytest.mark.parametrize("case", [c for c in CASES if "mean" in c.reductions], ids=lambda c: c.id)
def test_v2_binary_matches_torch(live_server: str, case: Case) -> None:
    y_true, y_pred = _inputs(case)
    tensors = [("y_true", y_true), ("y_pred", y_pred)]
    parameters: dict[str, Any] = {}
    for key, value in case.options.items():
        if key in TENSOR_OPTIONS:
            tensors.append((key, np.asarray(value, dtype=np.float32)))
        else:
            parameters[key] = value
    inputs, blobs = [], []
    for name, array in tensors:
        blob = np.ascontiguousarray(array).tobytes()
        inputs.append(
            {"name": name, "shape": list(array.shape), "datatype": _DATATYPE[array.dtype],
             "parameters": {"binary_data_size": len(blob)}}
        )  # fmt: skip
        blobs.append(blob)
    header = json.dumps(
        {"inputs": inputs, "parameters": parameters,
         "outputs": [{"name": "per_sample"}, {"name": "mean"}]}
    ).encode()  # fmt: skip
    r = httpx.post(
        f"{live_server}/v2/models/{case.name}/infer",
        content=header + b"".join(blobs),
        headers={"Inference-Header-Content-Length": str(len(header))},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    outputs = {o["name"]: o["data"] for o in r.json()["outputs"]}
    per_sample = [math.nan if v is None else v for v in outputs["per_sample"]]
    _check(per_sample, outputs["mean"][0], *_expected(case, y_true, y_pred))
