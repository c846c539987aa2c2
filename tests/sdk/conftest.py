"""Live servers for the SDK tests: the fixtures of tests/e2e/conftest.py, and ``sdk_server``."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import pytest

from tests.e2e.conftest import live_server, start_process, start_server  # noqa: F401
from tests.sdk.build import has_bearer_auth

API_KEY = "sdk-test-key"


class SdkServer(NamedTuple):
    """A lossd to run a scenario against, and the API key its clients must send."""

    url: str
    token: str


@pytest.fixture(scope="session")
def sdk_server(start_server: Callable[..., str]) -> SdkServer:  # noqa: F811
    """A server with ``LOSSD_API_KEYS`` set: the scenarios authenticate through the SDKs'
    own token settings (the contract's ``bearerAuth`` scheme) and check one call without."""
    assert has_bearer_auth(), "openapi/openapi.json declares no bearerAuth security scheme"
    return SdkServer(start_server(env={"LOSSD_API_KEYS": f"another-key,{API_KEY}"}), API_KEY)
