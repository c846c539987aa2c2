"""/v1/batch through the ASGI app (app/api/routes/batch.py): items succeed or fail alone.

Expected numbers are the seed document's (printed by Keras) or derived by hand in the test.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from fastapi.testclient import TestClient

from tests.helpers import SEED_PRED, SEED_TRUE, assert_problem


def test_batch_items_succeed_or_fail_alone(client: TestClient, body_path: str) -> None:
    items = [
        {
            "id": "a",
            "loss": ["mse", "mae", {"name": "huber", "options": {"delta": 2.0}}],
            "y_true": SEED_TRUE,
            "y_pred": SEED_PRED,
        },
        {"id": "b", "loss": "no_such_loss", "y_true": [[0]], "y_pred": [[1]]},
        {"id": "c", "loss": "mse", "y_true": [[0, 1]], "y_pred": [[1]]},
        {
            "id": "d",
            "loss": ["mse", {"name": "huber", "options": {"delta": -1}}],
            "y_true": [[0.0]],
            "y_pred": [[1.0]],
        },
        {"id": "e", "loss": "mse", "y_true": [[0, 1], [1]], "y_pred": [[1, 1], [1, 1]]},
    ]
    r = client.post("/v1/batch", json={"items": items})
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["id"] for x in results] == ["a", "b", "c", "d", "e"]
    a = results[0]
    assert a["status"] == 200 and [x["loss"] for x in a["results"]] == [
        "mean_squared_error",
        "mean_absolute_error",
        "huber",
    ]
    assert a["results"][0]["per_sample"] == [0.6666667, 0.33333334]
    # huber, delta 2: every |error| <= 2 -> 0.5 x^2: rows (0.5+0+0.5)/3 and (0.5+0+0)/3
    np.testing.assert_allclose(a["results"][2]["per_sample"], [1 / 3, 1 / 6], rtol=1e-6)
    assert results[1]["status"] == 404 and results[1]["error"]["errors"][0]["pointer"] == (
        "/items/1/loss"
    )
    assert results[2]["status"] == 422 and results[2]["error"]["errors"][0]["pointer"] == (
        "/items/2/y_pred"
    )
    assert results[3]["error"]["errors"][0]["pointer"] == "/items/3/loss/1/options/delta"
    assert results[4]["error"]["errors"][0]["pointer"] == "/items/4/y_true/1"


def test_batch_item_limit(make_client: Callable[..., TestClient]) -> None:
    c = make_client(max_batch_items=2)
    item = {"loss": "mse", "y_true": [[0]], "y_pred": [[1]]}
    assert_problem(c.post("/v1/batch", json={"items": [item] * 3}), 422, "/items")
    assert c.post("/v1/batch", json={"items": [item] * 2}).status_code == 200


def test_batch_pointer_has_no_pydantic_type_labels(client: TestClient) -> None:
    item = {"loss": {"name": "mse"}, "y_true": [[0.0]], "y_pred": [[1.0]]}
    result = client.post("/v1/batch", json={"items": [item]}).json()["results"][0]
    assert result["status"] == 422
    assert {e["pointer"] for e in result["error"]["errors"]} == {"/items/0/loss"}


def test_a_batch_answer_over_the_response_limit_is_a_clear_422(
    make_client: Callable[..., TestClient],
) -> None:
    # the review: many items with per-sample values answer several times the request
    client = make_client(max_response_bytes=64 * 1024)
    item = {
        "loss": ["mse", "mae", "huber", "log_cosh"],
        "y_true": [[0]] * 300,
        "y_pred": [[1]] * 300,
    }
    body = {"items": [item] * 20}  # 24 KB of request, ~24000 per-sample values
    problem = assert_problem(client.post("/v1/batch", json=body), 422)
    assert problem["type"] == "urn:lossd:problem:response-too-large"
    assert "fewer items" in problem["detail"]
    assert client.post("/v1/batch", json={"items": [item]}).status_code == 200
