"""The OpenAPI document: request bodies parsed by hand are still described, with examples."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from app.api.policy import route_policy
from app.api.problems import Problem
from app.api.security import SCHEME

# Schemas FastAPI cannot see: bodies parsed by hand, and the problem+json error body.
_BODY_MODELS: list[type[BaseModel]] = [Problem]
REF = "#/components/schemas/{model}"
#: Tags group operations in /docs and name the API classes of generated SDKs (``LossesApi``).
TAGS: list[dict[str, Any]] = [
    {"name": "losses", "description": "The catalogue; evaluate one loss, or stream NDJSON chunks."},
    {"name": "batch", "description": "Many evaluations in one call."},
    {
        "name": "inference",
        "description": "`/v2`: the Open Inference Protocol (KServe v2) with Triton's binary "
        "tensor extension; every loss is a model.",
    },
    {"name": "health", "description": "Liveness and readiness."},
    {"name": "observability", "description": "Prometheus metrics."},
]


def json_body(model: type[BaseModel], media_type: str = "application/json") -> dict[str, Any]:
    """``openapi_extra`` declaring ``model`` as the request body of a route that parses it itself
    (FastAPI's own body parsing goes through the stdlib ``json`` module, which is slow)."""
    _BODY_MODELS.append(model)
    schema = {"$ref": REF.format(model=model.__name__)}
    return {"requestBody": {"required": True, "content": {media_type: {"schema": schema}}}}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Documented problem+json error responses for ``statuses``."""
    what = {
        400: "Malformed JSON",
        401: "Missing or wrong API key",
        404: "Unknown loss",
        413: "Body over the size limit",
        415: "Unsupported content type",
        422: "Invalid tensors or options",
        503: "Overloaded; retry after Retry-After",
    }
    return {
        s: {
            "description": what.get(s, "Error"),
            "content": {
                "application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}
            },
        }
        for s in statuses
    }


def unique_id(route: APIRoute) -> str:
    """Operation ids for SDK generators: the route's name in camelCase (``evaluate_loss`` ->
    ``evaluateLoss``), the convention generators expect, so every language's casing reads well."""
    first, *rest = route.name.split("_")
    return first + "".join(word.capitalize() for word in rest)


def install(app: FastAPI) -> None:
    """Replace ``app.openapi`` with a generator that adds the hand-parsed body schemas."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags or TAGS,
            servers=app.servers,
        )
        _, defs = models_json_schema([(m, "validation") for m in _BODY_MODELS], ref_template=REF)
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in defs.get("$defs", {}).items():
            schemas.setdefault(name, schema)
        for path in doc.get("paths", {}).values():  # FastAPI's default 422 is not what we send
            for op in path.values():
                op.get("responses", {}).get("422", {}).get("content", {}).pop(
                    "application/json", None
                )
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        declare_security_and_shedding(doc)
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


BEARER_SCHEME: dict[str, Any] = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API key: `Authorization: Bearer <key>`. Required only when the server "
    "sets `LOSSD_API_KEYS`; otherwise every operation is open and the header is ignored. The "
    "health probes, `/metrics`, `/docs` and `/openapi.json` never need it.",
}
_V2_ERROR = " On `/v2` the body also has the protocol's `error` member (the message)."
_MIDDLEWARE_RESPONSES: dict[str, tuple[str, dict[str, str]]] = {
    "401": (
        "Missing or wrong API key (only when the server sets `LOSSD_API_KEYS`).",
        {"WWW-Authenticate": 'Bearer realm="lossd" (error="invalid_token" for a wrong key).'},
    ),
    "408": (
        "The request body sent nothing for `LOSSD_BODY_TIMEOUT_S` seconds; safe to retry.",
        {},
    ),
    "503": (
        "Overloaded (too many large requests or request bytes in progress); retry after "
        "`Retry-After` seconds.",
        {"Retry-After": "Seconds to wait before retrying."},
    ),
}


def _middleware_response(status: str, v2: bool) -> dict[str, Any]:
    description, headers = _MIDDLEWARE_RESPONSES[status]
    response: dict[str, Any] = {
        "description": description + (_V2_ERROR if v2 else ""),
        "content": {"application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}},
    }
    if headers:
        response["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return response


def declare_security_and_shedding(doc: dict[str, Any]) -> None:
    """Declare the ``bearerAuth`` scheme (optional: ``[{bearerAuth: []}, {}]``, since keys are
    off unless configured) and the answers the middleware can give: 401 on /v1 and /v2, 408 and
    503 on every operation that takes a body (see app/api/security.py and gate.py)."""
    doc.setdefault("components", {})["securitySchemes"] = {SCHEME: BEARER_SCHEME}
    for path, item in doc.get("paths", {}).items():
        policy = route_policy(path)
        for method, op in item.items():
            responses = op.setdefault("responses", {})
            if policy.needs_key:
                op["security"] = [{SCHEME: []}, {}]
                responses.setdefault("401", _middleware_response("401", policy.v2))
            if method in ("post", "put", "patch"):
                for status in ("408", "503"):
                    responses.setdefault(status, _middleware_response(status, policy.v2))
