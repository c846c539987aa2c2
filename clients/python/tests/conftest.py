"""Live lossd servers for the client's tests.

The client's venv does not have the server (that is the point: the client installs alone), so
the server runs in another interpreter:

- ``LOSSD_SERVER_PYTHON``: a Python that can ``import app`` (the project's ``.venv``); servers
  are started with ``python -m app.cli serve`` from the repository root (``LOSSD_SERVER_ROOT``,
  default: two levels above ``clients/python``), on free ports, with the settings each test
  needs. ``make test`` sets it.
- or ``LOSSD_URL``: one server started elsewhere; tests that need particular settings (API
  keys, a small body limit, two workers) skip.

With neither, every live test fails with a message saying so.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import httpx
import pytest

from lossd_client import Transport

ROOT = Path(os.environ.get("LOSSD_SERVER_ROOT", Path(__file__).resolve().parents[3]))
SEED_TRUE = [[0, 1, 1], [0, 0, 1]]
SEED_PRED = [[1, 1, 0], [1, 0, 1]]
TRANSPORTS: tuple[Transport, ...] = ("json", "binary")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``lossd serve`` in a child process, on a free port, with ``env`` added."""

    def __init__(self, python: str, env: Mapping[str, str], workers: int) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop)
        argv = [python, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        argv += ["--workers", str(workers), "--log-level", "warning"]
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, "KERAS_BACKEND": "numpy", **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"lossd exited early:\n{self.log.read().decode()}")
            try:
                if httpx.get(self.url + "/v2/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"lossd not ready after {timeout_s} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@pytest.fixture(scope="session")
def start_server() -> Iterator[Callable[..., str]]:
    """``start_server(env={...}, workers=1)`` -> the base URL of a new lossd (stopped at the
    session's end). Skips when only ``LOSSD_URL`` is given."""
    python = os.environ.get("LOSSD_SERVER_PYTHON")
    if python and os.sep in python:
        python = os.path.abspath(python)  # relative to where pytest runs, not the server's cwd
    servers: list[Server] = []

    def start(env: Mapping[str, str] | None = None, workers: int = 1) -> str:
        if not python:
            if os.environ.get("LOSSD_URL"):
                pytest.skip("needs LOSSD_SERVER_PYTHON to start a server with other settings")
            pytest.fail("set LOSSD_SERVER_PYTHON (a Python with lossd) or LOSSD_URL")
        server = Server(python, env or {}, workers)
        servers.append(server)
        server.wait_ready()
        return server.url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def url(start_server: Callable[..., str]) -> str:
    """A lossd with default settings: ``LOSSD_URL`` if set, else one started here."""
    external = os.environ.get("LOSSD_URL")
    return external.rstrip("/") if external else start_server()
