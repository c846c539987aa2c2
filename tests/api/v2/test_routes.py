"""The Open Inference Protocol (KServe v2) endpoints (app/api/v2/routes.py), through httpx's
ASGI transport.

Expected numbers are worked out by hand in the comments (or copied from the seed document), never
taken from lossd's own output.
"""

from __future__ import annotations

import gzip
import json
import math
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api import problems
from app.api.v2 import routes as v2
from app.main import create_app
from app.settings import Settings
from tests.helpers import SEED_MSE, SEED_PRED, SEED_TRUE  # seed 002; Keras printed SEED_MSE

pytestmark = pytest.mark.anyio

HEADER = "Inference-Header-Content-Length"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client for ``app``, its start-up (lifespan) having run, as under uvicorn."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://lossd") as c:
            yield c


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app()) as c:
        yield c


def tensor(name: str, shape: list[int], datatype: str, data: Any = None, **params: Any) -> Any:
    """One request input in the protocol's JSON."""
    out: dict[str, Any] = {"name": name, "shape": shape, "datatype": datatype}
    if data is not None:
        out["data"] = data
    if params:
        out["parameters"] = params
    return out


def seed_request(**extra: Any) -> dict[str, Any]:
    return {
        "inputs": [
            tensor("y_true", [2, 3], "FP32", SEED_TRUE),
            tensor("y_pred", [2, 3], "FP32", SEED_PRED),
        ],
        **extra,
    }


def outputs_of(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["name"]: o for o in body["outputs"]}


