"""Throughput with wrk (Debian's ``/usr/bin/wrk``): requests per second, and who used the CPU.

POST bodies go through a Lua script written to a temporary file. Besides wrk's requests/s we
record the CPU seconds wrk itself used (``RUSAGE_CHILDREN``) and the server's (``/proc``), because
on a 2-core machine the load generator competes with the server for the same cores.
"""

from __future__ import annotations

import re
import resource
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.servers import Server

WRK = "/usr/bin/wrk"


def find_wrk() -> str | None:
    """wrk's path, or None when it is not installed (``apt-get install wrk``)."""
    return WRK if Path(WRK).exists() else shutil.which("wrk")


@dataclass
class Throughput:
    """One wrk run against one server."""

    requests_per_s: float
    requests: int
    errors: int
    seconds: float
    wrk_cpu_s: float
    server_cpu_s: float

    @property
    def wrk_cores(self) -> float:
        """Cores wrk kept busy on average."""
        return self.wrk_cpu_s / self.seconds

    @property
    def server_cores(self) -> float:
        """Cores the server (all its workers) kept busy on average."""
        return self.server_cpu_s / self.seconds

    @property
    def per_server_cpu_s(self) -> float:
        """Requests per CPU-second of the server: its efficiency, whatever cores it got."""
        return self.requests / self.server_cpu_s if self.server_cpu_s else 0.0


def lua_post(body: bytes, content_type: str = "application/json") -> str:
    """A wrk script sending ``body`` as a POST."""
    text = body.decode()
    assert "]==]" not in text
    return (
        'wrk.method = "POST"\n'
        f'wrk.headers["Content-Type"] = "{content_type}"\n'
        f"wrk.body = [==[{text}]==]\n"
    )


def run(
    server: Server,
    path: str,
    *,
    seconds: float,
    connections: int = 16,
    threads: int = 2,
    body: bytes | None = None,
    cpus: str | None = None,
) -> Throughput:
    """wrk on ``server.url + path`` for ``seconds``; ``cpus`` pins wrk with taskset."""
    wrk = find_wrk()
    if wrk is None:
        raise FileNotFoundError("wrk is not installed (apt-get install wrk)")
    argv = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        if body is not None:
            script.write(lua_post(body))
            script.flush()
            argv += ["-s", script.name]
        argv.append(server.url + path)
        if cpus:
            argv = ["taskset", "-c", cpus, *argv]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        server_before = server.cpu_seconds()
        done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=600)
        server_cpu = server.cpu_seconds() - server_before
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return parse(
        done.stdout, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, server_cpu
    )


def parse(output: str, wrk_cpu_s: float, server_cpu_s: float) -> Throughput:
    """Requests/s, request count, errors and duration from wrk's report."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in ([\d.]+)(m?s)", output)
    if rate is None or total is None:
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if sockets:
        errors += sum(int(g) for g in sockets.groups())
    seconds = float(total.group(2)) / (1000 if total.group(3) == "ms" else 1)
    return Throughput(
        float(rate.group(1)), int(total.group(1)), errors, seconds, wrk_cpu_s, server_cpu_s
    )
