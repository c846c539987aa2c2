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

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.api.json_tensors import Path, ReparseBody, split_tensors
from app.api.problems import ProblemError, from_loss_error, validation_problem
from app.api.schemas import TENSOR_FIELDS
from app.losses import LossError
from app.results import AnswerTooLargeError, dumps

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

    def fast() -> M:
        assert split is not None
        tensors = {**context, "tensors": split.under()}
        return model.model_validate_json(split.envelope, context=tensors)

    def slow() -> M:
        return model.model_validate_json(body, context=context)

    return validate(model, fast if split is not None else None, slow, prefix)


def validate(
    model: type[M], fast: Callable[[], M] | None, slow: Callable[[], M], prefix: Sequence[str | int]
) -> M:
    """The one way a JSON object with tensors becomes ``model`` (a body, a stream line, a batch
    item), its errors located under ``prefix``.

    ``fast`` validates it with its tensors decoded from their text; when that declines (an
    invalid envelope, a tensor the decoder cannot prove valid, a text that is not JSON alone),
    ``slow`` validates it with its tensors as Python lists, whose errors say exactly what is
    wrong. An engine error from ``fast`` is answered as it is: it is raised only once every
    tensor has decoded, so it is the error ``slow`` would give, without parsing again.
    """
    try:
        if fast is not None:
            try:
                return fast()
            except (ValidationError, ReparseBody):
                pass
        return slow()
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        raise validation_problem(errors, prefix, model.model_fields) from None
    except LossError as exc:
        raise from_loss_error(exc, prefix) from None


async def offload(body_size: int, fn: Any, *args: Any) -> Any:
    """Run CPU-heavy ``fn`` in a worker thread when the body is large, inline otherwise."""
    if body_size > INLINE_BODY_BYTES:
        return await run_in_threadpool(fn, *args)
    return fn(*args)


class ORJSONResponse(Response):
    """JSON via orjson: NumPy arrays without ``tolist()``, NaN and infinity as null; an answer
    over ``limit`` bytes (``LOSSD_MAX_RESPONSE_BYTES``, ``Settings.response_limit``) is refused
    with :func:`response_too_large`, before it is written when its numbers alone are over."""

    media_type = "application/json"

    def __init__(self, content: Any, *, limit: int) -> None:
        self.limit = limit
        super().__init__(content)

    def render(self, content: Any) -> bytes:
        try:
            return dumps(content, self.limit)
        except AnswerTooLargeError as exc:
            raise response_too_large(exc) from None


def response_too_large(exc: AnswerTooLargeError) -> ProblemError:
    """422: the answer would be over the response limit; how to ask for less."""
    size = f"{'at least ' if exc.at_least else ''}{exc.size}"
    return ProblemError(
        422,
        f"the answer would be {size} bytes, more than the limit of {exc.limit} bytes "
        "(LOSSD_MAX_RESPONSE_BYTES); ask for less: fewer items per /v1/batch call, the totals "
        "of the NDJSON endpoint /v1/losses/{name}/stream (per_sample=false, the default), or "
        "/v2 with binary outputs (4 bytes a value) or only the mean output",
        slug="response-too-large",
        errors=[("", "the answer is over the response size limit")],
    )
