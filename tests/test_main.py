"""The application factory (``app/main.py``)."""

from __future__ import annotations

import inspect

import pytest
from fastapi import FastAPI

from app.main import create_app
from app.settings import Settings

NATIVE_TELEMETRY = "telemetry" in inspect.signature(FastAPI).parameters


@pytest.mark.skipif(not NATIVE_TELEMETRY, reason="this FastAPI has no native OpenTelemetry")
@pytest.mark.parametrize("enabled", [False, True])
def test_fastapis_native_opentelemetry_follows_the_setting(enabled: bool) -> None:
    # Off by default: FastAPI would otherwise look up OpenTelemetry's providers on every request.
    app = create_app(Settings(opentelemetry=enabled))
    config = app._telemetry  # FastAPI keeps its telemetry config there; no public accessor
    assert [config["tracing"], config["metrics"], config["logs"]] == [enabled] * 3


def test_native_opentelemetry_is_off_by_default() -> None:
    assert Settings().opentelemetry is False
