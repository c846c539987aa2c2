"""Optional API keys and CORS, as ASGI middleware.

With ``LOSSD_API_KEYS`` set (comma-separated keys), every request to ``/v1`` and ``/v2`` needs
``Authorization: Bearer <key>``; the probes (``/healthz``, ``/readyz``, ``/v2/health/live``,
``/v2/health/ready``), ``/metrics``, ``/docs`` and ``/openapi.json`` stay open, and so does
``OPTIONS`` (a CORS preflight never carries credentials). The presented key is compared with every
configured key, always all of them, through SHA-256 digests and ``hmac.compare_digest``: the time
taken tells neither which key matched nor how long any key is. Keys are never logged or echoed.

A missing or wrong key is a 401 problem+json with ``WWW-Authenticate: Bearer``, answered before
the body is read (and after draining it, like a 503: see :mod:`app.api.gate`), so a request
without a valid key costs no admission permit. Which paths need a key is the routes' policy
(:func:`app.api.policy.route_policy`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.gate import BodyHeaders, GateError, answer_early
from app.api.policy import policy_of, route_policy

SCHEME = "bearerAuth"  # the OpenAPI security scheme's name (generated SDKs use it)
REALM = 'Bearer realm="lossd"'
#: CORS: the request headers a browser may send and the response headers its script may read.
CORS_ALLOW_HEADERS = (
    "Authorization",
    "Content-Type",
    "X-Request-ID",
    "Content-Encoding",
    "Inference-Header-Content-Length",
)
CORS_EXPOSE_HEADERS = (
    "X-Request-ID",
    "Retry-After",
    "WWW-Authenticate",
    "Inference-Header-Content-Length",
)


def protected(path: str) -> bool:
    """Whether ``path`` needs a key when keys are set: /v1 and /v2, except the v2 probes."""
    return route_policy(path).needs_key


def _digest(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


class KeyRing:
    """The configured keys, kept as digests, and a constant-time check against all of them."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._digests = tuple(_digest(k.encode()) for k in keys)
        if not self._digests:
            raise ValueError("no API key given")

    def __contains__(self, presented: bytes) -> bool:
        digest = _digest(presented)
        found = False
        for key in self._digests:  # every key, every time: no early exit
            found |= hmac.compare_digest(digest, key)
        return found


def bearer_token(authorization: bytes | None) -> bytes | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme in any case), if any."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(b" ")
    token = token.strip()
    return token if scheme.lower() == b"bearer" and token else None


class APIKeyMiddleware:
    """401 for a request to a :func:`protected` path without one of ``keys`` as bearer token.
    ``drain_bytes`` and ``timeout_s`` bound reading the body of a refused request."""

    def __init__(
        self, app: ASGIApp, keys: Sequence[str], *, drain_bytes: int, timeout_s: float
    ) -> None:
        self.app = app
        self.keys = KeyRing(keys)
        self.drain_bytes = drain_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        policy = policy_of(scope)
        if not policy.needs_key:
            await self.app(scope, receive, send)
            return
        authorization = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        token = bearer_token(authorization)
        if token is not None and token in self.keys:
            await self.app(scope, receive, send)
            return
        if authorization is None:
            detail = "this endpoint needs an API key: send Authorization: Bearer <key>"
            challenge = REALM
        else:
            detail = "the API key is not valid (expected Authorization: Bearer <key>)"
            challenge = REALM + ', error="invalid_token"'
        problem = GateError(
            401,
            detail,
            slug="unauthorized",
            policy=policy,
            errors=[("/header/authorization", detail)],
            headers={"WWW-Authenticate": challenge},
        )
        await answer_early(
            problem,
            scope,
            receive,
            send,
            expect_continue=BodyHeaders.read(scope["headers"]).expect_continue,
            drain_bytes=self.drain_bytes,
            timeout_s=self.timeout_s,
        )


def cors_options(origins: Sequence[str]) -> dict[str, Any]:
    """Keyword arguments of Starlette's ``CORSMiddleware`` for ``origins`` (``*`` for any).
    No cookies are involved (keys travel in a header), so credentials stay disallowed."""
    return {
        "allow_origins": list(origins),
        "allow_methods": ["GET", "HEAD", "POST", "OPTIONS"],
        "allow_headers": list(CORS_ALLOW_HEADERS),
        "expose_headers": list(CORS_EXPOSE_HEADERS),
        "max_age": 600,
    }
