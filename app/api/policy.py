"""What a route is, for the layers in front of it: its protocol, whether it streams, whether it
needs an API key. Looked up once per request from its path and kept in the ASGI scope."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from starlette.types import Scope


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    """What the gate and the API-key check need to know of a route.

    ``protocol``: ``v2`` (the Open Inference Protocol, whose clients read ``{"error"}``) or
    ``v1`` (problem+json). ``streaming``: an NDJSON stream, charged by its longest line and
    exempt from the whole-body limit, each line limited instead. ``needs_key``: refused without
    an API key when keys are set.
    """

    protocol: Literal["v1", "v2"]
    streaming: bool = False
    needs_key: bool = True

    @property
    def v2(self) -> bool:
        """Whether the route speaks the Open Inference Protocol."""
        return self.protocol == "v2"


V1 = RoutePolicy("v1")
V1_STREAM = RoutePolicy("v1", streaming=True)
V2 = RoutePolicy("v2")
V2_PROBE = RoutePolicy("v2", needs_key=False)
#: Everything else (health probes, /metrics, /docs, /openapi.json, unknown paths).
OPEN = RoutePolicy("v1", needs_key=False)
_STREAM = re.compile(r"/v1/losses/[^/]+/stream")
_V2_PROBES = frozenset({"/v2/health/live", "/v2/health/ready"})
_POLICY = "lossd.route_policy"  # where policy_of keeps it in the scope


def route_policy(path: str) -> RoutePolicy:
    """The policy of ``path`` (a request path or a route template: ``{name}`` is one segment)."""
    if path == "/v2" or path.startswith("/v2/"):
        return V2_PROBE if path in _V2_PROBES else V2
    if path == "/v1" or path.startswith("/v1/"):
        return V1_STREAM if _STREAM.fullmatch(path) else V1
    return OPEN


def policy_of(scope: Scope) -> RoutePolicy:
    """The policy of the request, looked up once and kept in its scope."""
    policy: RoutePolicy | None = scope.get(_POLICY)
    if policy is None:
        path: str = scope["path"]
        policy = scope[_POLICY] = route_policy(path.removeprefix(scope.get("root_path", "")))
    return policy
