"""CORS (LOSSD_CORS_ORIGINS): off by default; when set, preflights need no API key and every
answer, errors included, carries the headers a browser needs to let the page read it."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.helpers import SEED

SITE = "https://dashboard.example"
OTHER = "https://elsewhere.example"
KEY = "k-0123456789"


def preflight(client: TestClient, path: str, origin: str = SITE) -> httpx.Response:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, x-request-id",
        },
    )


def header_list(value: str) -> set[str]:
    return {item.strip().lower() for item in value.split(",")}


def test_cors_is_off_by_default(client: TestClient) -> None:
    response = client.post("/v1/losses/mse", json=SEED, headers={"Origin": SITE})
    assert response.status_code == 200
    assert not any(h.startswith("access-control-") for h in response.headers)
    answer = client.options(
        "/v1/losses/mse", headers={"Origin": SITE, "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in answer.headers


@pytest.mark.parametrize("keys", ["", KEY])
@pytest.mark.parametrize("path", ["/v1/losses/mse", "/v1/batch", "/v2/models/mse/infer"])
def test_a_preflight_from_an_allowed_origin_needs_no_key(
    make_client: Callable[..., TestClient], keys: str, path: str
) -> None:
    client = make_client(cors_origins=f"{SITE}, {OTHER}", api_keys=keys)
    response = preflight(client, path)
    assert response.status_code == 200, response.text
    headers = response.headers
    assert headers["access-control-allow-origin"] == SITE
    allowed = header_list(headers["access-control-allow-headers"])
    assert {"authorization", "content-type", "x-request-id"} <= allowed
    assert "POST" in headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in headers  # a key is a header, not a cookie


def test_a_preflight_from_another_origin_is_refused(make_client: Callable[..., TestClient]) -> None:
    client = make_client(cors_origins=SITE)
    response = preflight(client, "/v1/losses/mse", origin="https://evil.example")
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


def test_answers_expose_request_id_and_retry_after(make_client: Callable[..., TestClient]) -> None:
    client = make_client(cors_origins=SITE)
    response = client.post("/v1/losses/mse", json=SEED, headers={"Origin": SITE})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == SITE
    exposed = header_list(response.headers["access-control-expose-headers"])
    assert {"x-request-id", "retry-after"} <= exposed
    assert response.headers["x-request-id"]


def test_errors_and_401_carry_cors_headers(make_client: Callable[..., TestClient]) -> None:
    """A page must be able to read why it failed: 401, 404 and 422 are CORS responses too."""
    client = make_client(cors_origins=SITE, api_keys=KEY)
    refused = client.post("/v1/losses/mse", json=SEED, headers={"Origin": SITE})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == SITE
    auth = {"Origin": SITE, "Authorization": f"Bearer {KEY}"}
    for path, body, status in [("/v1/losses/nope", SEED, 404), ("/v1/losses/mse", {}, 422)]:
        response = client.post(path, json=body, headers=auth)
        assert response.status_code == status
        assert response.headers["access-control-allow-origin"] == SITE


def test_any_origin(make_client: Callable[..., TestClient]) -> None:
    client = make_client(cors_origins="*")
    response = client.get("/v1/losses", headers={"Origin": OTHER})
    assert response.headers["access-control-allow-origin"] == "*"
    assert preflight(client, "/v1/losses/mse", origin=OTHER).status_code == 200
