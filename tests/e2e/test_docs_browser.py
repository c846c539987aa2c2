"""/docs in a real browser: Debian's chromium, driven by playwright-core (``browser/docs.mjs``),
loads Swagger UI with every request outside the server refused (so it works offline), lists the
operations, and "Try it out" -> Execute on the evaluate endpoint shows a 200 with the seed
example's numbers; then /redoc renders the operations, offline too. The screenshot is kept as a
test artifact: build/artifacts/docs.png."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers import SEED_MSE, SEED_PRED, SEED_TRUE, require_executable
from tests.sdk import build

# Bounded on a fresh machine (cold caches: see the time limits in tests/sdk/build.py).
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]
BROWSER = Path(__file__).parent / "browser"
ARTIFACTS = build.ROOT / "build" / "artifacts"
SCREENSHOT = ARTIFACTS / "docs.png"
RUN_TIMEOUT_S = 180


def test_docs_page_in_chromium(live_server: str, tmp_path: Path) -> None:
    require_executable("chromium", "apt-get install chromium")
    require_executable("node", "apt-get install nodejs")
    require_executable("npm", "apt-get install npm")
    packages = build.npm_ci(BROWSER, build.ROOT / "build" / "e2e" / "browser-node")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    argv = ["node", BROWSER / "docs.mjs", live_server, SCREENSHOT, tmp_path / "profile", packages]
    proc = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    seen = json.loads(proc.stdout)

    assert seen["http_status"] == 200
    assert seen["offsite"] == [], "the page fetched something outside the server"
    assert seen["console_errors"] == []
    assert seen["title"].startswith("lossd")
    operations = set(seen["operations"])
    for op_id in (
        "operations-losses-listLosses",
        "operations-losses-getLoss",
        "operations-losses-evaluateLoss",
        "operations-losses-evaluateStream",
        "operations-batch-evaluateBatch",
        "operations-inference-modelInfer",
        "operations-health-healthz",
    ):
        assert op_id in operations, (op_id, sorted(operations))

    # The prefilled body is the schema's example: seed 002's worked example.
    example = json.loads(seen["example_body"])
    assert example["y_true"] == SEED_TRUE
    assert example["y_pred"] == SEED_PRED
    assert seen["status"] == "200"
    result = json.loads(seen["body"])
    assert result["loss"] == "mean_squared_error"
    assert result["per_sample"] == pytest.approx(SEED_MSE, rel=1e-6)
    assert result["mean"] == pytest.approx(0.5)

    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # ReDoc, from the same offline page session (offsite above covers it too).
    assert seen["redoc_http_status"] == 200
    assert seen["redoc_title"].startswith("lossd")
    assert any(s.endswith("operation/evaluateLoss") for s in seen["redoc_operations"]), seen[
        "redoc_operations"
    ]
