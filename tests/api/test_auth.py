"""Optional API keys (app/api/security.py) and how the OpenAPI contract declares them."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.api import security
from app.api.security import KeyRing, bearer_token, protected
from app.settings import Settings
from tests.helpers import SEED, SEED_MSE, assert_problem

SPEC = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
KEYS = "first-key-0123456789,second-key-abcdefghij"
SECOND = "second-key-abcdefghij"
INFER = {
    "inputs": [
        {"name": "y_true", "datatype": "FP32", "shape": [2, 3], "data": [0, 1, 1, 0, 0, 1]},
        {"name": "y_pred", "datatype": "FP32", "shape": [2, 3], "data": [1, 1, 0, 1, 0, 1]},
    ]
}
NDJSON = {"content-type": "application/x-ndjson"}
# Every kind of /v1 and /v2 request: (method, path, keyword arguments of the request).
PROTECTED: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/v1/losses", {}),
    ("GET", "/v1/losses/mse", {}),
    ("POST", "/v1/losses/mse", {"json": SEED}),
    ("POST", "/v1/batch", {"json": {"items": [{"loss": "mse", **SEED}]}}),
    ("POST", "/v1/losses/mse/stream", {"content": json.dumps(SEED), "headers": NDJSON}),
    ("GET", "/v1/no-such-thing", {}),
    ("GET", "/v2", {}),
    ("GET", "/v2/models/mse", {}),
    ("GET", "/v2/models/mse/ready", {}),
    ("POST", "/v2/models/mse/infer", {"json": INFER}),
    ("POST", "/v2/models/mse/versions/1/infer", {"json": INFER}),
    ("GET", "/v2/no-such-thing", {}),
]
OPEN = ["/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"]
OPEN += ["/v2/health/live", "/v2/health/ready"]


@pytest.fixture
def keyed(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(api_keys=KEYS)


def with_key(kwargs: dict[str, Any], key: str) -> dict[str, Any]:
    return {**kwargs, "headers": {**kwargs.get("headers", {}), "Authorization": key}}


# --- without keys: nothing changes ----------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "kwargs"), PROTECTED[:5])
def test_without_keys_everything_is_open(
    client: TestClient, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    assert client.request(method, path, **kwargs).status_code == 200
    # a token is ignored when the server has none
    sent = with_key(kwargs, "Bearer anything")
    assert client.request(method, path, **sent).status_code == 200


def test_an_empty_setting_means_no_keys(make_client: Callable[..., TestClient]) -> None:
    assert Settings(api_keys="").api_key_list == []
    assert make_client(api_keys="").get("/v1/losses").status_code == 200


@pytest.mark.parametrize("raw", [" , ", ",", " ", ",,,", "\t,\n"])
def test_a_key_list_set_but_holding_no_key_is_refused(raw: str) -> None:
    # e.g. LOSSD_API_KEYS="$KEY1,$KEY2" with both variables unset: authentication must not be
    # silently off
    with pytest.raises(ValidationError, match="LOSSD_API_KEYS") as exc:
        Settings(api_keys=raw)
    assert exc.value.errors()[0]["loc"] == ("api_keys",)
    assert Settings(api_keys=" , key-1 ,").api_key_list == ["key-1"]


# --- with keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "kwargs"), PROTECTED)
def test_a_missing_key_is_401(
    keyed: TestClient, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    response = keyed.request(method, path, **kwargs)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == 'Bearer realm="lossd"'
    assert response.headers["x-request-id"]  # the request-id middleware is outside
    body = response.json()
    assert body["status"] == 401 and body["type"] == "urn:lossd:problem:unauthorized"
    assert "Authorization: Bearer" in body["detail"]
    assert body["errors"] == [{"pointer": "/header/authorization", "detail": body["detail"]}]
    if path.startswith("/v2"):  # what Triton's clients read and show
        assert body["error"] == body["detail"]
    else:
        assert "error" not in body


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer wrong",
        "Bearer first-key-012345678",  # a prefix of a key
        "Bearer first-key-0123456789x",
        "Bearer first-key-0123456789,second-key-abcdefghij",  # the setting itself
        "Basic Zmlyc3Qta2V5LTAxMjM0NTY3ODk6",
        "first-key-0123456789",  # no scheme
        "Bearer",
        "Bearer ",
        "",
    ],
)
def test_a_wrong_key_is_401_and_never_echoed(keyed: TestClient, authorization: str) -> None:
    response = keyed.post("/v1/losses/mse", json=SEED, headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="lossd", error="invalid_token"'
    token = authorization.partition(" ")[2]
    everything = response.text + json.dumps(dict(response.headers))
    for secret in {*KEYS.split(","), *([token] if len(token) > 3 else [])}:
        assert secret not in everything


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
@pytest.mark.parametrize(("method", "path", "kwargs"), PROTECTED[:5] + PROTECTED[6:11])
def test_a_right_key_passes(
    keyed: TestClient, scheme: str, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    response = keyed.request(method, path, **with_key(kwargs, f"{scheme}  {SECOND} "))
    assert response.status_code == 200, response.text


def test_the_answer_with_a_key_is_the_answer_without_one(
    client: TestClient, keyed: TestClient
) -> None:
    open_answer = client.post("/v1/losses/mse", json=SEED).json()
    keyed_answer = keyed.post(
        "/v1/losses/mse", json=SEED, headers={"Authorization": f"Bearer {SECOND}"}
    ).json()
    assert open_answer == keyed_answer and keyed_answer["per_sample"] == SEED_MSE


@pytest.mark.parametrize("path", OPEN)
def test_probes_metrics_and_docs_stay_open(keyed: TestClient, path: str) -> None:
    assert keyed.get(path).status_code == 200


def test_options_needs_no_key(keyed: TestClient) -> None:
    # The key check lets every OPTIONS request through (a CORS preflight carries no credentials).
    # CORS is off here (no LOSSD_CORS_ORIGINS), so the request reaches the routes, which have no
    # OPTIONS: 405 with the path's methods, not 401. With CORS on, the preflight is answered 200
    # before any route: test_cors.py.
    response = keyed.options("/v1/losses/mse")
    assert_problem(response, 405)
    assert "www-authenticate" not in response.headers
    assert {m.strip() for m in response.headers["allow"].split(",")} - {"HEAD"} == {"GET", "POST"}


def test_a_refused_request_takes_no_admission_permit(
    make_client: Callable[..., TestClient],
) -> None:
    c = make_client(api_keys=KEYS, large_body_bytes=1024)
    body = json.dumps(SEED).encode() + b" " * 200_000
    response = c.post("/v1/losses/mse", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 401
    admission = c.app.state.admission  # type: ignore[attr-defined]
    assert (admission.large, admission.inflight_bytes) == (0, 0)


def test_keys_are_never_logged(
    make_client: Callable[..., TestClient],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    c = make_client(api_keys=KEYS, log_level="debug")
    c.get("/v1/losses", headers={"Authorization": f"Bearer {SECOND}"})
    c.get("/v1/losses", headers={"Authorization": "Bearer guessed-key-xyz"})
    c.get("/v2/models/mse", headers={"Authorization": "Bearer guessed-key-xyz"})
    logged = capsys.readouterr().out + capsys.readouterr().err + caplog.text
    assert logged  # there are request logs...
    for secret in [*KEYS.split(","), "guessed-key-xyz"]:
        assert secret not in logged  # ...without any key in them
    assert SECOND not in repr(Settings(api_keys=KEYS))
    assert SECOND not in str(Settings(api_keys=KEYS).model_dump())


# --- the check itself ---------------------------------------------------------------------------


def test_every_key_is_compared_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """No early exit: the first key, the last key and no key cost the same comparisons, each
    between two SHA-256 digests (equal lengths: the time tells nothing of a key's length)."""
    ring = KeyRing(["a", "bb", "ccc", "dddd"])
    calls: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(security.hmac, "compare_digest", counting)
    for presented, expected in [(b"a", True), (b"dddd", True), (b"nope", False), (b"", False)]:
        calls.clear()
        assert (presented in ring) is expected
        assert calls == [(32, 32)] * 4


def test_keyring_needs_a_key() -> None:
    with pytest.raises(ValueError, match="no API key"):
        KeyRing([])


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        (b"Bearer abc", b"abc"),
        (b"bearer   abc  ", b"abc"),
        (b"Bearer", None),
        (b"Basic abc", None),
        (b"abc", None),
    ],
)
def test_bearer_token(header: bytes | None, token: bytes | None) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    ("path", "needs_key"),
    [
        ("/v1", True),
        ("/v1/losses", True),
        ("/v2", True),
        ("/v2/models/mse/infer", True),
        ("/v2/health/ready", False),
        ("/v2/health/live", False),
        ("/v10", False),
        ("/v1x/losses", False),
        ("/healthz", False),
        ("/metrics", False),
    ],
)
def test_protected_paths(path: str, needs_key: bool) -> None:
    assert protected(path) is needs_key


# --- the contract -------------------------------------------------------------------------------


def test_openapi_declares_an_optional_bearer_scheme_on_v1_and_v2() -> None:
    spec = json.loads(SPEC.read_text())
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert "LOSSD_API_KEYS" in scheme["description"]
    assert "security" not in spec  # per operation, not global
    for path, item in spec["paths"].items():
        for method, op in item.items():
            responses = op["responses"]
            if protected(path):
                # a key, or none when the server sets no keys
                assert op["security"] == [{"bearerAuth": []}, {}], (method, path)
                assert "WWW-Authenticate" in responses["401"]["headers"]
                content = responses["401"]["content"]["application/problem+json"]
                assert content["schema"] == {"$ref": "#/components/schemas/Problem"}
            else:
                assert "security" not in op and "401" not in responses, (method, path)
            if method == "post":
                assert "Retry-After" in responses["503"]["headers"], (method, path)
                assert "408" in responses, (method, path)
