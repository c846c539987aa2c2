"""RFC 9457 problem details: one exception type, one response shape, every error handler.

A problem has ``type``, ``title``, ``status``, ``detail`` and ``errors``: a list of
``{"pointer": "/y_pred/3", "detail": "row 3 has 4 values, expected 5"}`` entries, the pointer
being a JSON pointer into the request body (or ``/query/<name>``, ``/path/<name>``, ``/line/<n>``).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from app.api.policy import policy_of
from app.api.v2.types import ProtocolError
from app.errors import V1, V2, ErrorReport, pointer, report, validation_report
from app.losses import LossError

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
            "title": title(self.slug) if self.slug else HTTPStatus(self.status).phrase,
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


#: Words a title keeps in capitals (``malformed-json`` is "Malformed JSON", not "Malformed json").
ACRONYMS = frozenset({"json", "ndjson", "api", "url", "http", "id"})


def title(slug: str) -> str:
    """A problem's title from its slug: ``too-many-elements`` -> ``Too many elements``."""
    text = " ".join(w.upper() if w in ACRONYMS else w for w in slug.split("-"))
    return text[:1].upper() + text[1:]


def problem(found: ErrorReport) -> ProblemError:
    """An :class:`~app.errors.ErrorReport` as a problem: its locations as JSON pointers."""
    return ProblemError(
        found.status,
        found.detail,
        slug=found.slug,
        errors=[(pointer(*where), message) for where, message in found.errors],
        suggestions=found.suggestions,
    )


def from_loss_error(
    error: LossError, prefix: Sequence[str | int] = (), *, v2: bool = False
) -> ProblemError:
    """An engine error as a problem (:func:`app.errors.report`); ``v2`` words it as the Open
    Inference Protocol does (a problem on /v2 is answered as ``{"error": detail}``)."""
    return problem(report(error, V2 if v2 else V1, tuple(prefix)))


def validation_problem(
    errors: Sequence[Any], prefix: Sequence[str | int] = (), fields: Collection[str] = ()
) -> ProblemError:
    """A 422 (400 for malformed JSON) from Pydantic's errors (``app.errors.validation_report``)."""
    return problem(validation_report(errors, V1, tuple(prefix), fields))


def install(app: FastAPI) -> None:
    """Answer every error, FastAPI's and Starlette's included, with problem+json."""

    def answer(request: Request, refused: ProblemError) -> Response:
        return refused.response(v2=policy_of(request.scope).v2)

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> Response:
        return answer(request, exc)

    @app.exception_handler(LossError)
    async def _loss(request: Request, exc: LossError) -> Response:
        return answer(request, from_loss_error(exc, v2=policy_of(request.scope).v2))

    @app.exception_handler(ProtocolError)
    async def _protocol(request: Request, exc: ProtocolError) -> Response:
        return answer(request, ProblemError(exc.status, exc.message, headers=exc.headers))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request)
        if exc.status_code == 404 and detail == HTTPStatus.NOT_FOUND.phrase:  # no route matched
            return answer(request, unknown_path(request))
        return answer(request, ProblemError(exc.status_code, detail, headers=headers))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return answer(request, validation_problem(exc.errors()))  # query and path parameters

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


def unknown_path(request: Request) -> ProblemError:
    """A 404 for a path no route serves, saying where the API is described (or, for a path
    with a trailing slash, which path does exist: see :func:`slash_hint`)."""
    path = request.url.path
    hint = slash_hint(request.scope, request.app.router.routes)
    detail = f"no endpoint at {path}" + (
        hint
        or "; GET /v1/losses lists the losses, POST /v1/losses/{name} evaluates one, and /docs "
        "describes every endpoint"
    )
    return ProblemError(404, detail, slug="unknown-path", errors=[("/path", detail)])


def slash_hint(scope: Scope, routes: Iterable[BaseRoute]) -> str:
    """``"; drop the trailing slash: /v1/losses/mse"`` when one of ``routes`` serves the path
    without its trailing slash, else nothing. Such a path is answered 404 with this hint, on
    /v1 and /v2 alike, rather than redirected (Starlette's empty 307, which a client posting a
    body rarely follows)."""
    path: str = scope["path"]
    trimmed = path.rstrip("/")
    if trimmed == path or not trimmed:
        return ""
    moved = {**scope, "path": trimmed}
    served = any(route.matches(moved)[0] is not Match.NONE for route in routes)
    return f"; drop the trailing slash: {trimmed}" if served else ""
