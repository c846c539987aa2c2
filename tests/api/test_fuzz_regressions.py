"""Regression tests for what the schemathesis fuzz run (tests/fuzz) found.

Expected numbers are derived by hand in each test from the seed example: mean squared error of
y_true [[0, 1, 1], [0, 0, 1]] and y_pred [[1, 1, 0], [1, 0, 1]] is 2/3 for the first sample
((1 + 0 + 1) / 3) and 1/3 for the second ((1 + 0 + 0) / 3).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers import SEED, assert_problem

# --- sample_weight took `false` as weight 0 and "2" as 2 (lax float parsing) ------------------


@pytest.mark.parametrize("weight", [False, True, "2", "0.5"])
def test_scalar_sample_weight_must_be_a_number(client: TestClient, weight: Any) -> None:
    response = client.post("/v1/losses/mse", json={**SEED, "sample_weight": weight})
    body = assert_problem(response, 422)
    assert any(e["pointer"].startswith("/sample_weight") for e in body["errors"]), body


def test_scalar_sample_weight_number_still_scales(client: TestClient) -> None:
    # Weight 2 on every sample: per-sample [4/3, 2/3]; sum_over_batch_size = (4/3 + 2/3) / 2 = 1.
    response = client.post("/v1/losses/mse", json={**SEED, "sample_weight": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["per_sample"] == pytest.approx([4 / 3, 2 / 3], rel=1e-6)
    assert body["mean"] == pytest.approx(1.0, rel=1e-6)


def test_batch_item_with_boolean_weight_fails_alone(client: TestClient) -> None:
    items = [
        {"id": "bad", "loss": "mse", **SEED, "sample_weight": False},
        {"id": "good", "loss": "mse", **SEED, "sample_weight": 1},
    ]
    results = client.post("/v1/batch", json={"items": items}).json()["results"]
    assert [r["status"] for r in results] == [422, 200]
    assert results[1]["results"][0]["mean"] == pytest.approx(0.5, rel=1e-6)  # (2/3 + 1/3) / 2


def test_stream_line_with_boolean_weight_is_refused(client: TestClient) -> None:
    line = b'{"y_true": [[0, 1]], "y_pred": [[1, 1]], "sample_weight": false}\n'
    response = client.post(
        "/v1/losses/mse/stream", content=line, headers={"content-type": "application/x-ndjson"}
    )
    body = assert_problem(response, 422)
    assert any(e["pointer"].startswith("/line/1/sample_weight") for e in body["errors"]), body


# --- 405 listed only the first route's methods (GET), not POST on the same path -----------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/v1/losses/mse", {"GET", "POST"}),
        ("DELETE", "/v1/losses/mse", {"GET", "POST"}),
        ("PUT", "/v1/losses", {"GET"}),
        ("GET", "/v1/batch", {"POST"}),
    ],
)
def test_405_allow_lists_every_method_of_the_path(
    client: TestClient, method: str, path: str, allowed: set[str]
) -> None:
    response = client.request(method, path)
    assert_problem(response, 405)
    listed = {m.strip() for m in response.headers["allow"].split(",")}
    assert listed - {"HEAD"} == allowed
