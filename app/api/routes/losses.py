"""The ``/v1/losses`` resource: the catalogue and single evaluations."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from app.api.bodies import (
    BodyHolder,
    ORJSONResponse,
    offload,
    parse_json,
    read_body,
    require_content_type,
)
from app.api.deps import LossDep, LossName, settings_of
from app.api.openapi import json_body, problem_responses
from app.api.schemas import EvaluateRequest, EvaluateResponse, LossCatalogue, LossInfo
from app.losses import CATALOGUE as SPECS
from app.losses import LossSpec, resolve
from app.observability import observation
from app.results import evaluation_fields

router = APIRouter(prefix="/v1/losses", tags=["losses"])


def loss_info(spec: LossSpec) -> LossInfo:
    """The catalogue entry of ``spec``."""
    return LossInfo.model_validate(spec.describe())


CATALOGUE = LossCatalogue(losses=[loss_info(spec) for spec in SPECS])
BY_FLAVOUR = {
    flavour: LossCatalogue(losses=[i for i in CATALOGUE.losses if i.flavour == flavour])
    for flavour in ("keras", "torch")
}


@router.get("", response_model=LossCatalogue)
async def list_losses(
    flavour: Annotated[
        Literal["keras", "torch"] | None,
        Query(description="Only the losses of this flavour (keras or torch)."),
    ] = None,
) -> LossCatalogue:
    """Every loss: canonical name, aliases, options with types and defaults, formula, doc."""
    return CATALOGUE if flavour is None else BY_FLAVOUR[flavour]


@router.get("/{name}", response_model=LossInfo, responses=problem_responses(404))
async def get_loss(spec: LossDep) -> LossInfo:
    """One catalogue entry; any alias resolves to its canonical entry."""
    return loss_info(spec)


@router.post(
    "/{name}",
    response_model=EvaluateResponse,
    openapi_extra=json_body(EvaluateRequest),
    responses=problem_responses(400, 404, 413, 415, 422),
)
async def evaluate_loss(name: LossName, request: Request) -> Response:
    """Evaluate one loss on one pair of tensors: per-sample losses, mean, sum and count."""
    # Resolved here rather than by dependencies: on the hot path FastAPI's dependency solving
    # costs a small request more than its loss does (bench.asgi_cost --profile mse).
    spec = resolve(name)  # an unknown name: 404 with suggestions
    settings = settings_of(request)
    observation().loss = spec.name
    require_content_type(request, "application/json")
    body = BodyHolder(await read_body(request))
    context = {"max_elements": settings.max_elements}

    def run() -> dict[str, Any]:
        req = parse_json(EvaluateRequest, body.take(), context)  # the body is freed once decoded
        evaluation = req.evaluate(spec, req.options, req.reduction)
        observation().evaluated(spec.name, req.tensors.y_pred)
        return evaluation_fields(evaluation)

    return ORJSONResponse(await offload(body.size, run), limit=settings.response_limit)