def split_binary(response: httpx.Response) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Parse a binary-extension response: JSON header, then each binary output's bytes."""
    length = int(response.headers[HEADER])
    header = json.loads(response.content[:length])
    blobs, offset = {}, length
    for out in header["outputs"]:
        size = (out.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            blobs[out["name"]] = response.content[offset : offset + size]
            offset += size
    assert offset == len(response.content)
    return header, blobs


# --- Server and model metadata, health ------------------------------------------------------


async def test_server_metadata(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2")
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "lossd"
    assert isinstance(body["version"], str) and body["version"]
    assert "binary_tensor_data" in body["extensions"]


async def test_health(client: httpx.AsyncClient) -> None:
    live = await client.get("/v2/health/live")
    ready = await client.get("/v2/health/ready")
    assert (live.status_code, live.json()) == (200, {"live": True})
    assert (ready.status_code, ready.json()) == (200, {"ready": True})


async def test_model_metadata(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2/models/mse")
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "mean_squared_error"
    assert body["versions"] == ["1"]
    assert body["platform"] == "lossd"
    inputs = {t["name"]: t for t in body["inputs"]}
    assert list(inputs) == ["y_true", "y_pred", "sample_weight"]
    assert inputs["y_pred"] == {"name": "y_pred", "datatype": "FP32", "shape": [-1, -1]}
    outputs = {t["name"]: t for t in body["outputs"]}
    # The derivatives are listed, shaped like y_pred; sent only when a request names them.
    assert list(outputs) == ["per_sample", "mean", "sum", "count", "gradient", "hessian_diagonal"]
    assert outputs["gradient"] == {"name": "gradient", "datatype": "FP32", "shape": [-1, -1]}
    assert outputs["per_sample"]["shape"] == [-1]
    assert outputs["count"] == {"name": "count", "datatype": "FP64", "shape": [1]}
    assert body["parameters"] == {"reduction": "sum_over_batch_size", "dtype": None}


async def test_model_metadata_lists_option_defaults_and_sparse_labels(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/v2/models/SparseCategoricalCrossentropy")).json()
    assert body["name"] == "sparse_categorical_crossentropy"
    y_true = next(t for t in body["inputs"] if t["name"] == "y_true")
    assert y_true == {"name": "y_true", "datatype": "INT64", "shape": [-1]}
    assert body["parameters"]["from_logits"] is False
    assert body["parameters"]["ignore_class"] is None


async def test_versioned_metadata_and_readiness(client: httpx.AsyncClient) -> None:
    meta = await client.get("/v2/models/huber_loss/versions/1")
    assert (meta.status_code, meta.json()["name"]) == (200, "huber")
    ready = await client.get("/v2/models/huber_loss/versions/1/ready")
    assert (ready.status_code, ready.json()) == (200, {"name": "huber", "ready": True})


async def test_model_ready(client: httpx.AsyncClient) -> None:
    r = await client.get("/v2/models/loss_logcosh/ready")
    assert (r.status_code, r.json()) == (200, {"name": "log_cosh", "ready": True})


@pytest.mark.parametrize(
    "path",
    ["/v2/models/msee", "/v2/models/msee/ready", "/v2/models/msee/versions/1"],
)
async def test_unknown_model_is_404_with_suggestions(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path)
    assert r.status_code == 404
    assert r.json() == {"error": "unknown model 'msee'; did you mean 'mse', 'msle'?"}


# --- Inference: JSON ------------------------------------------------------------------------


async def test_seed_example_json(client: httpx.AsyncClient, body_path: str) -> None:
    r = await client.post("/v2/models/mse/infer", json=seed_request(id="req-1"))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert HEADER not in r.headers
    body = r.json()
    assert body["model_name"] == "mean_squared_error"
    assert body["id"] == "req-1"
    assert "model_version" not in body
    out = outputs_of(body)
    assert list(out) == ["per_sample", "mean", "sum", "count"]
    assert out["per_sample"]["datatype"] == "FP32"
    assert out["per_sample"]["shape"] == [2]
    np.testing.assert_allclose(out["per_sample"]["data"], SEED_MSE, rtol=1e-6)
    # mean of (2/3, 1/3) = 0.5; sum = 1; two samples.
    assert out["mean"] == {"name": "mean", "datatype": "FP32", "shape": [1], "data": [0.5]}
    assert out["sum"]["data"] == [1.0]
    assert out["count"] == {"name": "count", "datatype": "FP64", "shape": [1], "data": [2.0]}
    assert body["parameters"] == {
        "dtype": "float32",
        "reduction": "sum_over_batch_size",
        "non_finite": 0,
    }


async def test_flat_data_with_shape(client: httpx.AsyncClient, body_path: str) -> None:
    request = {
        "inputs": [
            tensor("y_true", [2, 3], "FP32", [0, 1, 1, 0, 0, 1]),
            tensor("y_pred", [2, 3], "FP32", [1, 1, 0, 1, 0, 1]),
        ]
    }
    body = (await client.post("/v2/models/mse/infer", json=request)).json()
    np.testing.assert_allclose(outputs_of(body)["per_sample"]["data"], SEED_MSE, rtol=1e-6)


@pytest.mark.parametrize(
    "alias", ["mse", "MSE", "MeanSquaredError", "loss_mse", "LOSS_MEAN_SQUARED_ERROR", "Mse"]
)
async def test_every_alias_is_a_model(client: httpx.AsyncClient, alias: str) -> None:
    r = await client.post(f"/v2/models/{alias}/infer", json=seed_request())
    assert r.status_code == 200
    assert r.json()["model_name"] == "mean_squared_error"


async def test_versioned_infer_echoes_version(client: httpx.AsyncClient) -> None:
    r = await client.post("/v2/models/mse/versions/1/infer", json=seed_request(id="x"))
    assert r.status_code == 200
    assert (r.json()["model_version"], r.json()["id"]) == ("1", "x")


async def test_outputs_filter_and_order(client: httpx.AsyncClient) -> None:
    request = seed_request(outputs=[{"name": "sum"}, {"name": "per_sample"}])
    body = (await client.post("/v2/models/mse/infer", json=request)).json()
    assert [o["name"] for o in body["outputs"]] == ["sum", "per_sample"]


async def test_integer_labels_sparse_int64(client: httpx.AsyncClient, body_path: str) -> None:
    # Rows already sum to 1, so Keras's normalisation leaves them: loss = -log(p[label]).
    request = {
        "inputs": [
            tensor("y_true", [2], "INT64", [0, 2]),
            tensor("y_pred", [2, 3], "FP32", [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]),
        ]
    }
    r = await client.post("/v2/models/sparse_categorical_crossentropy/infer", json=request)
    assert r.status_code == 200
    out = outputs_of(r.json())
    np.testing.assert_allclose(
        out["per_sample"]["data"], [-math.log(0.7), -math.log(0.6)], rtol=1e-6
    )


@pytest.mark.parametrize(
    "datatype", ["INT8", "INT16", "INT32", "UINT8", "UINT16", "UINT64", "FP16"]
)
async def test_integer_datatypes(client: httpx.AsyncClient, datatype: str, body_path: str) -> None:
    # MAE of integers: row 0 |0-1|,|1-1|,|1-0| -> 2/3; row 1 |0-1|,0,0 -> 1/3.
    request = {
        "inputs": [
            tensor("y_true", [2, 3], datatype, SEED_TRUE),
            tensor("y_pred", [2, 3], datatype, SEED_PRED),
        ]
    }
    r = await client.post("/v2/models/mae/infer", json=request)
    assert r.status_code == 200
    out = outputs_of(r.json())
    assert out["per_sample"]["datatype"] == "FP32"
    np.testing.assert_allclose(out["per_sample"]["data"], [2 / 3, 1 / 3], rtol=1e-6)


async def test_bool_labels(client: httpx.AsyncClient, body_path: str) -> None:
    # The seed's labels as booleans: same MAE as with numbers, 2/3 and 1/3.
    labels = [[False, True, True], [False, False, True]]
    request = {
        "inputs": [
            tensor("y_true", [2, 3], "BOOL", labels),
            tensor("y_pred", [2, 3], "FP32", SEED_PRED),
        ]
    }
    r = await client.post("/v2/models/mae/infer", json=request)
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(
        outputs_of(r.json())["per_sample"]["data"], [2 / 3, 1 / 3], rtol=1e-6
    )


async def test_fp64_inputs_compute_in_float64(client: httpx.AsyncClient, body_path: str) -> None:
    # 0.1 is not a float32: in float64, (0.3 - 0.1)^2 = 0.04 to ~1e-17.
    request = {
        "inputs": [
            tensor("y_true", [1, 2], "FP64", [[0.1, 0.2]]),
            tensor("y_pred", [1, 2], "FP64", [[0.3, 0.2]]),
        ]
    }
    body = (await client.post("/v2/models/mse/infer", json=request)).json()
    out = outputs_of(body)
    assert body["parameters"]["dtype"] == "float64"
    assert out["per_sample"]["datatype"] == "FP64"
    assert out["mean"]["datatype"] == "FP64"
    expected = ((0.3 - 0.1) ** 2 + 0.0) / 2
    assert out["per_sample"]["data"][0] == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("value", ["float64", "FP64"])
async def test_dtype_parameter_overrides(client: httpx.AsyncClient, value: str) -> None:
    body = (
        await client.post("/v2/models/mse/infer", json=seed_request(parameters={"dtype": value}))
    ).json()
    assert outputs_of(body)["per_sample"]["datatype"] == "FP64"
    np.testing.assert_allclose(outputs_of(body)["per_sample"]["data"], [2 / 3, 1 / 3], rtol=1e-15)


async def test_fp64_inputs_with_float32_parameter(client: httpx.AsyncClient) -> None:
    request = {
        "inputs": [
            tensor("y_true", [2, 3], "FP64", SEED_TRUE),
            tensor("y_pred", [2, 3], "FP64", SEED_PRED),
        ],
        "parameters": {"dtype": "float32"},
    }
    body = (await client.post("/v2/models/mse/infer", json=request)).json()
    assert outputs_of(body)["per_sample"]["datatype"] == "FP32"


async def test_loss_options_as_parameters(client: httpx.AsyncClient) -> None:
    # Huber, error x = (0.5, 3): 0.5 x^2 = 0.125 inside delta; delta |x| - delta^2 / 2 outside.
    # delta 1: (0.125 + 2.5) / 2 = 1.3125; delta 2: (0.125 + 4) / 2 = 2.0625.
    def request(**params: Any) -> dict[str, Any]:
        return {
            "inputs": [
                tensor("y_true", [1, 2], "FP32", [[0, 0]]),
                tensor("y_pred", [1, 2], "FP32", [[0.5, 3.0]]),
            ],
            "parameters": params,
        }

    default = (await client.post("/v2/models/huber/infer", json=request())).json()
    wide = (await client.post("/v2/models/huber/infer", json=request(delta=2.0))).json()
    assert outputs_of(default)["per_sample"]["data"] == pytest.approx([1.3125], rel=1e-6)
    assert outputs_of(wide)["per_sample"]["data"] == pytest.approx([2.0625], rel=1e-6)


async def test_from_logits_parameter(client: httpx.AsyncClient) -> None:
    # Logit 0 is probability 1/2 whatever the label: -log(1/2) = log 2 for each element.
    request = {
        "inputs": [
            tensor("y_true", [1, 2], "FP32", [[1, 0]]),
            tensor("y_pred", [1, 2], "FP32", [[0, 0]]),
        ],
        "parameters": {"from_logits": True},
    }
    body = (await client.post("/v2/models/bce/infer", json=request)).json()
    assert outputs_of(body)["per_sample"]["data"] == pytest.approx([math.log(2)], rel=1e-6)


async def test_sample_weight_and_reduction(client: httpx.AsyncClient, body_path: str) -> None:
    # Weighted per-sample: 2/3 * 1, 1/3 * 3 = 1 -> sum 5/3. sum_over_batch_size divides by the
    # 2 samples; mean_with_sample_weight by the weights' sum, 4.
    def request(reduction: str) -> dict[str, Any]:
        body = seed_request(parameters={"reduction": reduction})
        body["inputs"].append(tensor("sample_weight", [2], "FP32", [1, 3]))
        return body

    plain = outputs_of((await client.post("/v2/models/mse/infer", json=request("sum"))).json())
    by_weight = outputs_of(
        (await client.post("/v2/models/mse/infer", json=request("mean_with_sample_weight"))).json()
    )
    np.testing.assert_allclose(plain["per_sample"]["data"], [2 / 3, 1.0], rtol=1e-6)
    assert plain["sum"]["data"] == pytest.approx([5 / 3], rel=1e-6)
    assert plain["count"]["data"] == [2.0]
    assert plain["mean"]["data"] == pytest.approx([5 / 6], rel=1e-6)
    assert by_weight["count"]["data"] == [4.0]
    assert by_weight["mean"]["data"] == pytest.approx([5 / 12], rel=1e-6)


async def test_reserved_protocol_parameters_are_ignored(client: httpx.AsyncClient) -> None:
    params = {"binary_data_output": False, "priority": 1, "timeout": 1000}
    r = await client.post("/v2/models/mse/infer", json=seed_request(parameters=params))
    assert r.status_code == 200


async def test_non_finite_results_are_null_in_json_and_counted(
    client: httpx.AsyncClient,
) -> None:
    # Poisson: y_pred - y_true * log(y_pred + 1e-7); log of a negative rate is NaN.
    request = {
        "inputs": [
            tensor("y_true", [2, 1], "FP32", [[1], [1]]),
            tensor("y_pred", [2, 1], "FP32", [[-1], [1]]),
        ]
    }
    body = (await client.post("/v2/models/poisson/infer", json=request)).json()
    per_sample = outputs_of(body)["per_sample"]["data"]
    assert per_sample[0] is None
    assert per_sample[1] == pytest.approx(1 - math.log(1 + 1e-7), rel=1e-6)
    assert body["parameters"]["non_finite"] == 1


async def test_gzip_request_body(client: httpx.AsyncClient) -> None:
    raw = gzip.compress(json.dumps(seed_request()).encode())
    r = await client.post("/v2/models/mse/infer", content=raw, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 200
    np.testing.assert_allclose(outputs_of(r.json())["per_sample"]["data"], SEED_MSE, rtol=1e-6)


# --- Inference: binary tensor extension -----------------------------------------------------


async def test_binary_request_and_response_by_hand(client: httpx.AsyncClient) -> None:
    # What a client in another language does: a JSON header, then raw little-endian floats.
    header = json.dumps(
        {
            "id": "bin",
            "inputs": [
                {"name": "y_true", "shape": [2, 3], "datatype": "FP32",
                 "parameters": {"binary_data_size": 24}},
                {"name": "y_pred", "shape": [2, 3], "datatype": "FP64",
                 "parameters": {"binary_data_size": 48}},
            ],
            "outputs": [
                {"name": "per_sample", "parameters": {"binary_data": True}},
                {"name": "count", "parameters": {"binary_data": True}},
                {"name": "mean"},
            ],
            "parameters": {"dtype": "float32"},
        },
        separators=(",", ":"),
    ).encode()  # fmt: skip
    body = header + struct.pack("<6f", 0, 1, 1, 0, 0, 1) + struct.pack("<6d", 1, 1, 0, 1, 0, 1)
    r = await client.post(
        "/v2/models/mse/infer",
        content=body,
        headers={HEADER: str(len(header)), "Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    length = int(r.headers[HEADER])
    meta = json.loads(r.content[:length])
    assert meta["id"] == "bin"
    per_sample, count, mean = meta["outputs"]
    assert per_sample == {
        "name": "per_sample",
        "datatype": "FP32",
        "shape": [2],
        "parameters": {"binary_data_size": 8},
    }
    assert count["parameters"] == {"binary_data_size": 8}
    assert mean["data"] == [0.5]
    rest = r.content[length:]
    assert len(rest) == 16
    np.testing.assert_allclose(struct.unpack("<2f", rest[:8]), SEED_MSE, rtol=1e-6)
    assert struct.unpack("<d", rest[8:]) == (2.0,)


async def test_binary_data_output_makes_every_output_binary(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v2/models/mse/infer", json=seed_request(parameters={"binary_data_output": True})
    )
    header, blobs = split_binary(r)
    assert list(blobs) == ["per_sample", "mean", "sum", "count"]
    assert all("data" not in o for o in header["outputs"])
    np.testing.assert_allclose(np.frombuffer(blobs["per_sample"], "<f4"), SEED_MSE, rtol=1e-6)
    assert np.frombuffer(blobs["count"], "<f8").tolist() == [2.0]


async def test_binary_data_false_overrides_binary_data_output(client: httpx.AsyncClient) -> None:
    request = seed_request(
        parameters={"binary_data_output": True},
        outputs=[{"name": "mean", "parameters": {"binary_data": False}}, {"name": "sum"}],
    )
    header, blobs = split_binary(await client.post("/v2/models/mse/infer", json=request))
    assert list(blobs) == ["sum"]
    assert outputs_of(header)["mean"]["data"] == [0.5]


async def test_binary_int64_labels_with_json_predictions(client: httpx.AsyncClient) -> None:
    header = json.dumps(
        {
            "inputs": [
                tensor("y_true", [2], "INT64", binary_data_size=16),
                tensor("y_pred", [2, 3], "FP32", [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]),
            ]
        }
    ).encode()
    r = await client.post(
        "/v2/models/sparse_categorical_crossentropy/infer",
        content=header + struct.pack("<2q", 1, 2),
        headers={HEADER: str(len(header))},
    )
    assert r.status_code == 200, r.text
    per_sample = outputs_of(r.json())["per_sample"]["data"]
    np.testing.assert_allclose(per_sample, [-math.log(0.2), -math.log(0.6)], rtol=1e-6)


# --- Errors ---------------------------------------------------------------------------------


def binary_body(inputs: list[dict[str, Any]], payload: bytes) -> tuple[bytes, dict[str, str]]:
    header = json.dumps({"inputs": inputs}).encode()
    return header + payload, {HEADER: str(len(header))}


TRUE_23 = tensor("y_true", [2, 3], "FP32", SEED_TRUE)
PRED_23 = tensor("y_pred", [2, 3], "FP32", SEED_PRED)
SIX_FLOATS = struct.pack("<6f", 1, 2, 3, 4, 5, 6)

# (model, JSON request or raw bytes, extra headers, expected status, expected error message)
BAD_REQUESTS: list[tuple[str, Any, dict[str, str], int, str]] = [
    ("mse", b"{bad", {}, 400, "malformed JSON: key must be a string at line 1 column 2"),
    ("mse", b"", {}, 400, "malformed JSON: EOF while parsing a value at line 1 column 0"),
    ("mse", b"[1, 2]", {}, 400, "request: Input should be an object"),
    ("mse", {}, {}, 400, "inputs: Field required"),
    (
        "mse",
        {"inputs": [{**TRUE_23, "datas": []}, PRED_23]},
        {},
        400,
        "inputs[0].datas: Extra inputs are not permitted",
    ),
    (
        "mse",
        {"inputs": [tensor("y_true", [-2, 3], "FP32", SEED_TRUE), PRED_23]},
        {},
        400,
        "inputs[0].shape[0]: Input should be greater than or equal to 0",
    ),
    (
        "mse",
        {"inputs": [tensor("y_true", [2, 3], "BYTES", SEED_TRUE), PRED_23]},
        {},
        400,
        "input 'y_true' has datatype 'BYTES'; supported: BOOL, UINT8, UINT16, UINT32, UINT64, "
        "INT8, INT16, INT32, INT64, FP16, FP32, FP64",
    ),
    (
        "mse",
        {"inputs": [TRUE_23, tensor("y_pred", [2, 3], "FP32", [1, 2, 3, 4, 5])]},
        {},
        400,
        "input 'y_pred': shape [2, 3] needs 6 elements but data has 5",
    ),
    (
        "mse",
        {"inputs": [TRUE_23, tensor("y_pred", [2, 3], "FP32", [[1, 2, 3], [4, 5]])]},
        {},
        400,
        "input 'y_pred': data is ragged (nested lists of different lengths)",
    ),
    (
        "mse",
        {"inputs": [TRUE_23, tensor("y_pred", [2, 3], "FP32", ["a", "b", "c", "d", "e", "f"])]},
        {},
        400,
        "input 'y_pred': FP32 data must be numbers, found strings",
    ),
    (
        "mse",
        {"inputs": [TRUE_23, tensor("y_pred", [1], "FP32", [None])]},
        {},
        400,
        "input 'y_pred': FP32 data must be numbers, found null, objects or numbers too large to "
        "represent",
    ),
    (
        "sparse_categorical_crossentropy",
        {
            "inputs": [
                tensor("y_true", [1], "INT64", [0.5]),
                tensor("y_pred", [1, 2], "FP32", [1, 1]),
            ]
        },
        {},
        400,
        "input 'y_true': INT64 data must be integers, found non-integer numbers",
    ),
    (
        "mse",
        {"inputs": [tensor("y_true", [1], "INT8", [300]), tensor("y_pred", [1], "FP32", [1])]},
        {},
        400,
        "input 'y_true': 300 is out of range for INT8 [-128, 127]",
    ),
    (
        "mse",
        {"inputs": [tensor("y_true", [0], "FP32", []), tensor("y_pred", [0], "FP32", [])]},
        {},
        400,
        "input 'y_true': tensor is empty (shape [0])",
    ),
    (
        "mse",
        {"inputs": [tensor("y_true", [2, 3], "FP32"), PRED_23]},
        {},
        400,
        "input 'y_true' has no data: give 'data', or 'parameters.binary_data_size' with the binary "
        "data after the JSON header",
    ),
    (
        "mse",
        {"inputs": [TRUE_23, tensor("y_pred", [3, 2], "FP32", SEED_PRED)]},
        {},
        400,
        "input 'y_pred': y_pred has shape [3, 2] but y_true has shape [2, 3]; they must match",
    ),
    (
        "sparse_categorical_crossentropy",
        {
            "inputs": [
                tensor("y_true", [1], "INT64", [3]),
                tensor("y_pred", [1, 3], "FP32", [1] * 3),
            ]
        },
        {},
        400,
        "input 'y_true' at index [0]: label 3 is not an integer in [0, 2] (y_pred has 3 classes)",
    ),
    (
        "mse",
        {"inputs": [TRUE_23, PRED_23, TRUE_23]},
        {},
        400,
        "input 'y_true' appears more than once",
    ),
    (
        "mse",
        {"inputs": [TRUE_23, PRED_23, tensor("weights", [2], "FP32", [1, 1])]},
        {},
        400,
        "model 'mean_squared_error' has no input 'weights'; inputs: y_true, y_pred, sample_weight",
    ),
    ("mse", {"inputs": [TRUE_23]}, {}, 400, "input 'y_pred' is missing"),
    (
        "mse",
        {
            "inputs": [
                TRUE_23,
                tensor("y_pred", [2, 3], "FP32", SEED_PRED, shared_memory_region="r"),
            ]
        },
        {},
        400,
        "input 'y_pred': shared memory is not supported; send the data in the request (JSON or "
        "binary)",
    ),
    (
        "bce",
        {"inputs": [TRUE_23, PRED_23], "parameters": {"fromlogits": True}},
        {},
        400,
        "unknown parameter 'fromlogits'; model 'binary_crossentropy' takes: axis, from_logits, "
        "label_smoothing, reduction, dtype",
    ),
    (
        "huber",
        {"inputs": [TRUE_23, PRED_23], "parameters": {"delta": -1}},
        {},
        400,
        "parameter 'delta': delta must be > 0, got -1",
    ),
    (
        "bce",
        {"inputs": [TRUE_23, PRED_23], "parameters": {"from_logits": "yes"}},
        {},
        400,
        "parameter 'from_logits': from_logits must be true or false, got 'yes'",
    ),
    (
        "mse",
        {"inputs": [TRUE_23, PRED_23], "parameters": {"reduction": "avg"}},
        {},
        400,
        "parameter 'reduction' must be one of sum_over_batch_size, mean, sum, "
        "mean_with_sample_weight, none, got 'avg'",
    ),
    (
        "mse",
        {"inputs": [TRUE_23, PRED_23], "parameters": {"dtype": "float16"}},
        {},
        400,
        "parameter 'dtype' must be float32 or float64, got 'float16'",
    ),
    (
        "mse",
        {"inputs": [TRUE_23, PRED_23], "parameters": {"binary_data_output": "yes"}},
        {},
        400,
        "parameter 'binary_data_output' must be true or false, got 'yes'",
    ),
    (
        "mse",
        {"inputs": [TRUE_23, PRED_23], "outputs": [{"name": "loss"}]},
        {},
        400,
        "unknown output 'loss'; outputs: per_sample, mean, sum, count, gradient, hessian_diagonal",
    ),
    (
        "mse",
        {"inputs": [TRUE_23, PRED_23], "outputs": [{"name": "sum"}, {"name": "sum"}]},
        {},
        400,
        "output 'sum' is requested more than once",
    ),
    (
        "mse",
        {
            "inputs": [TRUE_23, PRED_23],
            "outputs": [{"name": "per_sample", "parameters": {"classification": 2}}],
        },
        {},
        400,
        "output 'per_sample': classification is not supported",
    ),
    (
        "mse",
        {
            "inputs": [TRUE_23, PRED_23],
            "outputs": [{"name": "per_sample", "parameters": {"binary_data": 1}}],
        },
        {},
        400,
        "output 'per_sample': binary_data must be true or false, got 1",
    ),
    (
        "mse",
        b"{}",
        {HEADER: "x"},
        400,
        "Inference-Header-Content-Length must be a non-negative integer, got 'x'",
    ),
    (
        "mse",
        b"{}",
        {HEADER: "-2"},
        400,
        "Inference-Header-Content-Length must be a non-negative integer, got '-2'",
    ),
    (
        "mse",
        b"{}",
        {HEADER: "10"},
        400,
        "Inference-Header-Content-Length is 10 bytes but the request body has only 2",
    ),
    (
        "mse",
        binary_body(
            [TRUE_23, tensor("y_pred", [2, 3], "FP32", binary_data_size=20)], SIX_FLOATS[:20]
        ),
        {},
        400,
        "input 'y_pred': binary_data_size is 20 bytes but shape [2, 3] of FP32 needs 24",
    ),
    (
        "mse",
        binary_body(
            [TRUE_23, tensor("y_pred", [2, 3], "FP32", binary_data_size=24)], SIX_FLOATS[:12]
        ),
        {},
        400,
        "input 'y_pred' declares 24 bytes of binary data but only 12 remain in the request body",
    ),
    (
        "mse",
        binary_body(
            [TRUE_23, tensor("y_pred", [2, 3], "FP32", binary_data_size=24)], SIX_FLOATS + b"\0"
        ),
        {},
        400,
        "the request body has 25 bytes after the JSON header but the inputs' binary_data_size "
        "values add up to 24",
    ),
    (
        "mse",
        binary_body(
            [TRUE_23, tensor("y_pred", [2, 3], "FP32", SEED_PRED, binary_data_size=24)],
            SIX_FLOATS,
        ),
        {},
        400,
        "input 'y_pred' has both JSON data and binary_data_size",
    ),
    (
        "mse",
        binary_body([TRUE_23, tensor("y_pred", [2, 3], "FP32", binary_data_size=-24)], SIX_FLOATS),
        {},
        400,
        "input 'y_pred': binary_data_size must be a non-negative integer, got -24",
    ),
    (
        "mse",
        binary_body(
            [TRUE_23, tensor("y_pred", [2, 3], "FP32", binary_data_size=24)],
            struct.pack("<6f", 1, float("nan"), 0, 0, 0, 0),
        ),
        {},
        400,
        "input 'y_pred' at index [0, 1]: value is NaN; only finite numbers are accepted",
    ),
    (
        "mse",
        b"\x1f\x8b not gzip",
        {"Content-Encoding": "gzip"},
        400,
        "request body is not valid gzip data: Error -3 while decompressing data: unknown "
        "compression method",
    ),
    (
        "mse",
        b"{}",
        {"Content-Encoding": "br"},
        415,
        "unsupported Content-Encoding 'br'; use gzip, deflate or none",
    ),
    (
        "msee",
        {"inputs": [TRUE_23, PRED_23]},
        {},
        404,
        "unknown model 'msee'; did you mean 'mse', 'msle'?",
    ),
    (
        "mse/versions/2",
        {"inputs": [TRUE_23, PRED_23]},
        {},
        404,
        "model 'mean_squared_error' has no version '2'; versions: 1",
    ),
]


def _case_id(case: tuple[str, Any, dict[str, str], int, str]) -> str:
    return f"{case[3]}-{case[4][:40]}"


@pytest.mark.parametrize(
    ("model", "request_body", "headers", "status", "message"),
    BAD_REQUESTS,
    ids=[_case_id(c) for c in BAD_REQUESTS],
)
async def test_bad_requests(
    client: httpx.AsyncClient,
    body_path: str,
    model: str,
    request_body: Any,
    headers: dict[str, str],
    status: int,
    message: str,
) -> None:
    if isinstance(request_body, tuple):  # (bytes, headers) from binary_body
        request_body, extra = request_body
        headers = {**headers, **extra}
    content = request_body if isinstance(request_body, bytes) else json.dumps(request_body).encode()
    r = await client.post(f"/v2/models/{model}/infer", content=content, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"error": message}


async def test_fp64_value_too_large_for_float32_is_rejected(
    client: httpx.AsyncClient, body_path: str
) -> None:
    body, headers = binary_body(
        [TRUE_23, tensor("y_pred", [2, 3], "FP64", binary_data_size=48)],
        struct.pack("<6d", 1, 1, 1, 1, 1e300, 1),
    )
    # FP64 computes in float64 by default, where 1e300 is finite...
    fine = await client.post("/v2/models/mse/infer", content=body, headers=headers)
    assert fine.status_code == 200
    # ... but asking for float32 overflows it.
    header = json.loads(body[: int(headers[HEADER])])
    header["parameters"] = {"dtype": "float32"}
    new_header = json.dumps(header).encode()
    r = await client.post(
        "/v2/models/mse/infer",
        content=new_header + body[int(headers[HEADER]) :],
        headers={HEADER: str(len(new_header))},
    )
    assert r.status_code == 400
    assert r.json() == {
        "error": "input 'y_pred' at index [1, 1]: value is infinite (or too large for the dtype); "
        "only finite numbers are accepted"
    }


def v2_only_app(settings: Settings) -> FastAPI:
    """The v2 router on its own, without the application's middleware (with the error handlers
    that answer its errors in the protocol's form)."""
    app = FastAPI()
    app.state.settings = settings
    app.include_router(v2.router)
    problems.install(app)
    return app


async def test_v2_inflation_and_element_limits() -> None:
    """The limits the v2 routes enforce themselves; the body limit is the request gate's."""
    async with serve(v2_only_app(Settings(max_body_bytes=2048, max_elements=4))) as c:
        bomb = gzip.compress(b" " * 100_000)
        inflated = await c.post(
            "/v2/models/mse/infer", content=bomb, headers={"Content-Encoding": "gzip"}
        )
        assert inflated.status_code == 413
        assert inflated.json() == {
            "error": "request body inflates to more than the limit of 2048 bytes"
        }
        many = await c.post("/v2/models/mse/infer", json=seed_request())
        assert many.status_code == 400
        assert many.json() == {
            "error": "input 'y_true' has 6 elements (shape [2, 3]); the limit is 4"
        }


TOO_LARGE = "request body is larger than the limit of 2048 bytes (LOSSD_MAX_BODY_BYTES)"


async def test_body_limit_through_the_app_chunked() -> None:
    async with serve(create_app(Settings(max_body_bytes=2048))) as c:

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
            for _ in range(4):
                yield b" " * 1024

        r = await c.post("/v2/models/mse/infer", content=chunks())
        assert r.status_code == 413
        assert r.headers["content-type"] == "application/json"
        assert r.json() == {"error": TOO_LARGE}


async def test_body_limit_through_the_app_content_length() -> None:
    async with serve(create_app(Settings(max_body_bytes=2048))) as c:
        r = await c.post("/v2/models/mse/infer", content=b" " * 4096)
        assert r.status_code == 413
        assert r.headers["content-type"] == "application/json"
        assert r.json() == {"error": TOO_LARGE}


async def test_not_ready_before_start_up() -> None:
    transport = httpx.ASGITransport(app=create_app())  # lifespan not run: still starting
    async with httpx.AsyncClient(transport=transport, base_url="http://lossd") as c:
        server = await c.get("/v2/health/ready")
        model = await c.get("/v2/models/mse/ready")
        live = await c.get("/v2/health/live")
    assert (server.status_code, server.json()) == (503, {"ready": False})
    assert (model.status_code, model.json()) == (
        503,
        {"name": "mean_squared_error", "ready": False},
    )
    assert live.status_code == 200


async def test_wrong_method_and_unknown_path(client: httpx.AsyncClient) -> None:
    wrong = await client.get("/v2/models/mse/infer")
    assert wrong.status_code == 405
    assert wrong.json() == {"error": "GET is not allowed here; use POST"}
    assert wrong.headers["allow"] == "POST"
    missing = await client.get("/v2/models/mse/explain")
    assert missing.status_code == 404
    assert missing.json() == {"error": "no v2 endpoint at /v2/models/mse/explain"}


def test_an_unexpected_error_on_v2_answers_in_the_protocols_form(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(v2, "run_inference", broken)
    with TestClient(create_app(Settings()), raise_server_exceptions=False) as c:
        response = c.post("/v2/models/mse/infer", json=seed_request())
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"error": "internal error; it has been logged"}


async def test_json_outputs_over_the_response_limit_are_refused() -> None:
    # JSON outputs are bounded like /v1 answers; binary outputs are bounded by the input
    async with serve(create_app(Settings(max_response_bytes=4096))) as c:
        ones = [1.0] * 2000
        request = {
            "inputs": [
                tensor("y_true", [2000, 1], "FP32", [0.0] * 2000),
                tensor("y_pred", [2000, 1], "FP32", ones),
            ]
        }
        r = await c.post("/v2/models/mse/infer", json=request)
        # 400, as /v2 answers every request the client must change (the element limit too)
        assert r.status_code == 400 and r.headers["content-type"] == "application/json"
        error = r.json()["error"]
        assert "4096 bytes" in error and "LOSSD_MAX_RESPONSE_BYTES" in error, error
        assert "binary" in error
        only_mean = {**request, "outputs": [{"name": "mean"}]}
        assert (await c.post("/v2/models/mse/infer", json=only_mean)).status_code == 200
        binary = {**request, "parameters": {"binary_data_output": True}}
        r = await c.post("/v2/models/mse/infer", json=binary)
        assert r.status_code == 200 and len(r.content) > 8000
