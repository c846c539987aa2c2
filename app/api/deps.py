"""``Annotated`` dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated, Any

import pydantic_core
from fastapi import Depends, Path, Request

from app.api.problems import ProblemError
from app.losses import LossSpec, resolve
from app.settings import Settings

# Both dependencies are ``async def`` although they never await: FastAPI runs a plain ``def``
# dependency in a worker thread, and two thread hops cost a small request more than its loss.


def settings_of(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_settings(request: Request) -> Settings:
    """Dependency: :func:`settings_of` the current request's app."""
    return settings_of(request)


#: The ``{name}`` path parameter: a loss name or alias.
LossName = Annotated[
    str, Path(description="Loss name or alias (case-insensitive).", examples=["mse"])
]


async def get_loss(name: LossName) -> LossSpec:
    """The loss named in the path; an unknown name is a 404 with suggestions."""
    return resolve(name)


SettingsDep = Annotated[Settings, Depends(get_settings)]
LossDep = Annotated[LossSpec, Depends(get_loss)]


def parse_query_options(raw: str | None) -> dict[str, Any]:
    """A loss's options given as one JSON object in a query parameter (``?options={...}``, for
    the stream and the curve routes, whose bodies or lack of one cannot hold them); 422 when it
    is not a JSON object."""
    if raw is None:
        return {}
    try:
        # pydantic-core refuses nesting past ~200 levels with a ValueError; json.loads would
        # raise RecursionError (a 500) on a deeply nested query string.
        value = pydantic_core.from_json(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ProblemError(
            422,
            "options must be a JSON object",
            slug="invalid-option",
            errors=[("/query/options", "expected a JSON object")],
        )
    return value
