"""``GET /explore``: one page to pick a loss and its options, see its curve and evaluate a small
pair of tensors. Static files in ``app/api/static/explore`` (vanilla JS, no framework, no CDN:
it works offline), served like ``/docs``: outside the OpenAPI contract, which it only uses
(``GET /v1/losses``, ``GET /v1/losses/{name}/curve.svg``, ``POST /v1/losses/{name}``)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

ASSETS = "/explore/assets"
STATIC = Path(__file__).parent / "static" / "explore"


def install(app: FastAPI) -> None:
    """Serve the page at ``/explore`` and its script and style sheet under ``/explore/assets``."""
    app.mount(ASSETS, StaticFiles(directory=STATIC), name="explore")
    page = (STATIC / "index.html").read_text(encoding="utf-8")

    @app.get("/explore", include_in_schema=False)
    def explore() -> HTMLResponse:
        return HTMLResponse(page)
