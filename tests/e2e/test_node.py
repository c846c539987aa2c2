"""The v1 API from Node.js: ``node/client.mjs`` uses Node's global ``fetch`` (no packages),
asserts inside the script and prints a JSON summary, checked here."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

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
