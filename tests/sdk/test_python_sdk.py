"""The Python SDK, live: the ``openapi-python-client`` client of the committed spec, imported
from build/sdk/python and driven through the same scenario as the TypeScript one."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sdk import build, expected, python_scenario
from tests.sdk.conftest import SdkServer

# Bounded on a fresh machine (cold caches: see the time limits in tests/sdk/build.py).
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def client_path() -> Iterator[Path]:
    """build/sdk/python on sys.path for this module's tests (and off it afterwards)."""
    path = build.python_client()
    sys.path.insert(0, str(path))
    importlib.invalidate_caches()
    try:
        yield path
    finally:
        sys.path.remove(str(path))
        for name in [m for m in sys.modules if m.partition(".")[0] == build.PYTHON_PACKAGE]:
            del sys.modules[name]


def test_generated_names_read_well(client_path: Path) -> None:
    package = client_path / build.PYTHON_PACKAGE
    # One module per operation, one package per tag: lossd_sdk.api.losses.evaluate_loss
    modules = {f"{p.parent.name}/{p.stem}" for p in (package / "api").glob("*/*.py")}
    assert {
        "losses/list_losses",
        "losses/get_loss",
        "losses/evaluate_loss",
        "batch/evaluate_batch",
        "inference/server_metadata",
        "inference/model_metadata",
        "inference/model_infer",
        "health/healthz",
    } <= modules
    models = importlib.import_module(f"{build.PYTHON_PACKAGE}.models")
    for name in ("EvaluateRequest", "EvaluateResponse", "Problem", "Reduction", "DType"):
        assert hasattr(models, name), name


def test_python_scenario(client_path: Path, sdk_server: SdkServer) -> None:
    summary = python_scenario.run(sdk_server.url, sdk_server.token)
    expected.check(summary, authenticated=True)
