"""Derivatives over /v1 (``"gradient": true``, ``"hessian_diagonal": true``): single requests,
batch items, the stream's refusal, the response limit and the plain answer left unchanged.

Expected numbers are derived by hand in each test (docs/derivatives.md, "Formulas"); the engine's
own formulas are checked against JAX in tests/derivatives.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers import SEED, SEED_PRED, SEED_TRUE, assert_problem, ndjson

PLAIN_FIELDS = {
    "loss",
    "per_sample",
    "shape",
    "mean",
    "sum",
    "count",
    "value",
    "reduction",
    "dtype",
    "non_finite",
}
DERIVATIVE_FIELDS = {
    "y_pred_shape",
    "gradient",
    "gradient_non_finite",
    "hessian_diagonal",
    "hessian_diagonal_non_finite",
}


def _residuals() -> list[float]:
    return [
        p - t
        for rp, rt in zip(SEED_PRED, SEED_TRUE, strict=True)
        for p, t in zip(rp, rt, strict=True)
    ]


def test_mse_gradient_and_hessian_by_hand(client: TestClient, body_path: str) -> None:
    # value = (1/2) sum_samples (1/3) sum_j (x - t)^2: d/dx = 2 (x - t) / 6, d2/dx2 = 2 / 6.
    body = {**SEED, "gradient": True, "hessian_diagonal": True}
    r = client.post("/v1/losses/mse", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out) == PLAIN_FIELDS | DERIVATIVE_FIELDS
    assert out["y_pred_shape"] == [2, 3]
    assert out["gradient"] == pytest.approx([2 * d / 6 for d in _residuals()], rel=1e-7)
    assert out["hessian_diagonal"] == pytest.approx([2 / 6] * 6, rel=1e-7)
    assert out["gradient_non_finite"] == out["hessian_diagonal_non_finite"] == 0
    # float32 values written as float32, like per_sample.
    assert '"gradient":[0.33333334,0.0,-0.33333334,0.33333334,0.0,0.0]' in r.text
    assert out["mean"] == 0.5  # the value is unchanged


@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_sum_and_none_differentiate_the_sum(client: TestClient, reduction: str) -> None:
    # sum: d/dx sum_s w_s (1/3) sum_j (x - t)^2 = 2 w_s (x - t) / 3; none: the same sum.
    body = {**SEED, "sample_weight": [2, 0.5], "reduction": reduction, "gradient": True}
    out = client.post("/v1/losses/mse", json=body).json()
    weights = [2.0] * 3 + [0.5] * 3
    expected = [2 * w * d / 3 for w, d in zip(weights, _residuals(), strict=True)]
    assert out["gradient"] == pytest.approx(expected, rel=1e-7)
    assert "hessian_diagonal" not in out and "hessian_diagonal_non_finite" not in out
    assert out["y_pred_shape"] == [2, 3]


def test_logistic_objective_in_float64_by_hand(client: TestClient) -> None:
    # Binary cross-entropy from logits, reduction sum, y_pred (n, 1) against y_true (n,): the
    # XGBoost objective: gradient sigmoid(x) - t, Hessian sigmoid(x) (1 - sigmoid(x)).
    x = [0.0, math.log(3.0)]  # sigmoid: 1/2 and 3/4
    body = {
        "y_true": [1, 0],
        "y_pred": [[v] for v in x],
        "options": {"from_logits": True},
        "reduction": "sum",
        "dtype": "float64",
        "gradient": True,
        "hessian_diagonal": True,
    }
    out = client.post("/v1/losses/binary_crossentropy", json=body).json()
    assert out["y_pred_shape"] == [2, 1]
    assert out["dtype"] == "float64"
    assert out["gradient"] == pytest.approx([0.5 - 1, 0.75 - 0], rel=1e-12)
    assert out["hessian_diagonal"] == pytest.approx([0.25, 0.75 * 0.25], rel=1e-12)


def test_hessian_alone(client: TestClient) -> None:
    out = client.post("/v1/losses/mse", json={**SEED, "hessian_diagonal": True}).json()
    assert set(out) == PLAIN_FIELDS | {
        "y_pred_shape",
        "hessian_diagonal",
        "hessian_diagonal_non_finite",
    }


def test_non_finite_derivatives_are_null_and_counted(client: TestClient) -> None:
    # Categorical cross-entropy of a row of zeros: x / sum(x) is 0/0, so are its derivatives.
    body = {
        "y_true": [[1, 0], [0, 1]],
        "y_pred": [[0, 0], [0.25, 0.75]],
        "gradient": True,
        "hessian_diagonal": True,
    }
    r = client.post("/v1/losses/categorical_crossentropy", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["gradient"][:2] == [None, None]
    assert out["gradient_non_finite"] == 2
    assert out["hessian_diagonal"][:2] == [None, None]
    assert out["hessian_diagonal_non_finite"] == 2
    # The second row: S = 1, g = T / S - t / x = 1 - [0, 1/0.75] (halved by the mean over 2).
    assert out["gradient"][2:] == pytest.approx([0.5, (1 - 1 / 0.75) / 2], rel=1e-6)


def test_not_asking_leaves_the_answer_byte_identical(client: TestClient) -> None:
    plain = client.post("/v1/losses/mse", json=SEED)
    explicit = client.post(
        "/v1/losses/mse", json={**SEED, "gradient": False, "hessian_diagonal": False}
    )
    assert plain.content == explicit.content
    assert set(plain.json()) == PLAIN_FIELDS


@pytest.mark.parametrize("value", ["yes", 1, None, "true"])
def test_the_flags_are_booleans(client: TestClient, value: Any) -> None:
    for field in ("gradient", "hessian_diagonal"):
        r = client.post("/v1/losses/mse", json={**SEED, field: value})
        assert_problem(r, 422, f"/{field}")


def test_the_response_limit_counts_the_derivatives(
    make_client: Callable[..., TestClient],
) -> None:
    # 2 samples of 600 values: the plain answer is small; the gradient, at least 4 bytes a
    # value (3 characters and a comma), is known to be over 4 KB before it is written.
    client = make_client(max_response_bytes=4096)
    body = {"y_true": [[0.0] * 600] * 2, "y_pred": [[0.5] * 600] * 2}
    assert client.post("/v1/losses/mse", json=body).status_code == 200
    problem = assert_problem(client.post("/v1/losses/mse", json={**body, "gradient": True}), 422)
    assert problem["type"] == "urn:lossd:problem:response-too-large"
    assert "at least" in problem["detail"]  # refused before it was written


# --- batch -----------------------------------------------------------------------------------


def test_batch_items_ask_for_derivatives_each(client: TestClient, body_path: str) -> None:
    items = [
        {"id": "d", "loss": ["mse", "mae"], **SEED, "gradient": True, "hessian_diagonal": True},
        {"id": "plain", "loss": "mse", **SEED},
        {"id": "bad", "loss": "mse", **SEED, "gradient": "yes"},
    ]
    r = client.post("/v1/batch", json={"items": items})
    assert r.status_code == 200, r.text
    with_d, plain, bad = r.json()["results"]
    mse, mae = with_d["results"]
    assert mse["gradient"] == pytest.approx([2 * d / 6 for d in _residuals()], rel=1e-7)
    # MAE: sign(x - t) / 6 (sign(0) = 0), Hessian 0.
    signs = [(d > 0) - (d < 0) for d in _residuals()]
    assert mae["gradient"] == pytest.approx([s / 6 for s in signs], rel=1e-7)
    assert mae["hessian_diagonal"] == [0.0] * 6
    assert mse["y_pred_shape"] == mae["y_pred_shape"] == [2, 3]
    assert set(plain["results"][0]) == PLAIN_FIELDS
    assert bad["status"] == 422
    assert bad["error"]["errors"][0]["pointer"] == "/items/2/gradient"


# --- stream ----------------------------------------------------------------------------------


def test_a_stream_refuses_derivatives_with_where_to_ask(client: TestClient) -> None:
    headers = {"content-type": "application/x-ndjson"}
    line = {**SEED, "gradient": True}
    body = assert_problem(
        client.post("/v1/losses/mse/stream", content=ndjson(line), headers=headers), 422, "/line/1"
    )
    assert "/v1/batch" in body["detail"] and "line 1" in body["detail"]
    body = assert_problem(
        client.post(
            "/v1/losses/mse/stream?hessian_diagonal=true", content=ndjson(SEED), headers=headers
        ),
        422,
        "/query/hessian_diagonal",
    )
    assert "POST /v1/losses/{name}" in body["detail"]


def test_openapi_documents_the_fields(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for name in ("EvaluateRequest", "BatchItem"):
        props = schemas[name]["properties"]
        assert props["gradient"]["type"] == props["hessian_diagonal"]["type"] == "boolean"
        assert props["gradient"]["default"] is False
    response = schemas["EvaluateResponse"]
    assert set(response["properties"]) >= DERIVATIVE_FIELDS
    assert not DERIVATIVE_FIELDS & set(response.get("required", []))
    gradient = response["properties"]["gradient"]
    assert gradient["type"] == "array" and "anyOf" not in gradient  # absent, never null
    assert {"type": "null"} in gradient["items"]["anyOf"]  # a non-finite value is
