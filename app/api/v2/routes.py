"""The routes of the Open Inference Protocol (KServe v2), thin: HTTP in, the adapter
(:mod:`app.api.v2.model`) and the codec (:mod:`app.api.v2.codec`) do the work, HTTP out.

Errors answer in the protocol's own format, ``{"error": "<message>"}``: 400 for anything wrong
with the request, 404 for an unknown model, version or endpoint, 405 for a wrong method, 415 for
an unknown ``Content-Encoding``, 413 for a body that inflates past the limit. They are caught
here, so the application's problem+json handlers never see a v2 request. A body over the limit
never gets here: the request gate (:mod:`app.api.gate`) answers it, in the same format.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import Match

from app import __version__
from app.api.bodies import read_body
from app.api.deps import settings_of
from app.api.openapi import json_body
from app.api.problems import slash_hint
from app.api.v2.codec import HEADER_LENGTH
from app.api.v2.model import find_model, model_metadata, run_inference
from app.api.v2.types import (
    ErrorResponse,
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
    ModelReady,
    ProtocolError,
    ServerLive,
    ServerMetadata,
    ServerReady,
)
from app.observability import observation

router = APIRouter(prefix="/v2", tags=["inference"])  # InferenceApi in SDKs

EXTENSIONS = ("binary_tensor_data",)

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Malformed or invalid request."},
    404: {"model": ErrorResponse, "description": "Unknown model or version."},
}


def json_response(
    content: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """``content`` (a Pydantic model or plain data) serialised by orjson."""
    if hasattr(content, "model_dump"):
        content = content.model_dump(exclude_none=True)
    return Response(
        orjson.dumps(content), status_code=status, media_type="application/json", headers=headers
    )


@router.get("", response_model=ServerMetadata, summary="Server metadata")
async def server_metadata() -> Response:
    """Name, version and protocol extensions of the server."""
    return json_response(
        ServerMetadata(name="lossd", version=__version__, extensions=list(EXTENSIONS))
    )


@router.get("/health/live", response_model=ServerLive, summary="Server liveness")
async def server_live() -> Response:
    """200 while the process can answer requests."""
    return json_response(ServerLive(live=True))


def _is_ready(request: Request) -> bool:
    # The app sets ``state.ready`` after its start-up warm-up and clears it on shutdown.
    return bool(getattr(request.app.state, "ready", True))


@router.get(
    "/health/ready",
    response_model=ServerReady,
    responses={503: {"model": ServerReady, "description": "Starting or shutting down."}},
    summary="Server readiness",
)
async def server_ready(request: Request) -> Response:
    """200 when every model can serve; 503 while starting up or shutting down."""
    ready = _is_ready(request)
    return json_response(ServerReady(ready=ready), 200 if ready else 503)


async def _metadata(name: str, version: str | None) -> Response:
    return json_response(model_metadata(find_model(name, version)))


async def _ready(name: str, version: str | None, request: Request) -> Response:
    spec = find_model(name, version)
    ready = _is_ready(request)  # the losses need no loading: a model is ready when the server is
    return json_response(ModelReady(name=spec.name, ready=ready), 200 if ready else 503)


async def _infer(name: str, version: str | None, request: Request) -> Response:
    settings = settings_of(request)
    spec = find_model(name, version)  # errors answer in the protocol's form (app/api/problems)
    observation().loss = spec.name
    body = await read_body(request)  # within LOSSD_MAX_BODY_BYTES: the request gate sees to it
    # Inflating, decoding and the loss itself are CPU-bound: in a worker thread.
    inference = await run_in_threadpool(
        partial(
            run_inference,
            spec,
            body,
            content_encoding=request.headers.get("content-encoding"),
            header_length=request.headers.get(HEADER_LENGTH),
            version=version,
            max_elements=settings.max_elements,
            max_body_bytes=settings.max_body_bytes,
            max_response_bytes=settings.response_limit,
        )
    )
    observation().evaluated(spec.name, inference.y_pred)
    encoded = inference.response
    headers = {} if encoded.header_length is None else {HEADER_LENGTH: str(encoded.header_length)}
    return Response(encoded.body, media_type=encoded.content_type, headers=headers)


@router.get(
    "/models/{name}",
    response_model=ModelMetadata,
    responses=_ERRORS,
    summary="Model metadata",
    name="model_metadata",
)
async def get_model_metadata(name: str) -> Response:
    """A loss as a model: canonical name, versions, inputs and outputs, parameter defaults."""
    return await _metadata(name, None)


@router.get(
    "/models/{name}/versions/{version}",
    response_model=ModelMetadata,
    responses=_ERRORS,
    summary="Model metadata (versioned)",
    name="model_version_metadata",
)
async def get_model_version_metadata(name: str, version: str) -> Response:
    """As ``GET /v2/models/{name}``; the only version is ``1``."""
    return await _metadata(name, version)


@router.get(
    "/models/{name}/ready", response_model=ModelReady, responses=_ERRORS, summary="Model readiness"
)
async def model_ready(name: str, request: Request) -> Response:
    """200 for every known loss when the server is ready (404 for an unknown one)."""
    return await _ready(name, None, request)


@router.get(
    "/models/{name}/versions/{version}/ready",
    response_model=ModelReady,
    responses=_ERRORS,
    summary="Model readiness (versioned)",
)
async def model_version_ready(name: str, version: str, request: Request) -> Response:
    """As ``GET /v2/models/{name}/ready``; the only version is ``1``."""
    return await _ready(name, version, request)


_INFER_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    413: {"model": ErrorResponse, "description": "Body over the size limit."},
    415: {"model": ErrorResponse, "description": "Unsupported Content-Encoding."},
}
# The body is parsed by hand; declared so clients and fuzzers see its JSON form. The binary
# extension's JSON header + raw bytes is not describable in OpenAPI; see docs/api.md.
_INFER_BODY = json_body(InferenceRequest)


@router.post(
    "/models/{name}/infer",
    response_model=InferenceResponse,
    responses=_INFER_ERRORS,
    openapi_extra=_INFER_BODY,
    summary="Evaluate a loss (inference)",
    name="model_infer",
)
async def infer(name: str, request: Request) -> Response:
    """Evaluate the loss on ``y_true``/``y_pred`` given as JSON data or binary tensors.

    Body: the protocol's inference request; with the binary extension, its JSON header of
    ``Inference-Header-Content-Length`` bytes followed by the inputs' raw bytes.
    """
    return await _infer(name, None, request)


@router.post(
    "/models/{name}/versions/{version}/infer",
    response_model=InferenceResponse,
    responses=_INFER_ERRORS,
    openapi_extra=_INFER_BODY,
    summary="Evaluate a loss (inference, versioned)",
    name="model_version_infer",
)
async def infer_version(name: str, version: str, request: Request) -> Response:
    """As ``POST /v2/models/{name}/infer``; the only version is ``1``."""
    return await _infer(name, version, request)


@router.api_route(
    "/{path:path}",
    methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    include_in_schema=False,
)
async def no_such_endpoint(request: Request, path: str) -> Response:
    """Any other /v2 path: 405 if another method would match, else 404, in the v2 format."""
    for route in router.routes:
        if isinstance(route, APIRoute) and route.endpoint is not no_such_endpoint:
            match, _ = route.matches(request.scope)
            if match is Match.PARTIAL:
                allowed = ", ".join(sorted(route.methods or ()))
                raise ProtocolError(
                    f"{request.method} is not allowed here; use {allowed}",
                    status=405,
                    headers={"Allow": allowed},
                )
    others = [r for r in router.routes if getattr(r, "endpoint", None) is not no_such_endpoint]
    hint = slash_hint(request.scope, others)
    raise ProtocolError(f"no v2 endpoint at /v2/{path}{hint}", status=404)
