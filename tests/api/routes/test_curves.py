"""GET /v1/losses/{name}/curve.svg: an SVG answer, the query's options and range, every 4xx as
problem+json located in the query, and the API-key treatment of every /v1 route."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.helpers import assert_problem

NS = {"svg": "http://www.w3.org/2000/svg"}


def svg(client: TestClient, url: str) -> ET.Element:
    response = client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/svg+xml"
    return ET.fromstring(response.text)


def texts(root: ET.Element, cls: str) -> list[str]:
    return [t.text or "" for t in root.iterfind(f".//svg:text[@class='{cls}']", NS)]


@pytest.mark.parametrize("name", ["mse", "MSE", "MeanSquaredError", "loss_mean_squared_error"])
def test_any_name_draws_the_canonical_loss(client: TestClient, name: str) -> None:
    root = svg(client, f"/v1/losses/{name}/curve.svg")
    assert texts(root, "title") == ["mean_squared_error"]
    assert texts(root, "legend-entry") == ["y_true = -1", "y_true = 0", "y_true = 1"]
    assert texts(root, "x-label") == ["y_pred"] and texts(root, "y-label") == ["loss"]
    assert len(root.findall(".//svg:polyline", NS)) == 3


def test_options_and_range_come_from_the_query(client: TestClient) -> None:
    options = json.dumps({"from_logits": True})
    root = svg(client, f"/v1/losses/bce/curve.svg?options={options}&min=-2&max=2&points=5")
    assert texts(root, "title") == ["binary_crossentropy (from_logits=true)"]
    assert texts(root, "x-label") == ["y_pred (logit)"]
    assert texts(root, "x-tick")[0] == "-2" and texts(root, "x-tick")[-1] == "2"
    lines = root.findall(".//svg:polyline", NS)
    assert [len(line.get("points", "").split()) for line in lines] == [5, 5]
    cce = svg(client, "/v1/losses/categorical_crossentropy/curve.svg")
    assert texts(cce, "subtitle") == ["3 classes; y_pred = [p, (1-p)/2, (1-p)/2]"]


@pytest.mark.parametrize(
    ("query", "pointer", "words"),
    [
        ("options=nope", "/query/options", "options must be a JSON object"),
        ("options=[1]", "/query/options", "options must be a JSON object"),
        ('options={"delta":1}', "/query/options/delta", "takes no options"),
        ("min=3&max=3", "/query/min", "min (3) must be less than max (3)"),
        ("min=5", "/query/min", "max (3, the default)"),
        ("min=nan", "/query/min", "finite"),
        ("max=inf", "/query/max", "finite"),
        ("min=-1e7", "/query/min", "greater than or equal to -1000000"),
        ("max=abc", "/query/max", "number"),
        ("points=1", "/query/points", "greater than or equal to 2"),
        ("points=1001", "/query/points", "less than or equal to 1000"),
        ("points=2.5", "/query/points", "integer"),
    ],
)
def test_bad_queries_are_422_problems(
    client: TestClient, query: str, pointer: str, words: str
) -> None:
    body = assert_problem(client.get(f"/v1/losses/mse/curve.svg?{query}"), 422, pointer)
    assert words in body["detail"], body


def test_a_bad_option_value_is_located(client: TestClient) -> None:
    url = '/v1/losses/huber/curve.svg?options={"delta": -1}'
    body = assert_problem(client.get(url), 422, "/query/options/delta")
    assert body["detail"] == "options.delta: delta must be > 0, got -1"


def test_an_unknown_loss_is_404_with_suggestions(client: TestClient) -> None:
    body = assert_problem(client.get("/v1/losses/msee/curve.svg"), 404, "/path/name")
    assert "mse" in body["suggestions"]


def test_it_is_a_get(client: TestClient) -> None:
    response = client.post("/v1/losses/mse/curve.svg", json={})
    assert_problem(response, 405)
    assert response.headers["allow"] == "GET"


def test_it_needs_a_key_like_every_v1_route(make_client: Callable[..., TestClient]) -> None:
    keyed = make_client(api_keys="first-key-0123456789")
    assert_problem(keyed.get("/v1/losses/mse/curve.svg"), 401)
    bearer = {"Authorization": "Bearer first-key-0123456789"}
    assert keyed.get("/v1/losses/mse/curve.svg", headers=bearer).status_code == 200
    assert keyed.get("/explore").status_code == 200  # the page itself is open, as /docs is


def test_the_contract_lists_the_curve_not_the_page(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    operation = paths["/v1/losses/{name}/curve.svg"]["get"]
    assert operation["operationId"] == "lossCurve"
    assert "image/svg+xml" in operation["responses"]["200"]["content"]
    params = {p["name"]: p["schema"] for p in operation["parameters"]}
    assert set(params) == {"name", "options", "min", "max", "points"}
    assert params["points"]["maximum"] == 1000
    assert not any(path.startswith("/explore") for path in paths)
