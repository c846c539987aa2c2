"""Issue 11: what a client sends never answers 500, and the errors say what to do.

Each case was a 500, a silent 200 or an unhelpful error before; each protocol answers in its own
form (problem+json on /v1, ``{"error"}`` on /v2). Expected values are worked out by hand.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from tests.helpers import NDJSON, assert_problem

HUGE = "1" + "0" * 400  # an integer literal no float holds, as raw JSON text
JSON = {"content-type": "application/json"}
PAIR = '"y_true": [[1.0]], "y_pred": [[2.0]]'


def nested(rank: int, value: Any = 1.0) -> Any:
    data = value
    for _ in range(rank):
        data = [data]
    return data


def assert_v2_error(response: Any, status: int, *words: str) -> str:
    """``response`` is the Open Inference Protocol's ``{"error": ...}`` with ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json", response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    for word in words:
        assert word in body["error"], body
    return str(body["error"])


def v2_input(name: str, shape: list[int], data: Any = None, **params: Any) -> dict[str, Any]:
    tensor: dict[str, Any] = {"name": name, "shape": shape, "datatype": "FP32"}
    if data is not None:
        tensor["data"] = data
    if params:
        tensor["parameters"] = params
    return tensor


# --- an option past float range -----------------------------------------------------------


def test_huge_integer_option_on_v1(client: TestClient, body_path: str) -> None:
    body = f'{{{PAIR}, "options": {{"delta": {HUGE}}}}}'
    problem = assert_problem(
        client.post("/v1/losses/huber", content=body, headers=JSON), 422, "/options/delta"
    )
    assert problem["type"] == "urn:lossd:problem:invalid-option"
    assert "finite number" in problem["detail"] and len(problem["detail"]) < 200


def test_huge_integer_option_in_stream_query(client: TestClient) -> None:
    r = client.post(
        "/v1/losses/huber/stream",
        params={"options": f'{{"delta": {HUGE}}}'},
        content=b'{"y_true": [[1.0]], "y_pred": [[2.0]]}\n',
        headers={"content-type": NDJSON},
    )
    problem = assert_problem(r, 422, "/query/options/delta")
    assert problem["type"] == "urn:lossd:problem:invalid-option"


def test_huge_integer_option_on_v2(client: TestClient) -> None:
    body = '{{"inputs": [{}, {}], "parameters": {{"delta": {}}}}}'.format(
        json.dumps(v2_input("y_true", [1, 1], [1])),
        json.dumps(v2_input("y_pred", [1, 1], [2])),
        HUGE,
    )
    r = client.post("/v2/models/huber/infer", content=body, headers=JSON)
    assert_v2_error(r, 400, "parameter 'delta'", "finite number")


def test_huge_integer_option_fails_only_its_batch_item(client: TestClient, body_path: str) -> None:
    bad = f'{{"loss": "huber", {PAIR}, "options": {{"delta": {HUGE}}}}}'
    body = f'{{"items": [{bad}, {{"loss": "mse", {PAIR}}}]}}'
    r = client.post("/v1/batch", content=body, headers=JSON)
    assert r.status_code == 200, r.text
    bad, good = r.json()["results"]
    assert bad["status"] == 422
    assert [e["pointer"] for e in bad["error"]["errors"]] == ["/items/0/options/delta"]
    assert good["status"] == 200 and good["results"][0]["mean"] == 1.0  # (2 - 1)^2


# --- ranks past NumPy's limit, shapes past any array ----------------------------------------


