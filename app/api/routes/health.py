"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response

from app.api.problems import ProblemError

router = APIRouter(tags=["health"])
# Probes are ``async def``: they do no blocking work, so they answer on the event loop without a
# worker-thread hop (a probe must keep answering while the thread pool is busy with big requests).


class Health(BaseModel):
    """A probe's answer."""

    status: str


# The answers are fixed bytes: returning them skips FastAPI's response-model serialization on
# every probe (Health still documents them in the OpenAPI file).
_ANSWERS = {s: Health(status=s).model_dump_json().encode() for s in ("ok", "ready")}


def _answer(status: str) -> Response:
    return Response(_ANSWERS[status], media_type="application/json")


@router.get("/healthz", response_model=Health)
async def healthz() -> Response:
    """Liveness: the process answers HTTP."""
    return _answer("ok")


@router.get("/readyz", response_model=Health, responses={503: {"description": "Not ready"}})
async def readyz(request: Request) -> Response:
    """Readiness: start-up (engine warm-up) is done and the server is not shutting down."""
    if not getattr(request.app.state, "ready", False):
        raise ProblemError(503, "not ready", headers={"Retry-After": "1"})
    return _answer("ready")
