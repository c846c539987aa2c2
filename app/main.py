"""The ASGI application: ``app.main:app``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import __version__
from app.api import docs, openapi, problems
from app.api.limits import BodyLimitMiddleware
from app.api.routes import batch, health, losses, stream, v2
from app.losses import evaluate
from app.observability import middleware as observability
from app.settings import Settings, get_settings

DESCRIPTION = """Evaluate Keras loss functions over HTTP, with the numbers Keras 3 gives.

Errors are RFC 9457 `application/problem+json`. Every loss name of Keras 3, Keras 2, their short
aliases, class names and the R interface's `loss_` names resolve, case-insensitively."""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Warm the engine up once, then report ready; not ready again while shutting down."""
    evaluate("mse", [[0.0, 1.0]], [[1.0, 1.0]])
    app.state.ready = True
    yield
    app.state.ready = False


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application for ``settings`` (the environment's when omitted)."""
    settings = settings or get_settings()
    app = FastAPI(
        title="lossd",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        generate_unique_id_function=openapi.unique_id,
    )
    app.state.settings = settings
    app.state.ready = False
    for module in (health, losses, stream, batch, v2):
        app.include_router(module.router)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        exempt=lambda path: path.endswith("/stream") or path.startswith("/v2/"),
    )
    problems.install(app)
    openapi.install(app)
    docs.install(app)
    observability.install(app, settings)
    return app


app = create_app()