def test_sparse_crossentropy_at_rank_64_answers(client: TestClient, body_path: str) -> None:
    # One class: p = 1, clipped to 1 - 1e-7; -log(1 - 1e-7) = 1.0000000494736474e-07.
    r = client.post(
        "/v1/losses/sparse_categorical_crossentropy",
        json={"y_true": nested(63, 0), "y_pred": nested(64), "dtype": "float64"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["shape"] == [1] * 63
    assert r.json()["mean"] == pytest.approx(1.0000000494736474e-07, rel=1e-6)


@pytest.mark.parametrize("field", ["y_true", "y_pred"])
def test_rank_65_on_v1_is_named(client: TestClient, body_path: str, field: str) -> None:
    body = {"y_true": nested(64), "y_pred": nested(64), field: nested(65)}
    problem = assert_problem(client.post("/v1/losses/mse", json=body), 422, f"/{field}")
    assert "rank 65" in problem["detail"] and "64" in problem["detail"]


def test_rank_65_in_a_batch_item(client: TestClient, body_path: str) -> None:
    items = [{"loss": "mse", "y_true": nested(65), "y_pred": nested(65)}]
    r = client.post("/v1/batch", json={"items": items})
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["status"] == 422


def test_rank_65_on_v2_json(client: TestClient) -> None:
    shape = [1] * 65
    body = {"inputs": [v2_input("y_true", shape, [1]), v2_input("y_pred", shape, [1])]}
    r = client.post("/v2/models/mse/infer", json=body)
    assert_v2_error(r, 400, "input 'y_true'", "65", "at most 64")


def test_rank_65_on_v2_binary(client: TestClient) -> None:
    shape = [1] * 65
    header = json.dumps(
        {
            "inputs": [
                v2_input("y_true", shape, binary_data_size=4),
                v2_input("y_pred", shape, binary_data_size=4),
            ]
        }
    ).encode()
    one = b"\x00\x00\x80\x3f"  # 1.0 as little-endian float32
    r = client.post(
        "/v2/models/mse/infer",
        content=header + one + one,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert_v2_error(r, 400, "input 'y_true'", "65", "at most 64")


def test_v2_shape_past_any_array_with_no_elements(client: TestClient) -> None:
    shape = [0, 10**20]  # 0 elements, within the element limit, but no array has this shape
    body = {"inputs": [v2_input("y_true", shape, []), v2_input("y_pred", shape, [])]}
    r = client.post("/v2/models/mse/infer", json=body)
    assert_v2_error(r, 400, "input 'y_true'", "100000000000000000000")


# --- an unexpected error on /v2 answers in the protocol's form ------------------------------


def test_unexpected_error_on_v2_is_the_protocols_error(client: TestClient) -> None:
    router = APIRouter()

    @router.get("/v2/models/boom/explode")
    async def explode() -> None:
        raise RuntimeError("a bug")

    client.app.router.routes.insert(0, router.routes[0])  # type: ignore[attr-defined]
    error = assert_v2_error(client.get("/v2/models/boom/explode"), 500)
    assert "a bug" not in error  # the bug is logged, not told
    assert_problem(client.post("/v1/losses/mse", content=b"{", headers=JSON), 400)  # v1 intact


# --- semantics ------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", [[], {}, 3, None])
def test_batch_loss_must_name_at_least_one_loss(client: TestClient, loss: Any) -> None:
    r = client.post("/v1/batch", json={"items": [{"loss": loss, "y_true": [1.0], "y_pred": [1.0]}]})
    assert r.status_code == 200, r.text
    result = r.json()["results"][0]
    assert result["status"] == 422, result
    assert "/items/0/loss" in [e["pointer"] for e in result["error"]["errors"]]
    if loss == []:
        assert result["error"]["errors"] == [
            {
                "pointer": "/items/0/loss",
                "detail": "name at least one loss: a name, or a non-empty list of names",
            }
        ]


KELVIN = "%E2%84%AAld"  # "Kld" with the KELVIN SIGN, which str.lower() folds to "k"


def test_non_ascii_names_are_unknown_on_every_route(client: TestClient) -> None:
    pair = {"y_true": [[0.5, 0.5]], "y_pred": [[0.5, 0.5]]}
    assert_problem(client.post(f"/v1/losses/{KELVIN}", json=pair), 404, "/path/name")
    assert_problem(client.get(f"/v1/losses/{KELVIN}"), 404)
    r = client.post(
        f"/v1/losses/{KELVIN}/stream", content=b"{}\n", headers={"content-type": NDJSON}
    )
    assert_problem(r, 404)
    batch = client.post("/v1/batch", json={"items": [{"loss": "\u212ald", **pair}]})
    assert batch.json()["results"][0]["status"] == 404
    assert_v2_error(client.get(f"/v2/models/{KELVIN}"), 404, "unknown model")
    assert client.post("/v1/losses/KLD", json=pair).status_code == 200  # ASCII case still folds


# --- error messages -------------------------------------------------------------------------


def test_an_option_at_top_level_says_where_options_go(client: TestClient) -> None:
    body = {"y_true": [[1.0]], "y_pred": [[0.5]], "from_logits": True}
    problem = assert_problem(
        client.post("/v1/losses/binary_crossentropy", json=body), 422, "/from_logits"
    )
    assert '"from_logits" is an option' in problem["detail"]
    assert '{"options": {"from_logits": true}}' in problem["detail"]


def test_an_option_at_top_level_of_a_batch_item(client: TestClient) -> None:
    item = {"loss": "huber", "y_true": [1.0], "y_pred": [1.0], "delta": 2}
    result = client.post("/v1/batch", json={"items": [item]}).json()["results"][0]
    assert result["status"] == 422
    assert '"delta" is an option' in result["error"]["detail"]


def test_camel_case_fields_suggest_the_snake_case_name(client: TestClient) -> None:
    body = {"yTrue": [[1.0]], "yPred": [[0.5]], "sampleWeight": [1.0]}
    problem = assert_problem(client.post("/v1/losses/mse", json=body), 422, "/yPred")
    messages = {e["pointer"]: e["detail"] for e in problem["errors"]}
    assert "y_pred" in messages["/yPred"] and "y_true" in messages["/yTrue"]
    assert "sample_weight" in messages["/sampleWeight"]
    assert "y_true" in problem["detail"]  # the first error named is the hint, not "missing"


def test_unknown_route_says_where_to_look(client: TestClient) -> None:
    problem = assert_problem(client.get("/v1/nope"), 404)
    assert "/v1/nope" in problem["detail"] and "GET /v1/losses" in problem["detail"]
    assert problem["errors"] == [{"pointer": "/path", "detail": problem["detail"]}]


def test_titles_keep_acronyms(client: TestClient) -> None:
    problem = assert_problem(client.post("/v1/losses/mse", content=b"{", headers=JSON), 400)
    assert problem["title"] == "Malformed JSON"
    assert (
        problem["detail"].startswith("malformed JSON: ") and "Invalid JSON" not in problem["detail"]
    )


def test_trailing_slash_is_a_404_naming_the_path_without_it(client: TestClient) -> None:
    pair = {"y_true": [[1.0]], "y_pred": [[2.0]]}
    r = client.post("/v1/losses/mse/", json=pair, follow_redirects=False)
    problem = assert_problem(r, 404, "/path")  # not Starlette's empty 307
    assert "drop the trailing slash: /v1/losses/mse" in problem["detail"]
    problem = assert_problem(client.get("/v1/losses/", follow_redirects=False), 404)
    assert "drop the trailing slash: /v1/losses" in problem["detail"]
    r = client.post("/v2/models/mse/infer/", json={}, follow_redirects=False)
    assert_v2_error(
        r, 404, "/v2/models/mse/infer/", "drop the trailing slash: /v2/models/mse/infer"
    )


def test_an_option_on_a_stream_line_says_it_goes_in_its_options(client: TestClient) -> None:
    # a line may carry its own options (over the query's), so that is where the hint points
    line = b'{"y_true": [[1.0]], "y_pred": [[0.5]], "from_logits": true}\n'
    r = client.post(
        "/v1/losses/binary_crossentropy/stream", content=line, headers={"content-type": NDJSON}
    )
    problem = assert_problem(r, 422, "/line/1/from_logits")
    assert 'send it inside "options", {"options": {"from_logits": true}}' in problem["detail"]


def test_engine_errors_on_v2_name_inputs_and_parameters(client: TestClient) -> None:
    body = {
        "inputs": [v2_input("y_true", [1, 2], [0, 1]), v2_input("y_pred", [1, 2], [0.5, 0.5])],
        "parameters": {"label_smoothing": 2},
    }
    r = client.post("/v2/models/binary_crossentropy/infer", json=body)
    assert_v2_error(r, 400, "parameter 'label_smoothing': label_smoothing must be in [0, 1]")
