"""The ASGI application: ``app.main:app``."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from app import __version__
from app.api import docs, explore, openapi, problems
from app.api.accounting import Admission, AdmissionLimits
from app.api.bodies import INLINE_BODY_BYTES
from app.api.gate import RequestGate
from app.api.routes import batch, curves, health, losses, stream
from app.api.security import APIKeyMiddleware, cors_options
from app.api.v2 import routes as v2
from app.losses import evaluate
from app.observability import middleware as observability
from app.runtime import keep_freed_memory, limit_malloc_arenas, on_exit_signal
from app.settings import Settings, get_settings

DESCRIPTION = """Evaluate Keras loss functions over HTTP, with the numbers Keras 3 gives.

Errors are RFC 9457 `application/problem+json`. Every loss name of Keras 3, Keras 2, their short
aliases, class names and the R interface's `loss_` names resolve, case-insensitively."""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Warm the engine up once, then report ready; not ready again while shutting down."""
    limit_malloc_arenas()  # before the thread pool decodes anything: bounds the worker's RSS
    keep_freed_memory()  # large temporaries reuse warm pages instead of faulting fresh ones
    evaluate("mse", [[0.0, 1.0]], [[1.0, 1.0]])
    app.state.ready = True
    on_exit_signal(lambda: setattr(app.state, "ready", False))  # 503 while requests drain
    yield
    app.state.ready = False


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application for ``settings`` (the environment's when omitted)."""
    settings = settings or get_settings()
    app = FastAPI(
        **_telemetry(settings.opentelemetry),
        title="lossd",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        generate_unique_id_function=openapi.unique_id,
        # A trailing slash is a 404 naming the path without it, not an empty 307 redirect.
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.ready = False
    for module in (health, losses, curves, stream, batch, v2):
        app.include_router(module.router)
    # Middleware, outermost first: request id, metrics and log (app/observability, around the
    # whole stack) > CORS > API keys > the request gate (body limit, admission, body timeout)
    # > routes. So every answer, 401, 408, 413 and 503 included, carries X-Request-ID (and CORS
    # headers) and is logged; a CORS preflight needs no key; a request without a valid key takes
    # no admission permit. add_middleware wraps what was added before it, so they are added
    # innermost first.
    app.state.admission = Admission(  # this worker's permits and in-flight bytes
        AdmissionLimits(
            large_body_bytes=settings.large_body_bytes,
            max_concurrent_large=settings.max_concurrent_large,
            max_inflight_bytes=settings.max_inflight_bytes,
            max_body_bytes=settings.max_body_bytes,
            body_timeout_s=settings.body_timeout_s,
            body_min_rate=settings.body_min_rate,
            body_grace_s=settings.body_grace_s,
            small_body_bytes=INLINE_BODY_BYTES,  # the routes decode these inline, one at a time
        )
    )
    app.add_middleware(RequestGate, admission=app.state.admission)
    if settings.api_key_list:
        app.add_middleware(
            APIKeyMiddleware,
            keys=settings.api_key_list,
            drain_bytes=settings.max_body_bytes,
            timeout_s=settings.body_timeout_s,
        )
    if settings.cors_origin_list:
        app.add_middleware(CORSMiddleware, **cors_options(settings.cors_origin_list))
    problems.install(app)
    openapi.install(app)
    docs.install(app)
    explore.install(app)
    observability.install(app, settings)
    return app


def _telemetry(enabled: bool) -> dict[str, Any]:
    """FastAPI's ``telemetry`` argument (FastAPI 0.16x on) with its native OpenTelemetry on or
    off. On, it looks for configured OpenTelemetry providers on every request: about a tenth of
    a probe's CPU in a process that configures none."""
    if "telemetry" not in inspect.signature(FastAPI).parameters:
        return {}
    if enabled:
        return {"telemetry": {}}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}


app = create_app()
