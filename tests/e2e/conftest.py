"""A real lossd process for end-to-end tests.

``live_server`` yields the base URL (``http://127.0.0.1:<port>``) of one uvicorn process shared by
the session. ``start_server`` starts more, with environment overrides (``LOSSD_MAX_BODY_BYTES``,
...), for tests that need other settings::

    def test_small_limit(start_server):
        url = start_server(env={"LOSSD_MAX_BODY_BYTES": "4096"})

Set ``LOSSD_E2E_BASE_URL`` to test a server started elsewhere (a container, say) instead:
``live_server`` then yields that URL and starts nothing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
READY_PATH = "/v2/health/ready"
START_TIMEOUT_S = 30.0


def free_port() -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def uvicorn_argv(port: int) -> list[str]:
    """The default command: plain uvicorn on ``port`` of 127.0.0.1, quiet."""
    return [
        sys.executable,  # the test run's interpreter: the project's .venv
        "-m",
        "uvicorn",
        "app.main:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]


def lossd_serve_argv(port: int) -> list[str]:
    """``lossd serve`` (the console script users run), on ``port`` of 127.0.0.1."""
    return [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]


class ServerProcess:
    """One lossd child process on a free port of 127.0.0.1.

    ``argv`` builds the command from the port (default: :func:`uvicorn_argv`); pass
    :func:`lossd_serve_argv` or your own to run ``lossd serve``, several workers, and so on.
    """

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        ready_path: str = READY_PATH,
        argv: Callable[[int], list[str]] = uvicorn_argv,
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ready_path = ready_path
        # A file, not a pipe: a chatty server can never block on a full pipe buffer. It lives
        # as long as the process, so stop() closes it rather than a with-block.
        self.log = tempfile.TemporaryFile()  # noqa: SIM115
        self.process = subprocess.Popen(
            argv(self.port),
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        """Everything the server has printed so far."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Poll ``ready_path`` until it answers 200; fail with the server's output otherwise."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"lossd exited with {self.process.returncode} before it was ready:\n"
                    f"{self.output()}"
                )
            try:
                if httpx.get(self.url + self.ready_path, timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            time.sleep(0.1)
        output = self.output()
        self.stop()
        raise RuntimeError(f"lossd not ready after {timeout_s} s:\n{output}")

    def stop(self) -> None:
        """Terminate (SIGTERM, then SIGKILL after 10 s) and close the log."""
        if self.log.closed:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@pytest.fixture(scope="session")
def start_process() -> Iterator[Callable[..., ServerProcess]]:
    """A factory: ``start_process(env={...}, ready_path=..., argv=...)`` starts a server, waits
    until it is ready and returns its :class:`ServerProcess` (for tests that signal or kill it).
    Every server it started is stopped at the session's end."""
    servers: list[ServerProcess] = []

    def start(
        env: Mapping[str, str] | None = None,
        ready_path: str = READY_PATH,
        argv: Callable[[int], list[str]] = uvicorn_argv,
    ) -> ServerProcess:
        server = ServerProcess(env, ready_path, argv)
        servers.append(server)
        server.wait_ready()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def start_server(start_process: Callable[..., ServerProcess]) -> Callable[..., str]:
    """Like ``start_process`` but returns only the base URL."""

    def start(**kwargs: object) -> str:
        return start_process(**kwargs).url

    return start


@pytest.fixture(scope="session")
def live_server(start_server: Callable[..., str]) -> str:
    """Base URL of a lossd server with default settings (or ``$LOSSD_E2E_BASE_URL``)."""
    external = os.environ.get("LOSSD_E2E_BASE_URL")
    return external.rstrip("/") if external else start_server()
