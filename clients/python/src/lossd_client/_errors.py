"""One exception hierarchy: every error the server answers, or the network gives, is a
:class:`LossdError`; the common cases have their own subclass."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ErrorItem:
    """One located problem: a JSON-pointer-like ``pointer`` (``/y_pred/3``) and its ``detail``."""

    pointer: str
    detail: str


class LossdError(Exception):
    """An error answered by lossd (RFC 9457 problem+json, or /v2's ``{"error"}``), or a network
    failure that outlasted the retries (``status`` is ``None`` then).

    >>> err = LossdError(422, "Invalid input", "y_pred: row 1 has 3 values, expected 2")
    >>> str(err)
    '422 Invalid input: y_pred: row 1 has 3 values, expected 2'
    """

    def __init__(
        self,
        status: int | None,
        title: str,
        detail: str,
        errors: Sequence[ErrorItem] = (),
        *,
        type: str | None = None,
        suggestions: Sequence[str] = (),
        request_id: str | None = None,
    ) -> None:
        self.status = status
        self.title = title
        self.detail = detail
        self.errors: tuple[ErrorItem, ...] = tuple(errors)
        self.type = type
        self.suggestions: tuple[str, ...] = tuple(suggestions)
        self.request_id = request_id
        prefix = f"{status} {title}" if status is not None else title
        super().__init__(f"{prefix}: {detail}" if detail else prefix)


class UnknownLossError(LossdError):
    """404: no loss has that name; ``suggestions`` lists close names."""


class InvalidInputError(LossdError):
    """422 (/v1) or 400 (/v2, a malformed request): the tensors or options are wrong."""


class TooLargeError(LossdError):
    """413: the body is over the server's limit; split it, or use :meth:`Client.stream`."""


class UnauthorizedError(LossdError):
    """401: the API key is missing or wrong."""


class OverloadedError(LossdError):
    """503 or 429 that lasted through every retry: the server is shedding load or stopping."""


class LossdConnectionError(LossdError):
    """The server could not be reached (refused, reset, timed out) through every retry."""


_BY_STATUS: dict[int, type[LossdError]] = {
    401: UnauthorizedError,
    404: UnknownLossError,
    413: TooLargeError,
    422: InvalidInputError,
    429: OverloadedError,
    503: OverloadedError,
}


def error_from_body(status: int, body: Any, request_id: str | None = None) -> LossdError:
    """The exception for an error answer: ``body`` is the decoded JSON (a problem, /v2's
    ``{"error": message}``, or anything else). A /v2 400 is an :class:`InvalidInputError`, as
    the same request to /v1 is a 422; a 404 is an :class:`UnknownLossError` only when it is
    about a loss (an unknown route is a plain :class:`LossdError`)."""
    problem: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    if "title" in problem or "detail" in problem:
        title = str(problem.get("title", ""))
        detail = str(problem.get("detail", ""))
        kind = problem.get("type")
        errors = [
            ErrorItem(str(item.get("pointer", "")), str(item.get("detail", "")))
            for item in problem.get("errors") or ()
            if isinstance(item, Mapping)
        ]
        suggestions = [str(s) for s in problem.get("suggestions") or ()]
    else:
        message = problem.get("error")
        title = _TITLES.get(status, "Error")
        detail = str(message) if message is not None else (str(body) if body else "")
        kind = None
        errors = []
        suggestions = []
    cls = _BY_STATUS.get(status, LossdError)
    if status == 400 and "error" in problem:
        cls, title = InvalidInputError, "Invalid input"
    if cls is UnknownLossError:
        if not _about_a_loss(kind, detail):
            cls = LossdError
        elif "error" in problem:
            title = "Unknown loss"
    return cls(
        status,
        title,
        detail,
        errors,
        type=str(kind) if kind is not None else None,
        suggestions=suggestions,
        request_id=request_id,
    )


def _about_a_loss(kind: object, detail: str) -> bool:
    if isinstance(kind, str):
        return kind.endswith("unknown-loss")
    return "unknown model" in detail or "unknown loss" in detail


_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    404: "Not found",
    408: "Request timeout",
    413: "Content too large",
    422: "Invalid input",
    429: "Too many requests",
    503: "Service unavailable",
}
