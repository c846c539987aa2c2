"""``Annotated`` dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from app.losses import LossSpec, resolve
from app.settings import Settings


def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_loss(
    name: Annotated[
        str, Path(description="Loss name or alias (case-insensitive).", examples=["mse"])
    ],
) -> LossSpec:
    """The loss named in the path; an unknown name is a 404 with suggestions."""
    return resolve(name)


SettingsDep = Annotated[Settings, Depends(get_settings)]
LossDep = Annotated[LossSpec, Depends(get_loss)]
