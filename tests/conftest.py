"""Fixtures every test directory shares: in-process clients on the ASGI app.

Shared constants and checks (the seed example, ``assert_problem``, ...) are in
:mod:`tests.helpers`, which tests import; the bad-input corpus is in :mod:`tests.corpus`.
Starlette's TestClient runs the app's lifespan, as uvicorn would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings


@pytest.fixture
def make_client() -> Iterator[Callable[..., TestClient]]:
    """Build clients for apps with settings overrides; closed (lifespan ended) at teardown."""
    clients: list[TestClient] = []

    def make(**overrides: object) -> TestClient:
        c = TestClient(create_app(Settings(**overrides)), raise_server_exceptions=False)  # type: ignore[arg-type]
        c.__enter__()
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()
