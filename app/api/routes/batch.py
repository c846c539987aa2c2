"""``POST /v1/batch``: many evaluations in one call, each item succeeding or failing alone."""

from __future__ import annotations

from typing import Any

import pydantic_core
from fastapi import APIRouter, Request
from starlette.responses import Response

from app.api.bodies import (
    ORJSONResponse,
    offload,
    read_body,
    require_content_type,
    validate,
)
from app.api.deps import SettingsDep
from app.api.json_tensors import (
    Path,
    ReparseBody,
    SplitBody,
    TensorText,
    parse_text,
    split_tensors,
)
from app.api.openapi import json_body, problem_responses
from app.api.problems import ProblemError, from_loss_error, problem
from app.api.schemas import (
    TENSOR_FIELDS,
    BatchItem,
    BatchRequest,
    BatchResponse,
    LossRef,
)
from app.errors import malformed_json
from app.losses import LossError, UnknownLossError
from app.observability import observation
from app.results import evaluation_fields
from app.settings import Settings

router = APIRouter(prefix="/v1", tags=["batch"])


@router.post(
    "/batch",
    response_model=BatchResponse,
    openapi_extra=json_body(BatchRequest),
    responses=problem_responses(400, 413, 415, 422),
)
async def evaluate_batch(request: Request, settings: SettingsDep) -> Response:
    """Evaluate many items; results come back in order, a bad item as a problem in its slot."""
    require_content_type(request, "application/json")
    body = await read_body(request)
    answer = await offload(len(body), run_batch, body, settings)
    return ORJSONResponse(answer, limit=settings.response_limit)


def is_item_tensor(path: Path) -> bool:
    """Whether ``path`` is a tensor of a batch item (``items/<i>/y_pred``)."""
    return len(path) == 3 and path[0] == "items" and path[2] in TENSOR_FIELDS


def run_batch(body: bytes | bytearray, settings: Settings) -> dict[str, Any]:
    """Parse the envelope, then evaluate each item on its own.

    The items' tensors are cut out of the body and decoded straight into arrays; an item that
    fails that way is validated again from Python lists, the way its error is worded.
    """
    split = split_tensors(body, is_item_tensor)
    try:
        return _run_batch(split.envelope if split else body, split, settings)
    except ReparseBody:  # a tensor's text is not JSON: the body, parsed whole, says where
        return _run_batch(body, None, settings)


def _run_batch(
    body: bytes | bytearray, split: SplitBody | None, settings: Settings
) -> dict[str, Any]:
    try:
        # pydantic-core's parser, like the single-evaluation endpoint's: it refuses nesting past
        # ~200 levels, so no deeply nested value reaches the (recursive) tensor and option
        # checks, which would hit Python's recursion limit and answer 500. NaN is refused as
        # orjson did.
        envelope = pydantic_core.from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        if split is not None:
            raise ReparseBody from None
        raise problem(malformed_json(str(exc))) from None
    items = envelope.get("items") if isinstance(envelope, dict) else None
    if not isinstance(items, list) or set(envelope) != {"items"}:
        raise ProblemError(
            422,
            "the body must be an object with one field, items (a list)",
            slug="invalid-input",
            errors=[("/items", "expected a list of items")],
        )
    if len(items) > settings.max_batch_items:
        raise ProblemError(
            422,
            f"{len(items)} items is more than the limit of {settings.max_batch_items}",
            slug="too-many-items",
            errors=[("/items", f"at most {settings.max_batch_items} items")],
        )
    context = {"max_elements": settings.max_elements}
    return {
        "results": [
            run_item(i, raw, context, split.under("items", i) if split else {})
            for i, raw in enumerate(items)
        ]
    }


def run_item(
    i: int, raw: Any, context: dict[str, Any], texts: dict[Any, TensorText]
) -> dict[str, Any]:
    """One item's result: 200 with one evaluation per loss, or the item's problem.

    The item is validated as a single request's body is (:func:`app.api.bodies.validate`): its
    tensors decoded from their ``texts`` when it has them, else (or when that declines) from
    the texts parsed as Python lists.
    """
    item_id = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None

    def fast() -> BatchItem:
        return BatchItem.model_validate(raw, context={**context, "tensors": texts})

    def slow() -> BatchItem:
        lists = {name: parse_text(text) for name, text in texts.items()}
        return BatchItem.model_validate({**raw, **lists} if lists else raw, context=context)

    try:
        item = validate(BatchItem, fast if texts else None, slow, ("items", i))
        results = [evaluate_ref(i, j, ref, item) for j, ref in enumerate(_refs(item))]
    except ProblemError as refused:
        return {
            "id": item_id,
            "status": refused.status,
            "results": None,
            "error": refused.to_dict(),
        }
    return {"id": item.id, "status": 200, "results": results, "error": None}


def _refs(item: BatchItem) -> list[str | LossRef]:
    return [item.loss] if isinstance(item.loss, str) else item.loss


def evaluate_ref(i: int, j: int, ref: str | LossRef, item: BatchItem) -> dict[str, Any]:
    """Evaluate the ``j``-th loss of item ``i`` on the item's already-decoded tensors."""
    name, options = (ref, item.options) if isinstance(ref, str) else (ref.name, ref.options)
    at_loss: tuple[str | int, ...] = ("items", i, "loss") + (
        (j,) if isinstance(item.loss, list) else ()
    )
    try:
        evaluation = item.evaluate(name, options, item.reduction)
    except UnknownLossError as exc:
        at_name = at_loss if isinstance(ref, str) else (*at_loss, "name")
        raise from_loss_error(exc, at_name) from None
    except LossError as exc:
        own_options = isinstance(ref, LossRef) and exc.field.startswith("options")
        raise from_loss_error(exc, at_loss if own_options else ("items", i)) from None
    observation().evaluated(evaluation.loss, item.tensors.y_pred)
    return evaluation_fields(evaluation)
