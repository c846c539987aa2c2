"""The request gate (app/api/gate.py): what each route is, the body limit, and answers in the
format of the route's protocol. Admission and timeouts through the gate: test_admission.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.api.gate import GateError
from app.api.policy import RoutePolicy, route_policy
from app.api.problems import SHARED_STATUSES
from tests.helpers import PROBLEM

SPEC = json.loads((Path(__file__).resolve().parents[2] / "openapi" / "openapi.json").read_text())
NDJSON = {"content-type": "application/x-ndjson"}
JSON = {"content-type": "application/json"}
LIMIT = 1024  # the smallest LOSSD_MAX_BODY_BYTES


@pytest.mark.parametrize(
    ("path", "policy"),
    [
        ("/v1/losses/mse", RoutePolicy("v1")),
        ("/v1/losses", RoutePolicy("v1")),
        ("/v1/batch", RoutePolicy("v1")),
        ("/v1/losses/mse/stream", RoutePolicy("v1", streaming=True)),
        ("/v1/losses/{name}/stream", RoutePolicy("v1", streaming=True)),  # a template
        ("/v1/losses/a/b/stream", RoutePolicy("v1")),  # no route: not a stream either
        ("/v1/batch/stream", RoutePolicy("v1")),
        ("/v2", RoutePolicy("v2")),
        ("/v2/models/mse/infer", RoutePolicy("v2")),
        ("/v2/health/ready", RoutePolicy("v2", needs_key=False)),
        ("/v2/health/live", RoutePolicy("v2", needs_key=False)),
        ("/v2x", RoutePolicy("v1", needs_key=False)),
        ("/healthz", RoutePolicy("v1", needs_key=False)),
        ("/metrics", RoutePolicy("v1", needs_key=False)),
        ("/openapi.json", RoutePolicy("v1", needs_key=False)),
    ],
)
def test_route_policy(path: str, policy: RoutePolicy) -> None:
    assert route_policy(path) == policy


def test_every_stream_route_and_only_those_is_a_stream() -> None:
    for path, item in SPEC["paths"].items():
        ndjson = any(
            "application/x-ndjson" in op.get("requestBody", {}).get("content", {})
            for op in item.values()
        )
        assert route_policy(path).streaming is ndjson, path


@pytest.mark.parametrize("status", [400, 401, 408, 413, 503])
@pytest.mark.parametrize("policy", [RoutePolicy("v1"), RoutePolicy("v2")])
def test_answers_are_in_the_format_the_openapi_document_gives(
    policy: RoutePolicy, status: int
) -> None:
    """On /v1 always problem+json; on /v2 the protocol's {"error"}, but for the answers every
    operation shares (401, 408, 503), problem+json with the message in ``error`` too."""
    response = GateError(status, "why", policy=policy).response()
    body = json.loads(bytes(response.body))
    if policy.v2 and status not in SHARED_STATUSES:
        assert response.media_type == "application/json"
        assert body == {"error": "why"}
        return
    assert response.media_type == PROBLEM
    assert (body["status"], body["detail"]) == (status, "why")
    assert ("error" in body) is policy.v2
    if policy.v2:
        assert body["error"] == "why"


def test_the_openapi_document_agrees() -> None:
    infer = SPEC["paths"]["/v2/models/{name}/infer"]["post"]["responses"]
    assert list(infer["413"]["content"]) == ["application/json"]
    for status in SHARED_STATUSES:
        assert list(infer[str(status)]["content"]) == [PROBLEM]
    evaluate = SPEC["paths"]["/v1/losses/{name}"]["post"]["responses"]
    for status in (413, *SHARED_STATUSES):
        assert list(evaluate[str(status)]["content"]) == [PROBLEM]


@pytest.fixture
def small(make_client: Any) -> TestClient:
    client: TestClient = make_client(max_body_bytes=LIMIT)
    return client


def test_a_content_length_that_is_not_a_number_is_400(small: TestClient) -> None:
    for path, expected in (
        ("/v1/losses/mse", PROBLEM),
        ("/v2/models/mse/infer", "application/json"),
    ):
        response = small.post(path, content=b"{}", headers={**JSON, "content-length": "2x"})
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == expected
        assert "Content-Length is not a number" in response.text


def test_the_body_limit_on_v1(small: TestClient) -> None:
    big = b" " * (LIMIT + 1)

    def chunks() -> Any:  # no Content-Length: refused while the body arrives
        yield big[:600]
        yield big[600:]

    for content in (big, chunks()):
        response = small.post("/v1/losses/mse", content=content, headers=JSON)
        assert response.status_code == 413
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"] == "urn:lossd:problem:body-too-large"
        assert str(LIMIT) in response.json()["detail"]
    at_limit = small.post("/v1/losses/mse", content=b" " * LIMIT, headers=JSON)
    assert at_limit.status_code == 400  # passes the gate; the route finds no JSON


def test_a_stream_is_bounded_by_its_lines_not_its_length(small: TestClient) -> None:
    line = b'{"y_true": [[0, 1]], "y_pred": [[1, 1]]}\n'
    many = line * (3 * LIMIT // len(line))  # three times the body limit, short lines
    response = small.post("/v1/losses/mse/stream", content=many, headers=NDJSON)
    assert response.status_code == 200, response.text
    assert response.json()["chunks"] == many.count(b"\n")
    long_line = b'{"y_true": [[0, 1]], "y_pred": [[1, 1]]' + b" " * LIMIT + b"}\n"
    response = small.post("/v1/losses/mse/stream", content=line + long_line, headers=NDJSON)
    assert response.status_code == 413
    problem = response.json()
    assert problem["type"] == "urn:lossd:problem:line-too-long"
    assert problem["errors"] == [{"pointer": "/line/2", "detail": "line over the size limit"}]
    assert problem["detail"].startswith(f"line 2 is longer than the limit of {LIMIT} bytes")


def test_a_request_without_a_body_passes(small: TestClient) -> None:
    assert small.get("/v1/losses/mse").status_code == 200
    assert small.get("/v2/models/mse").status_code == 200
