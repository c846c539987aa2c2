"""What the tests share: the seed example, problem checks, NDJSON bodies, outside programs.

Importable (``from tests.helpers import SEED, assert_problem``); ``tests/conftest.py`` holds the
shared fixtures.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from typing import Any, Protocol

import pytest

# The seed document's worked example (seed 002), as a JSON client sends it; Keras prints
# [0.6666667 0.33333334] for its MSE.
SEED_TRUE = [[0, 1, 1], [0, 0, 1]]
SEED_PRED = [[1, 1, 0], [1, 0, 1]]
SEED = {"y_true": SEED_TRUE, "y_pred": SEED_PRED}  # a POST /v1/losses/{name} body
SEED_MSE = [0.6666667, 0.33333334]
# Its per-sample values for the first eight losses, copied from the seed document, where Keras
# printed them; they are not lossd's output.
SEED_VALUES = {
    "mean_squared_error": [0.6666667, 0.33333334],
    "mean_absolute_error": [0.6666667, 0.33333334],
    "mean_absolute_percentage_error": [3.3333338e08, 3.3333331e08],
    "mean_squared_logarithmic_error": [0.32030192, 0.16015096],
    "squared_hinge": [0.6666667, 0.6666667],
    "hinge": [0.6666667, 0.6666667],
    "categorical_hinge": [1.0, 1.0],
    "logcosh": [0.2891872, 0.1445936],
}

PROBLEM = "application/problem+json"
NDJSON = "application/x-ndjson"


class Response(Protocol):
    """What :func:`assert_problem` reads: an httpx response (TestClient's too) or the like."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def text(self) -> str: ...
    def json(self) -> Any: ...


def assert_problem(response: Response, status: int, pointer: str | None = None) -> dict[str, Any]:
    """``response`` is an RFC 9457 problem with ``status`` (and an error at ``pointer``)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM, response.headers
    body: dict[str, Any] = response.json()
    assert_problem_body(body, status, pointer)
    return body


def assert_problem_body(body: dict[str, Any], status: int, pointer: str | None = None) -> None:
    """``body`` has every RFC 9457 member lossd promises, with ``status``."""
    assert {"type", "title", "status", "detail", "errors"} <= set(body), body
    assert body["status"] == status, body
    assert isinstance(body["type"], str) and body["type"], body
    assert isinstance(body["title"], str) and body["title"], body
    assert isinstance(body["detail"], str) and body["detail"], body
    assert isinstance(body["errors"], list), body
    for error in body["errors"]:
        assert set(error) == {"pointer", "detail"}, error
    if pointer is not None:
        assert pointer in [e["pointer"] for e in body["errors"]], body


def ndjson(*lines: dict[str, Any]) -> bytes:
    """NDJSON: one JSON object per line."""
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def require_executable(name: str, install_hint: str) -> str:
    """The absolute path of outside program ``name`` (node, chromium, nginx, wrk, java, ...) on
    PATH; skip when it is missing.

    A developer without it gets a skip that says how to install it; CI (``CI`` set, as
    ``.ci/run`` runs) gets a failure instead, because ``.ci/system-deps.sh`` installs them all
    and a silently skipped check is a check that never runs.
    """
    path = shutil.which(name)
    if path is not None:
        return path
    message = f"{name} is not on PATH ({install_hint})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; .ci/system-deps.sh should have installed it", pytrace=False)
    pytest.skip(message)
