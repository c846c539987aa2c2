"""The v1 API through the ASGI app: every endpoint, the seed example, and bad input.

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

from tests.helpers import SEED_PRED, SEED_TRUE, assert_problem, ndjson

# --- catalogue -------------------------------------------------------------------------------


def test_catalogue_lists_every_loss_with_options(client: TestClient) -> None:
    body = client.get("/v1/losses").json()
    names = {entry["name"] for entry in body["losses"]}
    assert len(names) == 19
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


# --- batch -----------------------------------------------------------------------------------


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


# --- stream ----------------------------------------------------------------------------------

NDJSON = {"content-type": "application/x-ndjson"}


def test_stream_merges_chunks_like_one_request(client: TestClient) -> None:
    body = ndjson(
        {"y_true": [SEED_TRUE[0]], "y_pred": [SEED_PRED[0]]},
        {"y_true": [SEED_TRUE[1]], "y_pred": [SEED_PRED[1]]},
    )
    r = client.post(
        "/v1/losses/mse/stream", content=body, headers=NDJSON, params={"per_sample": "true"}
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["per_sample"] == [0.6666667, 0.33333334]
    assert out["chunks"] == 2 and out["count"] == 2
    assert out["mean"] == pytest.approx(0.5)
    plain = client.post("/v1/losses/mse/stream", content=body, headers=NDJSON).json()
    assert plain["per_sample"] is None and plain["mean"] == pytest.approx(0.5)


def test_stream_options_from_query(client: TestClient) -> None:
    # BCE from logits 0 -> log(2) whatever the label.
    body = ndjson({"y_true": [[1.0, 0.0]], "y_pred": [[0.0, 0.0]]})
    out = client.post(
        "/v1/losses/bce/stream",
        content=body,
        headers=NDJSON,
        params={"options": json.dumps({"from_logits": True})},
    ).json()
    assert out["mean"] == pytest.approx(math.log(2), rel=1e-6)


def test_stream_bad_line_names_its_number(client: TestClient, body_path: str) -> None:
    body = ndjson({"y_true": [[0, 1]], "y_pred": [[1, 1]]}) + b"\n" + b'{"y_true": [[0, 1]]\n'
    problem = assert_problem(
        client.post("/v1/losses/mse/stream", content=body, headers=NDJSON), 400, "/line/3"
    )
    assert problem["detail"].startswith("line 3:")
    body = ndjson({"y_true": [[0, 1]], "y_pred": [[1, 1]]}, {"y_true": [[0, 1]], "y_pred": [[1]]})
    problem = assert_problem(
        client.post("/v1/losses/mse/stream", content=body, headers=NDJSON), 422, "/line/2/y_pred"
    )
    assert problem["detail"].startswith("line 2:")


def test_stream_needs_ndjson_and_a_chunk(client: TestClient) -> None:
    assert_problem(
        client.post(
            "/v1/losses/mse/stream", content=b"{}", headers={"content-type": "application/json"}
        ),
        415,
    )
    assert_problem(client.post("/v1/losses/mse/stream", content=b"\n\n", headers=NDJSON), 422)


def test_stream_line_limit(make_client: Callable[..., TestClient]) -> None:
    c = make_client(max_body_bytes=1024)
    long_line = ndjson({"y_true": [[0.0] * 200], "y_pred": [[1.0] * 200]})
    assert_problem(c.post("/v1/losses/mse/stream", content=long_line, headers=NDJSON), 413)


# --- health, docs, routes --------------------------------------------------------------------


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_docs_are_served_without_a_cdn(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text and "/docs/assets/swagger-ui-bundle.js" in page.text
    assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200


def test_unknown_route_and_method_are_problems(client: TestClient) -> None:
    assert_problem(client.get("/v1/nothing"), 404)
    assert_problem(client.delete("/v1/losses/mse"), 405)


# --- the bad-input corpus --------------------------------------------------------------------

GOOD = {"y_true": SEED_TRUE, "y_pred": SEED_PRED}
BAD_JSON_BODIES: list[tuple[str, dict[str, Any], int, str | None]] = [
    ("ragged", {"y_true": SEED_TRUE, "y_pred": [[1, 1, 0], [1, 0, 1, 1]]}, 422, "/y_pred/1"),
    ("mismatched", {"y_true": SEED_TRUE, "y_pred": [[1, 1], [1, 0]]}, 422, "/y_pred"),
    ("string", {"y_true": SEED_TRUE, "y_pred": [[1, "a", 0], [1, 0, 1]]}, 422, "/y_pred/0/1"),
    ("null", {"y_true": SEED_TRUE, "y_pred": [[1, None, 0], [1, 0, 1]]}, 422, "/y_pred/0/1"),
    ("empty", {"y_true": [], "y_pred": []}, 422, "/y_true"),
    ("empty rows", {"y_true": [[]], "y_pred": [[]]}, 422, "/y_true"),
    ("scalar", {"y_true": 1, "y_pred": 1}, 422, "/y_true"),
    ("object", {"y_true": {"a": 1}, "y_pred": SEED_PRED}, 422, "/y_true"),
    ("missing y_pred", {"y_true": SEED_TRUE}, 422, "/y_pred"),
    ("extra field", {**GOOD, "weights": [1]}, 422, "/weights"),
    ("unknown option", {**GOOD, "options": {"from_logits": True}}, 422, "/options/from_logits"),
    ("bad reduction", {**GOOD, "reduction": "average"}, 422, "/reduction"),
    ("bad dtype", {**GOOD, "dtype": "float16"}, 422, "/dtype"),
    ("bad sample_weight", {**GOOD, "sample_weight": [1, 2, 3]}, 422, "/sample_weight"),
    ("too large for float32", {"y_true": [[1e39]], "y_pred": [[0]]}, 422, "/y_true/0/0"),
    # A flattening parser reads each of these as four numbers in a 2x2 tensor.
    ("list for a number", {"y_true": [[1, [2]], [3, 4]], "y_pred": SEED_PRED}, 422, "/y_true/0/1"),
    ("mixed depths", {"y_true": [[1, 2], 3, [4]], "y_pred": SEED_PRED}, 422, "/y_true/1"),
    ("list after a number", {"y_true": [1, [2, 3]], "y_pred": SEED_PRED}, 422, "/y_true/1"),
    ("short last row", {"y_true": [[1, 2], [3]], "y_pred": [[1, 2], [3, 4]]}, 422, "/y_true/1"),
    ("empty last row", {"y_true": [[1], []], "y_pred": [[1], [2]]}, 422, "/y_true/1"),
    (
        "deeply nested",
        {"y_true": json.loads("[" * 80 + "1" + "]" * 80), "y_pred": [[1]]},
        422,
        None,
    ),
]


@pytest.mark.parametrize(
    ("case", "body", "status", "pointer"), BAD_JSON_BODIES, ids=[c[0] for c in BAD_JSON_BODIES]
)
def test_bad_input_corpus(
    client: TestClient,
    body_path: str,
    case: str,
    body: dict[str, Any],
    status: int,
    pointer: str | None,
) -> None:
    assert_problem(client.post("/v1/losses/mse", json=body), status, pointer)


@pytest.mark.parametrize(
    ("case", "raw", "status"),
    [
        ("NaN literal", b'{"y_true": [[NaN]], "y_pred": [[1]]}', 422),
        ("Infinity literal", b'{"y_true": [[1]], "y_pred": [[-Infinity]]}', 422),
        ("truncated", b'{"y_true": [[0, 1]], "y_pred": [[1, ', 400),
        ("not JSON", b"y_true=1", 400),
        ("empty body", b"", 400),
        ("top-level list", b"[1, 2]", 422),
        ("number out of double range", b'{"y_true": [[1e400]], "y_pred": [[1]]}', 422),
        ("integer beyond 64 bits", b'{"y_true": [[1' + b"0" * 400 + b']], "y_pred": [[1]]}', 422),
        ("leading zero", b'{"y_true": [[01]], "y_pred": [[1]]}', 400),
        ("two tensors in one", b'{"y_true": [[1]],[[2]], "y_pred": [[1]]}', 400),
        ("missing comma between rows", b'{"y_true": [[1][2]], "y_pred": [[1],[2]]}', 400),
        ("trailing comma", b'{"y_true": [[1,2],], "y_pred": [[1,2]]}', 400),
        ("trailing data", b'{"y_true": [[1]], "y_pred": [[1]]} x', 400),
    ],
)
def test_bad_raw_bodies(
    client: TestClient, body_path: str, case: str, raw: bytes, status: int
) -> None:
    r = client.post("/v1/losses/mse", content=raw, headers={"content-type": "application/json"})
    assert_problem(r, status)


def test_wrong_content_type_is_415(client: TestClient) -> None:
    r = client.post(
        "/v1/losses/mse", content=json.dumps(GOOD), headers={"content-type": "text/plain"}
    )
    assert_problem(r, 415, "/header/content-type")


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


def test_batch_pointer_has_no_pydantic_type_labels(client: TestClient) -> None:
    item = {"loss": {"name": "mse"}, "y_true": [[0.0]], "y_pred": [[1.0]]}
    result = client.post("/v1/batch", json={"items": [item]}).json()["results"][0]
    assert result["status"] == 422
    assert {e["pointer"] for e in result["error"]["errors"]} == {"/items/0/loss"}


def test_stream_query_option_error_names_the_query_not_a_line(client: TestClient) -> None:
    body = ndjson({"y_true": [[0.0]], "y_pred": [[1.0]]})
    r = client.post(
        "/v1/losses/mse/stream",
        content=body,
        headers=NDJSON,
        params={"options": json.dumps({"delta": 1})},
    )
    problem = assert_problem(r, 422, "/query/options/delta")
    assert not problem["detail"].startswith("line")
