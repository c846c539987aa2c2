"""A client on the ASGI app in-process (Starlette's TestClient runs the app's lifespan)."""

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


@pytest.fixture(params=["whole", "split"])
def body_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with JSON bodies parsed whole, then with every body's tensors cut out and
    decoded straight into arrays (app.api.json_tensors): both must answer alike."""
    from app.api import json_tensors

    threshold = 1 << 62 if request.param == "whole" else 0
    monkeypatch.setattr(json_tensors, "SPLIT_BODY_BYTES", threshold)
    return str(request.param)
