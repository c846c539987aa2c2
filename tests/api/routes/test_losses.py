"""/v1/losses through the ASGI app (app/api/routes/losses.py): the catalogue, evaluation of the
seed example and others, the bad-input corpus (tests/corpus.py) and the limits.

Expected numbers are the seed document's (printed by Keras) or derived by hand in the test.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.settings import Settings
from tests.corpus import CASES, BadInput
from tests.helpers import SEED_PRED, SEED_TRUE, assert_problem

# --- catalogue -------------------------------------------------------------------------------


def test_catalogue_lists_every_loss_with_options(client: TestClient) -> None:
    body = client.get("/v1/losses").json()
    names = {entry["name"] for entry in body["losses"]}
    assert len(names) == 34  # 19 Keras losses, 15 torch
    assert {"mean_squared_error", "tversky", "sparse_categorical_crossentropy"} <= names
    bce = next(e for e in body["losses"] if e["name"] == "binary_crossentropy")
    assert {"from_logits", "label_smoothing", "axis"} == {o["name"] for o in bce["options"]}
    smoothing = next(o for o in bce["options"] if o["name"] == "label_smoothing")
    assert (
        smoothing["type"],
        smoothing["default"],
        smoothing["minimum"],
        smoothing["maximum"],
    ) == ("number", 0.0, 0.0, 1.0)


@pytest.mark.parametrize(
    "alias", ["mse", "MSE", "MeanSquaredError", "loss_mean_squared_error", "Mean_Squared_Error"]
)
def test_catalogue_entry_resolves_aliases(client: TestClient, alias: str) -> None:
    entry = client.get(f"/v1/losses/{alias}").json()
    assert entry["name"] == "mean_squared_error"
    assert entry["class_name"] == "MeanSquaredError"


def test_unknown_loss_is_404_with_suggestions(client: TestClient) -> None:
    body = assert_problem(client.get("/v1/losses/mean_sqared_error"), 404, "/path/name")
    assert "mean_squared_error" in body["suggestions"]
    body = assert_problem(client.post("/v1/losses/msee", json={}), 404)
    assert "mse" in body["suggestions"]


# --- evaluate --------------------------------------------------------------------------------


def test_seed_example_over_http(client: TestClient, body_path: str) -> None:
    r = client.post("/v1/losses/mse", json={"y_true": SEED_TRUE, "y_pred": SEED_PRED})
    assert r.status_code == 200
    body = r.json()
    # Seed 002 prints [0.6666667 0.33333334] for MSE.
    assert body["per_sample"] == [0.6666667, 0.33333334]
    assert body["loss"] == "mean_squared_error"
    assert body["shape"] == [2]
    assert body["count"] == 2 and body["dtype"] == "float32"
    assert body["mean"] == pytest.approx(0.5) and body["sum"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("mape", [3.3333338e08, 3.3333331e08]),
        ("msle", [0.32030192, 0.16015096]),
        ("logcosh", [0.2891872, 0.1445936]),
        ("categorical_hinge", [1.0, 1.0]),
    ],
)
def test_seed_example_other_losses(client: TestClient, name: str, expected: list[float]) -> None:
    body = client.post(f"/v1/losses/{name}", json={"y_true": SEED_TRUE, "y_pred": SEED_PRED}).json()
    np.testing.assert_allclose(body["per_sample"], expected, rtol=1e-6)


def test_options_sample_weight_and_reductions(client: TestClient, body_path: str) -> None:
    # huber, delta=0.5, errors 0.25 (quadratic: 0.5*0.0625) and 2 (linear: 0.5*2 - 0.125)
    y_true, y_pred = [[0.0], [0.0]], [[0.25], [2.0]]
    per = [0.03125, 0.875]
    w = [2.0, 1.0]
    base = {"y_true": y_true, "y_pred": y_pred, "options": {"delta": 0.5}, "sample_weight": w}
    weighted = [per[0] * w[0], per[1] * w[1]]
    expect = {
        "sum_over_batch_size": sum(weighted) / 2,
        "sum": sum(weighted),
        "mean_with_sample_weight": sum(weighted) / sum(w),
    }
    for reduction, value in expect.items():
        body = client.post("/v1/losses/huber_loss", json={**base, "reduction": reduction}).json()
        np.testing.assert_allclose(body["per_sample"], weighted, rtol=1e-6)
        assert body["value"] == pytest.approx(value, rel=1e-6)
        assert body["mean"] == pytest.approx(body["sum"] / body["count"], rel=1e-6)
    none = client.post("/v1/losses/huber", json={**base, "reduction": "none"}).json()
    assert none["value"] is None
    assert none["count"] == 2


def test_float64_on_request(client: TestClient) -> None:
    body = client.post(
        "/v1/losses/mse", json={"y_true": [[0, 0, 0]], "y_pred": [[1, 1, 0]], "dtype": "float64"}
    ).json()
    assert body["dtype"] == "float64"
    assert body["per_sample"] == [2 / 3]  # float64 shortest repr, 0.6666666666666666


def test_sparse_labels_and_ignore_class(client: TestClient) -> None:
    # -log(0.8) for the first sample; the second (label 2 == ignore_class) is left out.
    body = client.post(
        "/v1/losses/sparse_categorical_crossentropy",
        json={
            "y_true": [0, 2],
            "y_pred": [[0.8, 0.1, 0.1], [0.3, 0.3, 0.4]],
            "options": {"ignore_class": 2},
        },
    ).json()
    assert body["per_sample"][1] == 0.0
    assert body["per_sample"][0] == pytest.approx(-math.log(0.8), rel=1e-6)
    assert body["count"] == 1
    assert body["mean"] == pytest.approx(-math.log(0.8), rel=1e-6)


def test_non_finite_output_is_reported_as_null(client: TestClient) -> None:
    # poisson: y_pred - y_true log(y_pred + eps); log of a negative rate is NaN.
    body = client.post(
        "/v1/losses/poisson", json={"y_true": [[1.0], [1.0]], "y_pred": [[-1.0], [1.0]]}
    ).json()
    assert body["per_sample"][0] is None
    assert body["per_sample"][1] == pytest.approx(1.0, rel=1e-6)
    assert body["non_finite"] == 1
    assert body["mean"] is None


# --- the bad-input corpus --------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_bad_input_corpus(client: TestClient, body_path: str, case: BadInput) -> None:
    response = client.post("/v1/losses/mse", content=case.content, headers=case.headers)
    assert_problem(response, case.status, case.pointer)


# --- limits and labels -----------------------------------------------------------------------


def test_sparse_label_out_of_range(client: TestClient) -> None:
    r = client.post(
        "/v1/losses/sparse_categorical_crossentropy",
        json={"y_true": [0, 3], "y_pred": [[0.5, 0.5], [0.1, 0.9]]},
    )
    body = assert_problem(r, 422, "/y_true/1")
    assert "label 3" in body["detail"]


def test_body_limit_from_content_length_and_while_reading(
    make_client: Callable[..., TestClient],
) -> None:
    c = make_client(max_body_bytes=2048)
    big = json.dumps({"y_true": [[0.0] * 500], "y_pred": [[1.0] * 500]}).encode()
    assert_problem(
        c.post("/v1/losses/mse", content=big, headers={"content-type": "application/json"}), 413
    )

    def chunks() -> Any:  # no Content-Length: the limit applies while the body streams in
        for i in range(0, len(big), 512):
            yield big[i : i + 512]

    assert_problem(
        c.post("/v1/losses/mse", content=chunks(), headers={"content-type": "application/json"}),
        413,
    )


def test_element_limit(make_client: Callable[..., TestClient]) -> None:
    c = make_client(max_elements=10)
    body = {"y_true": [[0.0] * 11], "y_pred": [[1.0] * 11]}
    assert_problem(c.post("/v1/losses/mse", json=body), 422, "/y_true")


def test_an_answer_over_the_response_limit_is_a_clear_422(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(max_response_bytes=4096)
    small = {"y_true": [[0.0, 1.0]] * 10, "y_pred": [[1.0, 1.0]] * 10}
    assert client.post("/v1/losses/mse", json=small).status_code == 200
    big = {"y_true": [[0.0]] * 2000, "y_pred": [[1.0]] * 2000}  # 2000 per-sample values
    problem = assert_problem(client.post("/v1/losses/mse", json=big), 422)
    assert problem["type"] == "urn:lossd:problem:response-too-large"
    for advice in ("4096 bytes", "LOSSD_MAX_RESPONSE_BYTES", "/stream", "/v2", "binary"):
        assert advice in problem["detail"], advice


def test_the_response_limit_follows_the_body_limit_by_default() -> None:
    assert Settings().response_limit == Settings().max_body_bytes
    assert Settings(max_body_bytes=4096).response_limit == 4096
    assert Settings(max_body_bytes=4096, max_response_bytes=8192).response_limit == 8192
    assert Settings(max_body_bytes=4096, max_response_bytes="").response_limit == 4096
