"""The v1 API from Node.js: ``node/client.mjs`` uses Node's global ``fetch`` (no packages),
asserts inside the script and prints a JSON summary, checked here."""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_readme import doc_example
from tests.helpers import SEED_MSE

NODE = shutil.which("node")
CLIENT = Path(__file__).parent / "node" / "client.mjs"
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        NODE is None, reason="node (Node.js >= 18, for global fetch) is not on PATH"
    ),
]


def run_client(base_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NODE or "node", str(CLIENT), base_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_node_fetch_client(live_server: str) -> None:
    proc = run_client(live_server)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    summary = json.loads(proc.stdout)
    assert summary["catalogue"] == {"count": 34, "mse": "mean_squared_error"}
    assert summary["seed"]["loss"] == "mean_squared_error"
    assert summary["seed"]["per_sample"] == SEED_MSE
    assert summary["seed"]["mean"] == pytest.approx(0.5)
    assert summary["batch"] == [["seed", 200], ["bad", 404]]
    assert summary["error"] == {"status": 422, "type": "urn:lossd:problem:invalid-input"}


def test_node_client_fails_loudly() -> None:
    # Nothing listens on a port the OS just handed out and took back: the script must exit
    # non-zero with a message, so a broken server cannot pass test_node_fetch_client silently.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = run_client(f"http://127.0.0.1:{port}")
    assert proc.returncode != 0
    assert "lossd node client failed" in proc.stderr


def test_the_docs_gradient_step_by_hand(live_server: str, tmp_path: Path) -> None:
    # docs/derivatives.md's Node example: logistic regression y_pred = X w from w = 0, so every
    # logit is 0, sigmoid 1/2, the loss ln 2 and d loss / d logit = (1/2 - t) / 3 (the mean over
    # 3 rows); X^T of it with X = [[1, 0], [1, 1], [1, 2]], t = [0, 1, 1]: [-1/6, -1/2]; one
    # step of rate 1: w = [1/6, 1/2].
    script = tmp_path / "gradient_step.mjs"
    script.write_text(doc_example("derivatives.md", "js", "// gradient_step.mjs"))
    proc = subprocess.run(
        [NODE or "node", str(script)],
        env={**os.environ, "LOSSD_URL": live_server},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    step = json.loads(proc.stdout)
    assert step["loss"] == pytest.approx(math.log(2), rel=1e-12)
    assert step["gradient"] == pytest.approx([1 / 6, -1 / 6, -1 / 6], rel=1e-12)
    assert step["grad_w"] == pytest.approx([-1 / 6, -1 / 2], rel=1e-12)
    assert step["w"] == pytest.approx([1 / 6, 1 / 2], rel=1e-12)
