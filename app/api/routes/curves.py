"""``GET /v1/losses/{name}/curve.svg``: a loss drawn against its prediction, as an SVG image.

The numbers come from the engine (``app/curves.py`` chooses the picture, ``app/plot.py`` draws
it); this module only reads the query and maps errors to problems, each located in the query
(``/query/min``, ``/query/options/delta``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.api.deps import LossDep, parse_query_options
from app.api.openapi import problem_responses
from app.api.problems import from_loss_error
from app.curves import DEFAULT_POINTS, MAX_BOUND, MAX_POINTS, MIN_POINTS, curve
from app.losses import LossError, LossSpec
from app.observability import observation
from app.plot import render_svg

router = APIRouter(prefix="/v1/losses", tags=["losses"])
SVG = "image/svg+xml"
_SVG_RESPONSE: dict[int | str, dict[str, object]] = {
    200: {
        "description": "The curve, an SVG image.",
        "content": {SVG: {"schema": {"type": "string"}}},
    }
}


@router.get(
    "/{name}/curve.svg",
    response_class=Response,
    responses={**_SVG_RESPONSE, **problem_responses(404, 422)},
)
async def loss_curve(
    spec: LossDep,
    options: Annotated[
        str | None,
        Query(description="Loss options as a JSON object.", examples=['{"from_logits": true}']),
    ] = None,
    low: Annotated[
        float | None,
        Query(
            alias="min",
            allow_inf_nan=False,
            ge=-MAX_BOUND,
            le=MAX_BOUND,
            description="Smallest y_pred (or varied component) drawn; the loss's default range "
            "when omitted (probabilities (0.01, 0.99), logits [-6, 6], scores [-3, 3], ...).",
        ),
    ] = None,
    high: Annotated[
        float | None,
        Query(
            alias="max",
            allow_inf_nan=False,
            ge=-MAX_BOUND,
            le=MAX_BOUND,
            description="Largest y_pred drawn.",
        ),
    ] = None,
    points: Annotated[
        int, Query(ge=MIN_POINTS, le=MAX_POINTS, description="Number of points per curve.")
    ] = DEFAULT_POINTS,
) -> Response:
    """Draw the loss against y_pred for a few y_true values (one component of a vector
    varied, the others held fixed as the subtitle says), computed by the engine."""
    observation().loss = spec.name
    opts = parse_query_options(options)
    # Up to a few thousand evaluations: off the event loop.
    svg = await run_in_threadpool(_draw, spec, opts, low, high, points)
    return Response(svg, media_type=SVG)


def _draw(
    spec: LossSpec, options: dict[str, object], low: float | None, high: float | None, n: int
) -> str:
    try:
        data = curve(spec, options, low, high, n)
    except LossError as exc:  # bad options or range: located in the query
        raise from_loss_error(exc, ("query",)) from None
    return render_svg(data.chart())
