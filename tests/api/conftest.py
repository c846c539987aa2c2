"""The API tests' own fixture: ``body_path``. The in-process clients (``client``,
``make_client``) are in tests/conftest.py."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["whole", "split"])
def body_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with JSON bodies parsed whole, then with every body's tensors cut out and
    decoded straight into arrays (app.api.json_tensors): both must answer alike."""
    from app.api import json_tensors

    threshold = 1 << 62 if request.param == "whole" else 0
    monkeypatch.setattr(json_tensors, "SPLIT_BODY_BYTES", threshold)
    return str(request.param)
