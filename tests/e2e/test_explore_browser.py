"""/explore in a real browser: Debian's chromium, driven by playwright-core
(``browser/explore.mjs``, the same package.json as docs.mjs), with every request outside the
server refused (so it works offline): the curve is drawn, every loss of the catalogue is offered,
an evaluation shows the numbers worked out by hand, a refused pair shows the problem's detail,
and changing an option redraws the curve. The screenshot is kept as a test artifact:
build/artifacts/explore.png (docs/images/explore.png is a copy of a good one)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.helpers import require_executable
from tests.sdk import build

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]
BROWSER = Path(__file__).parent / "browser"
ARTIFACTS = build.ROOT / "build" / "artifacts"
SCREENSHOT = ARTIFACTS / "explore.png"
RUN_TIMEOUT_S = 180
#: Chromium logs a fetch answered 4xx as a console error: the one refused pair the script sends.
REFUSED_PAIR = "the server responded with a status of 422"


def test_explore_page_in_chromium(live_server: str, tmp_path: Path) -> None:
    require_executable("chromium", "apt-get install chromium")
    require_executable("node", "apt-get install nodejs")
    require_executable("npm", "apt-get install npm")
    packages = build.npm_ci(BROWSER, build.ROOT / "build" / "e2e" / "browser-node")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    argv = [
        "node",
        BROWSER / "explore.mjs",
        live_server,
        SCREENSHOT,
        tmp_path / "profile",
        packages,
    ]
    proc = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    seen = json.loads(proc.stdout)

    assert seen["http_status"] == 200
    assert seen["title"] == "lossd explorer"
    assert seen["offsite"] == [], "the page fetched something outside the server"
    unexpected = [e for e in seen["console_errors"] if REFUSED_PAIR not in e]
    assert unexpected == []
    assert len(seen["console_errors"]) <= 1, seen["console_errors"]
    assert seen["refused"] == ["POST /v1/losses/mean_squared_error 422"]

    # Every loss of the catalogue is offered, in its order.
    catalogue = httpx.get(f"{live_server}/v1/losses").json()["losses"]
    assert seen["offered"] == [loss["name"] for loss in catalogue]

    # The first curve (MSE, the first loss) is drawn; MSE takes no options.
    assert seen["first"]["drawn"] == "/v1/losses/mean_squared_error/curve.svg"
    assert seen["first"]["natural_width"] == 640
    assert seen["first"]["natural_height"] == 420
    assert seen["option_fields_mse"].strip() == "none"

    # The prefilled example: MSE of [[0, 1], [1, 1]] against [[1, 1], [0.5, 1]] is
    # (1 + 0) / 2 = 0.5 and (0.25 + 0) / 2 = 0.125, mean 0.3125.
    example = seen["example"]
    assert json.loads(example["y_true"]) == [[0, 1], [1, 1]]
    assert json.loads(example["y_pred"]) == [[1, 1], [0.5, 1]]
    assert json.loads(example["per_sample"]) == [0.5, 0.125]
    assert float(example["mean"]) == 0.3125
    assert example["loss"] == "mean_squared_error"

    # Typed by hand: MSE of [[0, 1]] against [[1, 1]] is (1 + 0) / 2.
    assert json.loads(seen["typed"]["per_sample"]) == [0.5]
    assert float(seen["typed"]["mean"]) == 0.5

    # A shape mismatch: the problem's detail, and no stale numbers.
    assert "y_pred has shape [1, 3] but y_true has shape [1, 2]" in seen["eval_error"]
    assert seen["result_hidden_on_error"] is True

    # Options: a number field with its default, then a checkbox; each change redraws.
    assert float(seen["delta_default"]) == 1.0
    assert seen["huber"]["natural_width"] > 0
    assert json.loads(_options_of(seen["huber_delta"]["drawn"])) == {"delta": 0.25}
    assert seen["huber_delta"]["natural_width"] > 0
    assert json.loads(_options_of(seen["logits"]["drawn"])) == {"from_logits": True}

    # The last loss: a vector loss with its own example (rows of 3 classes): -log 0.8, -log 0.6.
    categorical = seen["categorical"]
    assert categorical["loss"] == "categorical_crossentropy"
    assert json.loads(categorical["per_sample"]) == pytest.approx([0.2231436, 0.5108256], 1e-5)

    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _options_of(url: str) -> str:
    query = httpx.URL(url).params
    return str(query["options"])
