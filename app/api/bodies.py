"""Reading request bodies: content type, Rust-side JSON parsing, errors located in the body.

Where a large JSON request's time goes (``python -m bench.profile_json``, py-spy on a live server,
two 1000x1000 float32 tensors in 38.5 MB): parsing (Pydantic's Rust parser building the Python
lists) and one ``np.asarray`` per tensor, plus receiving the body in uvicorn; nothing else shows.
An orjson parse feeding ``np.asarray`` directly was tried and measured against this path
(interleaved, CPU time): no faster (288 vs 293 ms), and slower for small bodies (it has to
re-validate the rest of the body), so Pydantic parses the whole body.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np
import orjson
from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.api.problems import ProblemError, from_loss_error, pointer, validation_problem
from app.losses import Evaluation, LossError

M = TypeVar("M", bound=BaseModel)

#: Bodies larger than this are parsed and evaluated in a worker thread, so one big request does
#: not stall the event loop; smaller ones run inline, where a thread hop costs more than it saves.
INLINE_BODY_BYTES = 64 * 1024


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


def parse_json(
    model: type[M], body: bytes | str, context: dict[str, Any], prefix: Sequence[str | int] = ()
) -> M:
    """Validate ``body`` into ``model`` (400 for malformed JSON, 422 for invalid content)."""
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


def evaluation_dict(evaluation: Evaluation) -> dict[str, Any]:
    """The JSON body of one evaluation; NumPy values are written directly by orjson."""
    r = evaluation.result
    scalar = r.per_sample.dtype.type  # float32 results print as float32 (0.6666667), like Keras
    return {
        "loss": evaluation.loss,
        "per_sample": np.ascontiguousarray(r.per_sample).reshape(-1),
        "shape": list(r.per_sample.shape),
        "mean": scalar(r.mean),
        "sum": scalar(r.sum),
        "count": int(r.count) if float(r.count).is_integer() else scalar(r.count),
        "value": None if r.value is None else scalar(r.value),
        "reduction": evaluation.reduction,
        "dtype": evaluation.dtype,
        "non_finite": r.non_finite,
    }


class ORJSONResponse(Response):
    """JSON via orjson: NumPy arrays without ``tolist()``, NaN and infinity as null."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
