"""Server processes for the benchmarks: lossd as a user starts it, and the naive baseline.

Each server runs in its own process on a free port of 127.0.0.1, its output in a temporary file.
:meth:`Server.peak_rss_mib` and :meth:`Server.cpu_seconds` read ``/proc`` for the server and every
process under it (uvicorn's workers), so figures account for workers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One server process; use as a context manager (started and ready inside, stopped after)."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        port: int,
        ready_path: str = "/healthz",
        cpus: str | None = None,
    ) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.ready_path = ready_path
        # taskset pins the server (and the workers it forks) to ``cpus``, e.g. "0".
        self.argv = ["taskset", "-c", cpus, *argv] if cpus else list(argv)
        self.env = {**os.environ, **env}
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        self.process = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends the workers too
        )
        self.wait_ready()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def output(self) -> str:
        """Everything the server printed so far."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Poll ``ready_path`` until it answers 200."""
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.output()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass  # not listening yet
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout_s} s:\n{self.output()[-3000:]}")

    def stop(self) -> None:
        """SIGTERM to the server's process group, SIGKILL after 10 s."""
        if self.process is None or self.log.closed:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()

    def pids(self) -> list[int]:
        """The server process and all its descendants (uvicorn's supervisor and workers)."""
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*"):
                with contextlib.suppress(OSError):  # the task ended meanwhile
                    todo.extend(int(c) for c in (task / "children").read_text().split())
        return found

    def peak_rss_mib(self) -> dict[int, float]:
        """Each process's peak resident set (``VmHWM`` in ``/proc/<pid>/status``), in MiB.
        Taskset, when used, execs the server in place, so the pid is the server's own."""
        return self._status_mib("VmHWM")

    def rss_mib(self) -> dict[int, float]:
        """Each process's resident set now (``VmRSS``), in MiB."""
        return self._status_mib("VmRSS")

    def reset_peak_rss(self) -> bool:
        """Set each process's ``VmHWM`` back to its ``VmRSS`` (``5`` to ``/proc/<pid>/clear_refs``,
        Linux 4.0+, needs the right to ptrace it); False when a process refused."""
        done = True
        for pid in self.pids():
            try:
                Path(f"/proc/{pid}/clear_refs").write_text("5")
            except OSError:
                done = False
        return done

    def _status_mib(self, field: str) -> dict[int, float]:
        values = {}
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith(field + ":"):
                        values[pid] = int(line.split()[1]) / 1024
            except OSError:
                pass
        return values

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far by the server and its descendants, in seconds."""
        return sum(process_cpu_seconds(pid) for pid in self.pids())


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (``/proc/<pid>/stat`` fields 14 and 15), seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def lossd(
    workers: int = 1, env: Mapping[str, str] | None = None, cpus: str | None = None
) -> Server:
    """``lossd serve`` with default settings except the port (and ``workers``, ``env``)."""
    port = free_port()
    settings = {"LOSSD_HOST": "127.0.0.1", "LOSSD_PORT": str(port), "LOSSD_WORKERS": str(workers)}
    argv = [sys.executable, "-m", "app.cli", "serve"]
    name = f"lossd serve ({workers} worker{'s' if workers > 1 else ''})"
    return Server(name, argv, {**settings, **(env or {})}, port, cpus=cpus)


def naive(cpus: str | None = None) -> Server:
    """Baseline N: ``uvicorn bench.baselines.naive_app:app`` with uvicorn's defaults."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "bench.baselines.naive_app:app", "--port", str(port)]
    return Server("naive FastAPI app", argv, {}, port, cpus=cpus)


def lean(cpus: str | None = None) -> Server:
    """Baseline for small requests: ``bench.baselines.lean_app`` under uvicorn with the options
    ``lossd serve`` gives it (no access log, uvicorn's default loop and HTTP parser)."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.baselines.lean_app:app",
        "--port",
        str(port),
        "--no-access-log",
    ]
    return Server("lean FastAPI app", argv, {}, port, cpus=cpus)


def body_sink(cpus: str | None = None) -> Server:
    """The HTTP floor: ``uvicorn bench.baselines.body_sink:app``, reading bodies and no more, under
    uvicorn with the options ``lossd serve`` gives it."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "bench.baselines.body_sink:app", "--port", str(port)]
    argv.append("--no-access-log")  # as lossd serve runs uvicorn
    return Server("bare ASGI body sink", argv, {}, port, ready_path="/", cpus=cpus)
