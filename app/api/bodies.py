"""Reading request bodies: content type, the fast tensor path, errors located in the body.

Where the time goes for a 40 MB body of two 1000x1000 float32 tensors (py-spy, see
``bench/profile_json.py``): almost all of it in JSON parsing. Pydantic's ``model_validate_json``
then ``np.asarray`` over its lists cost ~1.7x orjson's parse plus ``np.asarray``, so tensor bodies
take the fast path below and Pydantic validates only the small remainder; any body the fast path
does not accept as it stands goes through Pydantic whole, which owns every error message.
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
from app.api.schemas import TensorPair
from app.losses import Evaluation, LossError
from app.losses.numerics import FloatArray
from app.losses.tensors import try_array

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
    fast = parse_tensors_fast(model, body, context)
    if fast is not None:
        return fast
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


#: Tensors the fast path decodes itself; ``sample_weight`` is usually small and goes via Pydantic.
FAST_TENSORS = ("y_true", "y_pred")


def parse_tensors_fast(model: type[M], body: bytes | str, context: dict[str, Any]) -> M | None:
    """``model`` from ``body`` the fast way, or ``None`` where the body needs the full diagnosis.

    orjson parses the body once; ``y_true`` and ``y_pred`` become arrays by one ``np.asarray``
    each (:func:`try_array`: rectangular, numeric, finite, non-empty), within the element limit;
    the rest of the body (options, reduction, dtype, sample_weight) is re-encoded, a few bytes, and
    validated by Pydantic's JSON mode exactly as on the slow path. ``None`` for anything else
    (malformed JSON, NaN literals, a bad tensor, a bad field), so the slow path reports it with
    the same message and pointer as always.
    """
    if not issubclass(model, TensorPair):
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    dtype = data.get("dtype", "float32") if "dtype" in model.model_fields else None
    dtype = dtype or context.get("dtype", "float32")
    if not isinstance(dtype, str):
        return None
    limit = context.get("max_elements")
    decoded: dict[str, FloatArray] = {}
    for name in FAST_TENSORS:
        array = try_array(data.get(name), dtype) if isinstance(data.get(name), list) else None
        if array is None or (limit is not None and array.size > limit):
            return None
        decoded[name] = array
        data[name] = []  # the model validator takes the decoded array instead
    try:
        return model.model_validate_json(
            orjson.dumps(data), context={**context, "decoded": decoded}
        )
    except (ValidationError, LossError, orjson.JSONEncodeError):
        return None


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
