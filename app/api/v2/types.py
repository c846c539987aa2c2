"""The Open Inference Protocol's (KServe v2) types: the Pydantic models of its JSON documents,
which also give the OpenAPI schemas, and :class:`ProtocolError`, a request the protocol refuses.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

#: Request parameters the protocol or Triton's client reserve; they do not reach the loss.
RESERVED_PARAMETERS = frozenset(
    {
        "binary_data_output",
        "sequence_id",
        "sequence_start",
        "sequence_end",
        "priority",
        "timeout",
        "headers",
    }
)


class ProtocolError(Exception):
    """A request the protocol layer refuses; ``status`` is the HTTP status to answer with."""

    def __init__(
        self, message: str, status: int = 400, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.headers = headers or {}


# --- The protocol's JSON --------------------------------------------------------------------


class _Strict(BaseModel):
    # Unknown keys are refused, so a typo ("datas") is an error rather than a silent default.
    model_config = ConfigDict(extra="forbid")


class RequestInput(_Strict):
    """One input tensor: JSON ``data`` (flat or nested, row-major), or binary data."""

    name: str
    shape: list[Annotated[int, Field(ge=0)]]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[Any] | None = None


class RequestOutput(_Strict):
    """An output the client wants; ``parameters.binary_data`` asks for it as binary."""

    name: str
    parameters: dict[str, Any] | None = None


class InferenceRequest(_Strict):
    """``POST /v2/models/{name}/infer`` body (or its JSON header, with binary data)."""

    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[RequestInput]
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    """One output tensor; ``data`` is flat (row-major), absent when sent as binary."""

    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[float | None] | None = Field(
        None, description="Row-major values; null stands for NaN or infinity."
    )


class InferenceResponse(BaseModel):
    """An inference response (its JSON header, when outputs are binary)."""

    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[ResponseOutput]


class MetadataTensor(BaseModel):
    """An input or output of a model: ``-1`` marks a dimension of any size."""

    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    """``GET /v2/models/{name}``. ``parameters`` maps each request parameter to its default."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]
    parameters: dict[str, Any] | None = None


class ServerMetadata(BaseModel):
    """``GET /v2``."""

    name: str
    version: str
    extensions: list[str]


class ServerLive(BaseModel):
    """``GET /v2/health/live``."""

    live: bool


class ServerReady(BaseModel):
    """``GET /v2/health/ready``."""

    ready: bool


class ModelReady(BaseModel):
    """``GET /v2/models/{name}/ready``."""

    name: str
    ready: bool


class ErrorResponse(BaseModel):
    """Every v2 error: the protocol's ``{"error": "<message>"}``."""

    error: str
