"""The Open Inference Protocol (KServe v2) with Triton's binary tensor extension.

Every loss is a model, reachable under its canonical name and every alias (``mse``,
``MeanSquaredError``, ``loss_mse``, ... any case), with one version, ``"1"``. Inputs: ``y_true``,
``y_pred`` and optional ``sample_weight``. Outputs: ``per_sample`` (the weighted per-sample losses),
``mean``, ``sum`` and ``count`` (``mean = sum / count``, so partial results merge exactly). Loss
options, ``reduction`` and ``dtype`` are request ``parameters``.

Errors answer in the protocol's own format, ``{"error": "<message>"}``: 400 for anything wrong
with the request, 404 for an unknown model, version or endpoint, 405 for a wrong method, 413 for
a body over the limit, 415 for an unknown ``Content-Encoding``. They are caught here, so the
application's problem+json handlers never see a v2 request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import Match

from app import __version__
from app.api.deps import settings_of
from app.api.kserve import (
    HEADER_LENGTH,
    RESERVED_PARAMETERS,
    EncodedResponse,
    ErrorResponse,
    InferenceRequest,
    InferenceResponse,
    MetadataTensor,
    ModelMetadata,
    ModelReady,
    OutputTensor,
    ProtocolError,
    ServerLive,
    ServerMetadata,
    ServerReady,
    decode_inputs,
    decompress,
    encode_response,
    parse_request,
    requested_outputs,
    split_body,
)
from app.api.openapi import json_body
from app.losses import REDUCTIONS, LossError, LossSpec, UnknownLossError, evaluate, resolve
from app.observability import observation
from app.settings import Settings

router = APIRouter(prefix="/v2", tags=["inference"])  # InferenceApi in SDKs

PLATFORM = "lossd"
VERSIONS = ("1",)
EXTENSIONS = ("binary_tensor_data",)
INPUTS = ("y_true", "y_pred", "sample_weight")
OUTPUTS = ("per_sample", "mean", "sum", "count")
#: Accepted spellings of the ``dtype`` parameter: NumPy's names and the protocol's.
DTYPE_PARAMETER = {"float32": "float32", "fp32": "float32", "float64": "float64", "fp64": "float64"}

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Malformed or invalid request."},
    404: {"model": ErrorResponse, "description": "Unknown model or version."},
}


# --- Helpers without HTTP ------------------------------------------------------------------


def find_model(name: str, version: str | None = None) -> LossSpec:
    """The loss a model name (any alias) and optional version refer to; 404 otherwise."""
    try:
        spec = resolve(name)
    except UnknownLossError as exc:
        hint = f"; did you mean {', '.join(map(repr, exc.suggestions))}?" if exc.suggestions else ""
        raise ProtocolError(f"unknown model {name!r}{hint}", status=404) from None
    if version is not None and version not in VERSIONS:
        raise ProtocolError(
            f"model {spec.name!r} has no version {version!r}; versions: {', '.join(VERSIONS)}",
            status=404,
        )
    return spec


def model_metadata(spec: LossSpec) -> ModelMetadata:
    """The model metadata of one loss: its tensors with their usual datatypes and ranks.

    Ranks and datatypes shown are the typical ones; any rank and any numeric datatype is accepted.
    """
    label_type, label_shape = ("INT64", [-1]) if spec.sparse_labels else ("FP32", [-1, -1])
    parameters: dict[str, Any] = {opt.name: opt.default for opt in spec.options}
    parameters.update(reduction="sum_over_batch_size", dtype=None)
    return ModelMetadata(
        name=spec.name,
        versions=list(VERSIONS),
        platform=PLATFORM,
        inputs=[
            MetadataTensor(name="y_true", datatype=label_type, shape=label_shape),
            MetadataTensor(name="y_pred", datatype="FP32", shape=[-1, -1]),
            MetadataTensor(name="sample_weight", datatype="FP32", shape=[-1]),
        ],
        outputs=[
            MetadataTensor(name="per_sample", datatype="FP32", shape=[-1]),
            MetadataTensor(name="mean", datatype="FP32", shape=[1]),
            MetadataTensor(name="sum", datatype="FP32", shape=[1]),
            MetadataTensor(name="count", datatype="FP64", shape=[1]),
        ],
        parameters=parameters,
    )


def split_parameters(
    spec: LossSpec, parameters: Mapping[str, Any] | None
) -> tuple[dict[str, Any], str, str | None]:
    """Request parameters as (loss options, reduction, dtype or None for automatic).

    Every name must be an option of the loss, ``reduction``, ``dtype`` or a reserved protocol
    parameter (those are ignored here).
    """
    options: dict[str, Any] = {}
    reduction: Any = "sum_over_batch_size"
    dtype: str | None = None
    takes = {opt.name for opt in spec.options}
    for key, value in (parameters or {}).items():
        if key in RESERVED_PARAMETERS:
            continue
        if key == "reduction":
            reduction = value
        elif key == "dtype":
            dtype = DTYPE_PARAMETER.get(value.lower()) if isinstance(value, str) else None
            if dtype is None:
                raise ProtocolError(f"parameter 'dtype' must be float32 or float64, got {value!r}")
        elif key in takes:
            options[key] = value
        else:
            names = ", ".join([*sorted(takes), "reduction", "dtype"])
            raise ProtocolError(f"unknown parameter {key!r}; model {spec.name!r} takes: {names}")
    if reduction not in REDUCTIONS:
        raise ProtocolError(
            f"parameter 'reduction' must be one of {', '.join(REDUCTIONS)}, got {reduction!r}"
        )
    return options, reduction, dtype


def describe_loss_error(exc: LossError) -> str:
    """An engine error in the protocol's vocabulary: options are parameters, tensors inputs."""
    field = exc.field
    if field.startswith("options."):
        where = f"parameter {field.removeprefix('options.')!r}"
    elif field in ("dtype", "reduction"):
        where = f"parameter {field!r}"
    elif field in INPUTS:
        where = f"input {field!r}"
    else:
        where = field
    if exc.index:
        where += f" at index {list(exc.index)}"
    return f"{where}: {exc.message}" if where else exc.message


