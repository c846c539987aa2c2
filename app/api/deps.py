"""``Annotated`` dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

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
