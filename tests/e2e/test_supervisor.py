"""``lossd serve`` with several workers (app/supervisor.py): one SO_REUSEPORT listening socket per
worker, so the kernel spreads connections that arrive together over the workers; a worker that
dies is replaced; SIGTERM stops every worker and the supervisor exits 0."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import ServerProcess, lossd_serve_argv
from tests.helpers import SEED_MSE, SEED_PRED, SEED_TRUE

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(120)]

LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's "st" column


def listening_sockets(port: int) -> int:
    """How many sockets listen on TCP ``port`` (any address), from /proc/net/tcp{,6}."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            if state == LISTEN and int(local.rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


def workers_of(pid: int) -> set[int]:
    """The supervisor's worker processes (multiprocessing's spawned children)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return {
        int(c)
        for c in children
        if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()  # not a resource tracker
    }


def wait_until(check: Callable[[], bool], timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def seed_mse(url: str) -> list[float]:
    response = httpx.post(
        f"{url}/v1/losses/mse", json={"y_true": SEED_TRUE, "y_pred": SEED_PRED}, timeout=10
    )
    assert response.status_code == 200, response.text
    return list(response.json()["per_sample"])


def test_each_worker_listens_is_replaced_and_stops(
    start_process: Callable[..., ServerProcess],
) -> None:
    server = start_process(env={"LOSSD_WORKERS": "3"}, argv=lossd_serve_argv)
    pid = server.process.pid
    assert wait_until(lambda: len(workers_of(pid)) == 3), server.output()
    assert wait_until(lambda: listening_sockets(server.port) == 3), server.output()
    assert seed_mse(server.url) == pytest.approx(SEED_MSE, rel=1e-6)

    # A worker killed outright is replaced, and the new one listens too.
    before = workers_of(pid)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    assert wait_until(lambda: victim not in workers_of(pid) and len(workers_of(pid)) == 3)
    assert wait_until(lambda: listening_sockets(server.port) == 3), server.output()
    for _ in range(6):  # whichever worker a new connection lands on answers correctly
        assert seed_mse(server.url) == pytest.approx(SEED_MSE, rel=1e-6)

    # SIGTERM to the supervisor alone (what docker stop and Kubernetes send) stops them all.
    workers = workers_of(pid)
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=60) == 0, server.output()
    assert not [w for w in workers if Path(f"/proc/{w}").exists()]
    assert listening_sockets(server.port) == 0
