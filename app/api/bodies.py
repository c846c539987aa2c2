"""Reading request bodies: content type, tensors decoded straight into arrays, errors located.

A JSON body is split into its envelope, which Pydantic validates, and its tensors' text, which
``app.api.json_tensors`` decodes straight into NumPy buffers (no Python object per number). An
error found once every tensor has decoded (element limit, a value past float32) is answered at
once; anything else the fast path declines (malformed text, strings or booleans in a tensor, an
invalid envelope) is parsed whole the ordinary way (Pydantic's Rust parser, Python lists,
:func:`app.losses.to_array`), so a bad request gets exactly the error it always got, with its
JSON pointer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.api.json_tensors import Path, ReparseBody, split_tensors
from app.api.problems import ProblemError, from_loss_error, pointer, validation_problem
from app.api.schemas import TENSOR_FIELDS
from app.losses import LossError
from app.results import dumps

M = TypeVar("M", bound=BaseModel)

#: Bodies larger than this are parsed and evaluated in a worker thread, so one big request does
#: not stall the event loop; smaller ones run inline, where a thread hop costs more than it saves.
INLINE_BODY_BYTES = 64 * 1024


async def read_body(request: Request) -> bytes | bytearray:
    """The whole body. Past 64 KiB it is gathered into one buffer that grows as chunks arrive
    (joining the chunks afterwards would hold the body twice at its peak), never sized by what
    Content-Length declares: the gate charges a body what has arrived, and a buffer allocated
    and zero-filled for 64 MiB on a body's first byte would hold memory nobody is charged for.
    The gate in front has bounded it, and inflated it if it was compressed."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) <= INLINE_BODY_BYTES:
        return await request.body()
    buffer = bytearray()
    async for chunk in request.stream():
        buffer += chunk  # realloc grows it in place (mremap) once it is large
    return buffer


class BodyHolder:
    """A body handed to the thread that decodes it, then dropped: the decoded arrays hold the
    data, and the body's memory is free again before the loss is evaluated."""

    __slots__ = ("body", "size")

    def __init__(self, body: bytes | bytearray) -> None:
        self.body: bytes | bytearray | None = body
        self.size = len(body)

    def take(self) -> bytes | bytearray:
        """The body, given up by the holder (once)."""
        body, self.body = self.body, None
        assert body is not None, "the body was already taken"
        return body


def require_content_type(request: Request, *accepted: str) -> None:
    """415 unless the request's media type is one of ``accepted`` (or ``*/*+json`` for JSON)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    ok = media in accepted or ("application/json" in accepted and media.endswith("+json"))
    if not ok:
        raise ProblemError(
            415,
            f"content type {media or '(none)'!r} is not supported; send {' or '.join(accepted)}",
            slug="unsupported-media-type",
            errors=[("/header/content-type", f"expected {' or '.join(accepted)}")],
        )


def is_tensor_field(path: Path) -> bool:
    """Whether ``path`` is a tensor of a top-level tensor pair (a v1 body, a stream line)."""
    return len(path) == 1 and path[0] in TENSOR_FIELDS


def parse_json(
    model: type[M],
    body: bytes | bytearray,
    context: dict[str, Any],
    prefix: Sequence[str | int] = (),
) -> M:
    """Validate ``body`` into ``model`` (400 for malformed JSON, 422 for invalid content)."""
    split = split_tensors(body, is_tensor_field)
    if split is not None:
        try:
            return model.model_validate_json(
                split.envelope, context={**context, "tensors": split.under()}
            )
        except (ValidationError, ReparseBody):
            pass  # parsed whole below, which says exactly what is wrong and where
        except LossError as exc:  # every tensor decoded: the body is valid JSON
            raise from_loss_error(exc, prefix) from None
    try:
        return model.model_validate_json(body, context=context)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if errors and errors[0]["type"] == "json_invalid":
            raise ProblemError(
                400,
                f"malformed JSON: {errors[0]['msg']}",
                slug="malformed-json",
                errors=[(pointer(*prefix), str(errors[0]["msg"]))],
            ) from None
        raise validation_problem(errors, prefix) from None
    except LossError as exc:
        raise from_loss_error(exc, prefix) from None


async def offload(body_size: int, fn: Any, *args: Any) -> Any:
    """Run CPU-heavy ``fn`` in a worker thread when the body is large, inline otherwise."""
    if body_size > INLINE_BODY_BYTES:
        return await run_in_threadpool(fn, *args)
    return fn(*args)


class ORJSONResponse(Response):
    """JSON via orjson: NumPy arrays without ``tolist()``, NaN and infinity as null."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)
