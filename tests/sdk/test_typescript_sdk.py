"""The TypeScript SDK, live: openapi-generator's ``typescript-fetch`` client of the committed
spec, compiled with ``typescript/scenario.ts`` by a pinned tsc (``npm ci``) and run by node
against a real uvicorn process (see :mod:`tests.sdk.build` for the cache under build/sdk)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers import require_executable
from tests.sdk import build, expected
from tests.sdk.conftest import SdkServer

# Bounded on a fresh machine (first JVM start, cold npm cache: see build.py's time limits).
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]
SCENARIO_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def client_dir() -> Path:
    """The generated client (openapi-generator runs on Java)."""
    require_executable("java", "apt-get install openjdk-17-jre-headless")
    return build.typescript_client()


@pytest.fixture(scope="module")
def scenario_js(client_dir: Path) -> str:
    require_executable("node", "apt-get install nodejs")
    require_executable("npm", "apt-get install npm")
    return str(build.compiled_scenario())


def run_scenario(scenario_js: str, url: str, token: str | None) -> dict[str, object]:
    argv = ["node", scenario_js, url, *([token] if token else [])]
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=SCENARIO_TIMEOUT_S, check=False
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    summary: dict[str, object] = json.loads(proc.stdout)
    return summary


def test_generated_names_read_well(client_dir: Path) -> None:
    client = client_dir
    apis = {p.stem for p in (client / "apis").glob("*Api.ts")}
    assert apis >= {"LossesApi", "BatchApi", "InferenceApi", "HealthApi"}
    losses_api = (client / "apis" / "LossesApi.ts").read_text()
    for method in ("listLosses(", "getLoss(", "evaluateLoss(", "evaluateStream(", "lossCurve("):
        assert f"async {method}" in losses_api, method
    inference_api = (client / "apis" / "InferenceApi.ts").read_text()
    for method in ("serverMetadata(", "modelMetadata(", "modelReady(", "modelInfer("):
        assert f"async {method}" in inference_api, method
    models = {p.stem for p in (client / "models").glob("*.ts")} - {"index"}
    assert {"EvaluateRequest", "EvaluateResponse", "Problem", "Reduction", "SampleWeight"} <= models
    assert not [m for m in models if "AnyOf" in m or "OneOf" in m or m[-1].isdigit()], models
    # bearerAuth: each of the 5 losses methods sends Configuration.accessToken.
    assert losses_api.count('await token("bearerAuth", [])') == 5


def test_typescript_scenario(scenario_js: str, sdk_server: SdkServer) -> None:
    summary = run_scenario(scenario_js, sdk_server.url, sdk_server.token)
    assert "stream" in summary  # evaluateStream, with NDJSON through the init overrides
    expected.check(summary, authenticated=True)
