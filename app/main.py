"""The ASGI application: ``app.main:app``."""

from __future__ import annotations

from fastapi import FastAPI

from app import __version__
from app.api.routes import v2
from app.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application for ``settings`` (the environment's when omitted)."""
    settings = settings or get_settings()
    app = FastAPI(title="lossd", version=__version__)
    app.state.settings = settings

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(v2.router)
    return app


app = create_app()
