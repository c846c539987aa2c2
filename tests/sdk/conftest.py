"""Live servers for the SDK tests: the fixtures of tests/e2e/conftest.py, and ``sdk_server``."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import pytest

from tests.e2e.conftest import live_server, start_process, start_server  # noqa: F401
from tests.sdk.build import has_bearer_auth

API_KEY = "sdk-test-key"


class SdkServer(NamedTuple):
    """A lossd to run a scenario against, and the token to use (None: no API keys)."""

    url: str
    token: str | None


@pytest.fixture(scope="session")
def sdk_server(start_server: Callable[..., str]) -> SdkServer:  # noqa: F811
    """A server with ``LOSSD_API_KEYS`` set once the contract declares ``bearerAuth`` (so the
    SDKs take a token), else one with default settings."""
    if has_bearer_auth():
        return SdkServer(start_server(env={"LOSSD_API_KEYS": API_KEY}), API_KEY)
    return SdkServer(start_server(), None)
