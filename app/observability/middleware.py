"""One ASGI middleware, the outermost layer, for each HTTP request: its ``X-Request-ID``, its
metrics and its log line.

Outermost means outside Starlette's error middleware too, so a 500 answer still carries the id and
is counted and logged with its status.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.context import CURRENT, Observation, request_id
from app.observability.logs import RequestLog, configure_logging
from app.observability.metrics import Metrics, create_metrics, router
from app.settings import Settings

REQUEST_ID_HEADER = b"x-request-id"


class ObservabilityMiddleware:
    """Request id, metrics and one log line per HTTP request.

    Per request: one scan of the headers (for ``X-Request-ID``), two clock readings, one
    :class:`Observation` made current, one dict lookup per labelled series; the log line's
    fields are built only when the line is written.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, paths: Callable[[], list[str]]) -> None:
        """``paths`` gives the route templates of the app (its OpenAPI paths), asked once when
        the first request answered before routing needs them."""
        self.app = app
        self.metrics = metrics
        self.paths = paths
        self.log = RequestLog()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        obs = Observation(request_id(_header(scope, REQUEST_ID_HEADER)))
        id_header = (REQUEST_ID_HEADER, obs.request_id.encode())
        status = 500  # what uvicorn answers for an app that sends no response

        # A plain function handing back send's awaitable: no coroutine of its own per message.
        def send_with_id(message: Message) -> Awaitable[None]:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), id_header]}
            return send(message)

        token = CURRENT.set(obs)
        in_flight = self.metrics.in_flight_add
        in_flight(1)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            in_flight(-1)
            seconds = time.perf_counter() - start
            route = self.route_template(scope)
            self.metrics.observe(route, scope["method"], status, obs, seconds)
            if self.log.enabled():
                client = scope.get("client")
                self.log.write(
                    {
                        "method": scope["method"],
                        "path": scope["path"],
                        "route": route or None,
                        "status": status,
                        "loss": obs.loss or None,
                        "elements": sum(obs.elements.values()),
                        # whole microseconds in ms: round(seconds * 1000, 3) without the
                        # decimal conversion rounding a float to digits makes (0.1 us, not 0.3)
                        "duration_ms": round(seconds * 1e6) / 1000,
                        "request_id": obs.request_id,
                        "client": client[0] if client else None,
                    }
                )
            CURRENT.reset(token)

    def route_template(self, scope: Scope) -> str:
        """The path template of the route that handled the request. A request answered before
        routing (no API key, body over the limit, load shed) gets the template of the route it
        was for; a path that no route matches, an empty string."""
        route = scope.get("route")
        if route is not None:
            return getattr(route, "path", "")
        path = scope["path"].removeprefix(scope.get("root_path", ""))
        return next((t for pattern, t in self.templates if pattern.match(path)), "")

    @functools.cached_property
    def templates(self) -> list[tuple[re.Pattern[str], str]]:
        return [(compile_path(path)[0], path) for path in self.paths()]


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None


def install(app: FastAPI, settings: Settings) -> None:
    """Add ``GET /metrics``, the request log and request ids to ``app``."""
    configure_logging(settings.log_level, settings.log_format)
    metrics = create_metrics()
    app.state.metrics = metrics
    app.include_router(router)
    # Wrap the whole stack Starlette builds (its error middleware included), not only the user
    # middleware inside it.
    build: Callable[[], ASGIApp] = app.build_middleware_stack
    app.build_middleware_stack = lambda: ObservabilityMiddleware(  # type: ignore[method-assign]
        build(), metrics, lambda: list(app.openapi()["paths"])
    )
