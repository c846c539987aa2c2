"""All configuration in one place: environment variables with the ``LOSSD_`` prefix."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator
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
    opentelemetry: bool = Field(
        False,
        description="FastAPI's native OpenTelemetry (traces, metrics, logs) for providers the "
        "process configures; off: lossd has its own metrics and request log.",
    )
    max_body_bytes: int = Field(
        64 * MiB, ge=1024, description="Largest request body (413 past it)."
    )
    max_elements: int = Field(
        16_000_000, ge=1, description="Largest number of values in one tensor (422 past it)."
    )
    max_batch_items: int = Field(1000, ge=1, description="Most items in one /v1/batch call.")
    # Security (app/api/security.py)
    api_keys: SecretStr = Field(
        SecretStr(""),
        description="Comma-separated API keys; when set, /v1 and /v2 need "
        "Authorization: Bearer <key>. Empty: no key needed.",
    )
    cors_origins: str = Field(
        "", description="Comma-separated origins allowed by CORS, or * for any. Empty: CORS off."
    )

    @field_validator("api_keys")
    @classmethod
    def _keys_when_set(cls, value: SecretStr) -> SecretStr:
        """A key list that is set but holds no key (``" , "``: ``"$KEY1,$KEY2"`` with both
        variables unset) is refused: it would start with authentication silently off. Only the
        empty string (or no variable) means no keys."""
        raw = value.get_secret_value()
        if raw and not _split(raw):
            raise ValueError(
                "LOSSD_API_KEYS is set but holds no key; give at least one key, or leave it "
                "empty (unset) to turn authentication off"
            )
        return value

    # Load shedding and timeouts, per worker process (app/api/gate.py, app/api/accounting.py)
    large_body_bytes: int = Field(
        1 * MiB, ge=1, description="A request body over this is large (needs a large permit)."
    )
    max_concurrent_large: int = Field(
        2, ge=1, description="Large requests a worker takes at once (503 past it)."
    )
    max_inflight_bytes: int = Field(
        64 * MiB,
        ge=1024,
        description="Request body bytes a worker holds at once, bodies over 64 KiB counted "
        "(503 past it).",
    )
    body_timeout_s: float = Field(
        30.0, gt=0, description="Seconds a request body may send nothing (408 past it)."
    )
    graceful_timeout_s: float = Field(
        25.0, ge=0, description="Seconds requests in progress get to finish after SIGTERM."
    )
    # Slow and oversized clients (app/api/gate.py, app/api/header_limits.py)
    body_min_rate: int = Field(
        64 * 1024,
        ge=1,
        description="Bytes per second a request body must average once its grace time is over "
        "(408 below it); a stream's line in progress, likewise.",
    )
    body_grace_s: float = Field(
        10.0, gt=0, description="Seconds a request body may take before its minimum rate applies."
    )
    max_header_bytes: int = Field(
        64 * 1024,
        ge=1024,
        description="Largest request line and headers, lossd serve only (431 past it).",
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Seconds a request line and its headers may take, lossd serve only "
        "(408 past it).",
    )

    # What lossd sends back (app/results.py, app/api/bodies.py)
    max_response_bytes: int | None = Field(
        None,
        ge=1024,
        description="Largest JSON answer in bytes (422 past it). Default: LOSSD_MAX_BODY_BYTES.",
    )

    @field_validator("max_response_bytes", mode="before")
    @classmethod
    def _empty_is_default(cls, value: object) -> object:
        """``LOSSD_MAX_RESPONSE_BYTES=`` (empty, as compose passes an unset variable): the
        default, the body limit."""
        return None if value == "" else value

    @property
    def response_limit(self) -> int:
        """The largest answer: ``LOSSD_MAX_RESPONSE_BYTES``, else the body limit. An answer is
        held in memory whole, like a body, so bounding it like one keeps docs/memory.md's memory
        bound true of answers too; and what a client may send it may receive."""
        return self.max_body_bytes if self.max_response_bytes is None else self.max_response_bytes

    @property
    def api_key_list(self) -> list[str]:
        """The API keys (none: authentication off)."""
        return _split(self.api_keys.get_secret_value())

    @property
    def cors_origin_list(self) -> list[str]:
        """The CORS origins (none: CORS off)."""
        return _split(self.cors_origins)


def _split(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
