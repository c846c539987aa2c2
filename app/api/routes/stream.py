"""``POST /v1/losses/{name}/stream``: NDJSON chunks evaluated as they arrive, memory bounded.

Each line is ``{"y_true": ..., "y_pred": ..., "sample_weight"?: ..., "options"?: ...}`` (a
line's options add to the query's: a torch loss's ``var`` for that chunk, say). Only the
running totals are kept (and the per-sample values when asked), so memory does not grow with the
number of lines. Chunk sums are added in float64; ``mean = sum / count`` over all chunks. Lines
are parsed and evaluated in a worker thread, a batch at a time (:mod:`app.api.ndjson`), one
after another: the totals are touched by one thread at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from app.api.bodies import ORJSONResponse, parse_json, require_content_type
from app.api.deps import LossDep, SettingsDep, parse_query_options
from app.api.ndjson import Line, for_each_line
from app.api.openapi import json_body, problem_responses
from app.api.problems import ProblemError, from_loss_error
from app.api.schemas import (
    DERIVATIVE_FIELDS,
    NO_STREAMED_DERIVATIVES,
    DTypeName,
    ReductionName,
    StreamLine,
    StreamResponse,
)
from app.losses import LossError, LossSpec
from app.losses.evaluate import check_reduction
from app.losses.numerics import FloatArray
from app.observability import observation
from app.results import reduced_value, totals_fields

router = APIRouter(prefix="/v1/losses", tags=["losses"])
NDJSON = "application/x-ndjson"


@dataclass
class Totals:
    """Running totals of a stream."""

    sum: float = 0.0
    count: float = 0.0
    non_finite: int = 0
    chunks: int = 0
    elements: int = 0
    parts: list[FloatArray] = field(default_factory=list)


@router.post(
    "/{name}/stream",
    response_model=StreamResponse,
    openapi_extra=json_body(StreamLine, NDJSON),
    responses=problem_responses(400, 404, 413, 415, 422),
)
async def evaluate_stream(
    spec: LossDep,
    request: Request,
    settings: SettingsDep,
    reduction: Annotated[
        ReductionName | None,
        Query(description="In the loss's flavour; omitted: the loss's default."),
    ] = None,
    dtype: DTypeName = "float32",
    options: Annotated[
        str | None,
        Query(description="Loss options as a JSON object.", examples=['{"from_logits": true}']),
    ] = None,
    per_sample: Annotated[bool, Query(description="Also return every per-sample value.")] = False,
) -> Response:
    """Evaluate an NDJSON stream of chunks (one JSON object per line) with bounded memory."""
    observation().loss = spec.name
    require_content_type(request, NDJSON)
    if asked := [name for name in DERIVATIVE_FIELDS if name in request.query_params]:
        raise ProblemError(
            422,
            NO_STREAMED_DERIVATIVES,
            slug="invalid-input",
            errors=[(f"/query/{name}", "not taken by a stream") for name in asked],
        )
    opts = parse_query_options(options)
    try:
        how = check_reduction(spec, reduction)  # None: the loss's default
    except LossError as exc:
        raise from_loss_error(exc, ("query",)) from None
    totals = Totals()
    context = {"max_elements": settings.max_elements}

    def evaluate(number: int, line: Line) -> None:
        _add_chunk(
            spec,
            line,
            number,
            context,
            opts,
            how,
            dtype,
            per_sample,
            settings.max_elements,
            totals,
        )

    # In batches in a worker thread (app/api/ndjson.py): the lines' CPU is off the event loop.
    await for_each_line(request.receive, evaluate)
    if totals.chunks == 0:
        raise ProblemError(
            422,
            "the stream holds no chunks",
            slug="invalid-input",
            errors=[("/line/1", "expected at least one JSON line")],
        )
    answer = _result(spec, totals, how, dtype, per_sample)
    return ORJSONResponse(answer, limit=settings.response_limit)


def _add_chunk(
    spec: LossSpec,
    line: Line,
    number: int,
    context: dict[str, Any],
    options: dict[str, Any],
    reduction: str,
    dtype: str,
    keep: bool,
    limit: int,
    totals: Totals,
) -> None:
    """Evaluate one line and add it to ``totals``; a problem names the line in its detail."""
    try:
        chunk = parse_json(StreamLine, line, {**context, "dtype": dtype}, ("line", number))
        own = chunk.options or {}
        try:
            r = chunk.evaluate(spec, {**options, **own}, reduction).result
        except LossError as exc:
            at_query = exc.field.startswith("options") and exc.field[8:] not in own
            raise from_loss_error(exc, ("query",) if at_query else ("line", number)) from None
        observation().evaluated(spec.name, chunk.tensors.y_pred)
        if keep:
            _keep(totals, r.per_sample, number, limit)
    except ProblemError as problem:
        if not any(where.startswith("/query") for where, _ in problem.errors):
            problem.detail = f"line {number}: {problem.detail}"
        raise
    totals.sum += r.sum
    totals.count += r.count
    totals.non_finite += r.non_finite - r.empty  # an empty chunk only matters if all are
    totals.chunks += 1


def _keep(totals: Totals, values: FloatArray, number: int, limit: int) -> None:
    """Keep one chunk's per-sample values, within the element limit and the running shape."""
    totals.elements += values.size
    if totals.elements > limit:
        raise ProblemError(
            422,
            f"per_sample would hold more than {limit} values; ask without per_sample=true",
            slug="too-many-elements",
            errors=[("/query/per_sample", "too many values to return")],
        )
    values = np.atleast_1d(values)
    if totals.parts and totals.parts[0].shape[1:] != values.shape[1:]:
        raise ProblemError(
            422,
            f"per-sample shape {list(values.shape)} does not continue the earlier chunks",
            slug="invalid-input",
            errors=[(f"/line/{number}", "chunk shapes differ")],
        )
    totals.parts.append(values)


def _result(
    spec: LossSpec, totals: Totals, reduction: str, dtype: str, keep: bool
) -> dict[str, Any]:
    # Totals are kept in float64 and reported in the computation dtype, like a single request.
    # Nothing counted: Keras's mean is 0 (divide_no_nan), torch's NaN (counted as non-finite).
    empty = not totals.count and spec.flavour == "torch"
    mean = totals.sum / totals.count if totals.count else (float("nan") if empty else 0.0)
    value = reduced_value(reduction, mean, totals.sum)
    body: dict[str, Any] = {
        "loss": spec.name,
        **totals_fields(dtype, mean, totals.sum, totals.count, value),
        "reduction": reduction,
        "dtype": dtype,
        "chunks": totals.chunks,
        "non_finite": totals.non_finite + empty,
        "per_sample": None,
        "shape": None,
    }
    if keep:
        values = np.concatenate(totals.parts)
        body["per_sample"], body["shape"] = values.reshape(-1), list(values.shape)
    return body