def run_inference(
    spec: LossSpec,
    body: bytes,
    header_length: str | None,
    *,
    version: str | None = None,
    max_elements: int,
) -> EncodedResponse:
    """Evaluate one inference request (body bytes and its header-length header) on ``spec``.

    Raises :class:`ProtocolError` or :class:`LossError` for anything wrong with the request.
    """
    header, binary = split_body(body, header_length)
    request = parse_request(header)
    options, reduction, dtype = split_parameters(spec, request.parameters)
    wanted = requested_outputs(request, OUTPUTS)  # checked before the work, not after
    names = [tensor.name for tensor in request.inputs]
    for name in names:
        if name not in INPUTS:
            raise ProtocolError(
                f"model {spec.name!r} has no input {name!r}; inputs: {', '.join(INPUTS)}"
            )
    for name in ("y_true", "y_pred"):
        if name not in names:
            raise ProtocolError(f"input {name!r} is missing")
    arrays = decode_inputs(request.inputs, binary, max_elements=max_elements)
    if dtype is None:  # FP64 data computes in float64 unless the request says otherwise
        datatypes = {t.datatype for t in request.inputs if t.name in ("y_true", "y_pred")}
        dtype = "float64" if "FP64" in datatypes else "float32"
    result = evaluate(
        spec,
        arrays["y_true"],
        arrays["y_pred"],
        sample_weight=arrays.get("sample_weight"),
        options=options,
        reduction=reduction,
        dtype=dtype,
    ).result
    observation().evaluated(spec.name, arrays["y_pred"])
    float_type = np.dtype(dtype)
    values = {
        "per_sample": result.per_sample,
        "mean": np.array([result.mean], dtype=float_type),
        "sum": np.array([result.sum], dtype=float_type),
        # A count can pass 2**24 (float32's last exact integer): always FP64.
        "count": np.array([result.count], dtype=np.float64),
    }
    response: dict[str, Any] = {"model_name": spec.name}
    if version is not None:
        response["model_version"] = version
    if request.id is not None:
        response["id"] = request.id
    response["parameters"] = {
        "dtype": dtype,
        "reduction": reduction,
        "non_finite": result.non_finite,
    }
    return encode_response(response, [OutputTensor(n, values[n], b) for n, b in wanted])


# --- HTTP ----------------------------------------------------------------------------------


def json_response(
    content: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """``content`` (a Pydantic model or plain data) serialised by orjson."""
    if hasattr(content, "model_dump"):
        content = content.model_dump(exclude_none=True)
    return Response(
        orjson.dumps(content), status_code=status, media_type="application/json", headers=headers
    )


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """The protocol's error body, ``{"error": message}``."""
    return json_response({"error": message}, status, headers)


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
    try:
        return json_response(model_metadata(find_model(name, version)))
    except ProtocolError as exc:
        return error_response(exc.status, exc.message)


async def _ready(name: str, version: str | None, request: Request) -> Response:
    try:
        spec = find_model(name, version)
    except ProtocolError as exc:
        return error_response(exc.status, exc.message)
    ready = _is_ready(request)  # the losses need no loading: a model is ready when the server is
    return json_response(ModelReady(name=spec.name, ready=ready), 200 if ready else 503)


async def _infer(name: str, version: str | None, request: Request) -> Response:
    settings = settings_of(request)
    try:
        spec = find_model(name, version)
        observation().loss = spec.name
        body = await request.body()  # within LOSSD_MAX_BODY_BYTES: the request gate sees to it
        encoded = await run_in_threadpool(
            _decode_and_run,
            spec,
            body,
            request.headers.get("content-encoding"),
            request.headers.get(HEADER_LENGTH),
            version,
            settings,
        )
    except ProtocolError as exc:
        return error_response(exc.status, exc.message)
    except LossError as exc:
        return error_response(400, describe_loss_error(exc))
    headers = {} if encoded.header_length is None else {HEADER_LENGTH: str(encoded.header_length)}
    return Response(encoded.body, media_type=encoded.content_type, headers=headers)


def _decode_and_run(
    spec: LossSpec,
    body: bytes,
    encoding: str | None,
    header_length: str | None,
    version: str | None,
    settings: Settings,
) -> EncodedResponse:
    # Runs in a worker thread: inflating, decoding and the loss itself are CPU-bound.
    body = decompress(body, encoding, limit=settings.max_body_bytes)
    return run_inference(
        spec, body, header_length, version=version, max_elements=settings.max_elements
    )


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
# extension's JSON header + raw bytes is not describable in OpenAPI; see the README.
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
                return error_response(
                    405, f"{request.method} is not allowed here; use {allowed}", {"Allow": allowed}
                )
    return error_response(404, f"no v2 endpoint at /v2/{path}")
