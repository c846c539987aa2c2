"""RFC 9457 problem details: one exception type, one response shape, every error handler.

A problem has ``type``, ``title``, ``status``, ``detail`` and ``errors``: a list of
``{"pointer": "/y_pred/3", "detail": "row 3 has 4 values, expected 5"}`` entries, the pointer
being a JSON pointer into the request body (or ``/query/<name>``, ``/path/<name>``, ``/line/<n>``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from app.api.policy import policy_of
from app.api.v2.types import ProtocolError
from app.losses import LossError, UnknownLossError

PROBLEM_JSON = "application/problem+json"
#: Answers every operation may give, whatever its protocol (API keys, timeouts, shedding): on
#: /v2 they are problem+json too, with the protocol's ``error`` member beside the problem's.
SHARED_STATUSES = frozenset({401, 408, 503})
log = logging.getLogger("lossd")


class ErrorItem(BaseModel):
    """Where one thing was wrong and what."""

    pointer: str = Field(examples=["/y_pred/3"], description="JSON pointer into the request.")
    detail: str = Field(examples=["row 3 has 4 values, expected 5"])


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    type: str = Field(examples=["urn:lossd:problem:invalid-input"])
    title: str = Field(examples=["Invalid input"])
    status: int = Field(examples=[422])
    detail: str = Field(examples=["y_pred: row 3 has 4 values, expected 5"])
    errors: list[ErrorItem] = Field(default_factory=list)
    suggestions: list[str] | None = Field(
        None, description="Close loss names, for an unknown loss.", examples=[["mse"]]
    )


class ProblemError(Exception):
    """Raise to answer with a problem; ``slug`` becomes the type ``urn:lossd:problem:<slug>``."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        errors: Iterable[tuple[str, str]] = (),
        suggestions: Sequence[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug
        self.errors = list(errors)
        self.suggestions = list(suggestions) if suggestions is not None else None
        self.headers = headers or {}

    def to_dict(self) -> dict[str, Any]:
        """The problem as a JSON-ready dict."""
        body: dict[str, Any] = {
            "type": f"urn:lossd:problem:{self.slug}" if self.slug else "about:blank",
            # Only a slug-less problem needs an HTTP phrase (499, say, has a slug and none).
            "title": self.slug.replace("-", " ").capitalize()
            if self.slug
            else HTTPStatus(self.status).phrase,
            "status": self.status,
            "detail": self.detail,
            "errors": [{"pointer": p, "detail": d} for p, d in self.errors],
        }
        if self.suggestions is not None:
            body["suggestions"] = self.suggestions
        return body

    def response(self, v2: bool = False) -> Response:
        """The problem as a response in the format of the route's protocol: problem+json, or on
        /v2 (the Open Inference Protocol) the protocol's ``{"error": "<detail>"}``."""
        if v2 and self.status not in SHARED_STATUSES:
            body, media_type = {"error": self.detail}, "application/json"
        else:
            body, media_type = self.to_dict(), PROBLEM_JSON
            if v2:
                body["error"] = self.detail
        return Response(
            orjson.dumps(body), status_code=self.status, media_type=media_type, headers=self.headers
        )


def pointer(*parts: str | int) -> str:
    """A JSON pointer from path parts, escaping ``~`` and ``/`` (RFC 6901)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def from_loss_error(error: LossError, prefix: Sequence[str | int] = ()) -> ProblemError:
    """Map an engine error to a problem. ``prefix`` locates the request part it came from: the
    loss name itself for an unknown loss, else the object holding the tensors or options."""
    if isinstance(error, UnknownLossError):
        return ProblemError(
            404,
            error.message,
            slug="unknown-loss",
            errors=[(pointer(*prefix) if prefix else "/path/name", error.message)],
            suggestions=error.suggestions,
        )
    parts = [*prefix, *error.field.split(".")] if error.field else list(prefix)
    where = pointer(*parts, *error.index)
    slug = "invalid-option" if error.field.startswith("options") else "invalid-input"
    # "y_pred: row 3 has 4 values, expected 5"; messages that already name the field stand alone
    named = error.field and error.message.startswith(error.field)
    detail = error.message if named else f"{error.field or 'request'}: {error.message}"
    return ProblemError(
        422,
        detail,
        slug=slug,
        errors=[(where, error.message)],
    )


def install(app: FastAPI) -> None:
    """Answer every error, FastAPI's and Starlette's included, with problem+json."""

    def answer(request: Request, problem: ProblemError) -> Response:
        return problem.response(v2=policy_of(request.scope).v2)

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> Response:
        return answer(request, exc)

    @app.exception_handler(LossError)
    async def _loss(request: Request, exc: LossError) -> Response:
        return answer(request, from_loss_error(exc))

    @app.exception_handler(ProtocolError)
    async def _protocol(request: Request, exc: ProtocolError) -> Response:
        return answer(request, ProblemError(exc.status, exc.message, headers=exc.headers))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request)
        return answer(request, ProblemError(exc.status_code, detail, headers=headers))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return answer(request, validation_problem(exc.errors()))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # A bug of ours, never the client's: log it whole, tell the client little.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return answer(request, ProblemError(500, "internal error; it has been logged"))


def allowed_methods(request: Request) -> str:
    """The ``Allow`` header of a 405: the methods of every route on the path, not only of the
    first one Starlette tried (GET and POST on /v1/losses/{name} are two routes)."""
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in ("DELETE", "GET", "PATCH", "POST", "PUT")
        if any(r.matches({**request.scope, "method": method})[0] is Match.FULL for r in routes)
    )


# Pydantic names the union member it tried inside ``loc`` ("str", "list[union[str,LossRef]]",
# "function-after[...]"); those are not places in the request body.
_UNION_LABELS = re.compile(r"^(str|int|float|bool|none|list|dict)$|[\[\]]")


def _is_union_label(part: str | int) -> bool:
    return isinstance(part, str) and bool(_UNION_LABELS.search(part))


def validation_problem(errors: Sequence[Any], prefix: Sequence[str | int] = ()) -> ProblemError:
    """A 422 from Pydantic's error list, each error located by a JSON pointer."""
    items = []
    for err in errors:
        loc = [p for p in err.get("loc", ()) if p != "body" and not _is_union_label(p)]
        if loc and loc[0] in ("query", "path", "header"):
            where = pointer(*loc)
        else:
            where = pointer(*prefix, *loc)
        items.append((where, str(err.get("msg", "invalid value"))))
    first = f"{items[0][0] or '/'}: {items[0][1]}" if items else "invalid request"
    more = f" (and {len(items) - 1} more)" if len(items) > 1 else ""
    return ProblemError(422, first + more, slug="invalid-input", errors=items)
