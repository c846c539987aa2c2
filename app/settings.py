"""All configuration in one place: environment variables with the ``LOSSD_`` prefix."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1024 * 1024


class Settings(BaseSettings):
    """Server settings. Every field is read from ``LOSSD_<NAME>`` (e.g. ``LOSSD_PORT=9000``)."""

    model_config = SettingsConfigDict(env_prefix="LOSSD_", extra="ignore")

    host: str = Field("127.0.0.1", description="Interface to bind; 0.0.0.0 in containers.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port.")
    workers: int = Field(1, ge=1, description="uvicorn worker processes.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Log level of the server."
    )
    log_format: Literal["json", "text"] = Field(
        "json", description="Log lines on stdout: one JSON object per line, or text."
    )
    max_body_bytes: int = Field(
        64 * MiB, ge=1024, description="Largest request body (413 past it)."
    )
    max_elements: int = Field(
        16_000_000, ge=1, description="Largest number of values in one tensor (422 past it)."
    )
    max_batch_items: int = Field(1000, ge=1, description="Most items in one /v1/batch call.")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
