"""deploy/nginx/lossd.conf in front of three lossd replicas, with Debian's nginx.

The same template docker-compose.yml mounts is rendered here with the replicas' loopback
addresses (what the nginx image's envsubst does with ``LOSSD_UPSTREAM=lossd:8000`` under Compose).
nginx runs in the foreground with its own prefix, pid and temp paths under ``tmp_path``. Which
replica served a request comes from the ``upstream`` field of the config's own JSON access log,
so the app needs no test-only code.

Expected values: seed 002's example (printed by Keras; see tests/helpers.py) repeated
``k`` times gives its per-sample values repeated ``k`` times.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.e2e.conftest import ROOT, ServerProcess, free_port
from tests.helpers import SEED_PRED, SEED_TRUE, SEED_VALUES, require_executable

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TEMPLATE = ROOT / "deploy" / "nginx" / "lossd.conf"
DEADLINE_S = 90.0  # a guard against hanging, not a timing assertion
RETRYABLE = {502, 503}
MAX_BODY = 1024 * 1024  # LOSSD_MAX_BODY_BYTES of the replicas, and so of nginx


def render_template(template: str, upstreams: list[str], listen: str, max_body: int) -> str:
    """Substitute the template's variables; the upstream line is repeated once per replica."""
    lines = []
    for line in template.splitlines():
        if "${LOSSD_UPSTREAM}" in line and line.lstrip().startswith("server "):
            lines += [line.replace("${LOSSD_UPSTREAM}", u) for u in upstreams]
        else:
            lines.append(line)
    text = "\n".join(lines) + "\n"
    text = text.replace("${LOSSD_UPSTREAM}", ", ".join(upstreams))  # in comments
    text = text.replace("${NGINX_LISTEN}", listen)
    text = text.replace("${LOSSD_MAX_BODY_BYTES}", str(max_body))
    assert "${" not in text, "a template variable was left unsubstituted"
    return text


def main_conf(prefix: Path, snippet: Path) -> str:
    """A top-level nginx.conf that keeps every path under ``prefix`` and includes the snippet."""
    # As root, nginx's workers would run as nobody, who cannot enter pytest's 0700 tmp dirs.
    user = "user root;" if os.geteuid() == 0 else ""
    return f"""
daemon off;
master_process on;
worker_processes 1;
{user}
pid {prefix}/nginx.pid;
error_log {prefix}/error.log notice;
events {{ worker_connections 512; }}
http {{
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {snippet};
}}
"""


def nginx_binary() -> str:
    """Debian installs nginx in /usr/sbin, which is not on every user's PATH."""
    if shutil.which("nginx") is None and Path("/usr/sbin/nginx").exists():
        return "/usr/sbin/nginx"
    return require_executable("nginx", "apt-get install nginx-light, see .ci/system-deps.sh")


@dataclass
class Nginx:
    """A foreground nginx on ``port``; its access log (JSON lines) is its stdout."""

    binary: str
    prefix: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.prefix / "access.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self, *extra: str) -> list[str]:
        conf = self.prefix / "nginx.conf"
        return [self.binary, "-p", f"{self.prefix}/", "-c", str(conf), "-e", "stderr", *extra]

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"nginx exited:\n{self.log_path.read_text()}"
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError(f"nginx did not answer:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: finish requests, then exit
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def entries(self) -> list[dict[str, Any]]:
        """The access log so far, one dict per request."""
        lines = self.log_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def entries_through(self, last: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """The access log once it has the entry ``last`` picks. nginx writes an entry when the
        request is finished, which may be just after the client got its answer."""
        deadline = time.monotonic() + DEADLINE_S
        while True:
            entries = self.entries()
            if any(last(e) for e in entries):
                return entries
            assert time.monotonic() < deadline, "the awaited access-log entry never came"
            time.sleep(0.01)


@pytest.fixture
def replicas(start_process: Callable[..., ServerProcess]) -> Iterator[list[ServerProcess]]:
    """Three uvicorn processes (stopped after the test, not at the session's end)."""
    servers = [start_process(env={"LOSSD_MAX_BODY_BYTES": str(MAX_BODY)}) for _ in range(3)]
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def nginx(tmp_path: Path, replicas: list[ServerProcess]) -> Iterator[Nginx]:
    """nginx with the rendered deploy config in front of ``replicas``, started."""
    proxy = Nginx(nginx_binary(), tmp_path, free_port())
    snippet = tmp_path / "lossd.conf"
    snippet.write_text(
        render_template(
            TEMPLATE.read_text(),
            [f"127.0.0.1:{r.port}" for r in replicas],
            f"127.0.0.1:{proxy.port}",
            MAX_BODY,
        )
    )
    (tmp_path / "nginx.conf").write_text(main_conf(tmp_path, snippet))
    check = subprocess.run(proxy.argv("-t"), capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


def seed_request(name: str, k: int) -> tuple[dict[str, Any], list[float]]:
    """Seed 002's tensors repeated k times, and the per-sample values Keras printed, k times."""
    body = {"y_true": SEED_TRUE * k, "y_pred": SEED_PRED * k}
    return body, SEED_VALUES[name] * k


def is_correct(response: httpx.Response, name: str, expected: list[float]) -> bool:
    """A 200 whose loss and per-sample values are the expected ones."""
    try:
        data = response.json()
    except ValueError:
        return False
    return bool(
        response.status_code == 200
        and data["per_sample"] is not None
        and len(data["per_sample"]) == len(expected)
        and np.allclose(data["per_sample"], expected, rtol=1e-6)
        and data["count"] == len(expected)
    )


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def final_upstream(entry: dict[str, Any]) -> int:
    """The replica that gave the answer: the last address nginx tried."""
    return port_of(entry["upstream"].split(",")[-1].strip())


def test_config_renders_for_compose() -> None:
    # Compose gives one name for every replica; the official image substitutes these variables.
    text = render_template(TEMPLATE.read_text(), ["lossd:8000"], "8080", 67108864)
    assert "server lossd:8000 max_fails=" in text
    assert "client_max_body_size 67108864;" in text
    assert "proxy_next_upstream error timeout http_502 http_503 non_idempotent;" in text
    assert "proxy_next_upstream_tries 3;" in text


def test_traffic_is_spread_and_request_ids_pass(
    nginx: Nginx, replicas: list[ServerProcess]
) -> None:
    with httpx.Client(base_url=nginx.url, timeout=30) as client:
        for i in range(12):
            body, expected = seed_request("mean_squared_error", 1 + i)
            response = client.post("/v1/losses/mse", json=body, headers={"X-Request-ID": f"s{i}"})
            assert is_correct(response, "mean_squared_error", expected), response.text
            assert response.headers["x-request-id"] == f"s{i}"  # reached lossd, echoed back
        generated = client.get("/healthz?no-id")
        assert generated.status_code == 200
    entries = nginx.entries_through(lambda e: e["uri"] == "/healthz?no-id")
    posts = [e for e in entries if e["method"] == "POST"]
    served = Counter(final_upstream(e) for e in posts)
    # round robin over three healthy replicas: every one serves some of the 12
    assert set(served) == {r.port for r in replicas}, served
    assert [e["request_id"] for e in posts] == [f"s{i}" for i in range(12)]
    # no X-Request-ID from the client: nginx makes one (32 hex digits) and passes it on
    (health,) = [e for e in entries if e["uri"] == "/healthz?no-id"]
    assert len(health["request_id"]) == 32
    int(health["request_id"], 16)
    assert generated.headers["x-request-id"] == health["request_id"]  # the one lossd got


def test_body_limit_and_unknown_loss_through_nginx(nginx: Nginx) -> None:
    with httpx.Client(base_url=nginx.url, timeout=30) as client:
        # over the limit: refused by nginx before any replica reads it, as lossd would refuse it
        response = client.post(
            "/v1/losses/mse",
            content=b" " * (MAX_BODY + 1),
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 413
        # at the limit: nginx passes it on and the replica judges the JSON (all spaces: 400)
        response = client.post(
            "/v1/losses/mse",
            content=b" " * MAX_BODY,
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 400, response.text
        # a client error from a replica is passed through, not retried elsewhere
        response = client.post("/v1/losses/msee", json={"y_true": [[0]], "y_pred": [[1]]})
        assert response.status_code == 404
        assert "mse" in response.json()["suggestions"]
    entries = nginx.entries_through(lambda e: e["uri"] == "/v1/losses/msee")
    assert [e["upstream"] for e in entries if e["status"] == 413] == [""]  # no replica asked
    tried = [e["upstream"] for e in entries if e["uri"] == "/v1/losses/msee"]
    assert len(tried) == 1
    assert "," not in tried[0]


@dataclass
class Outcomes:
    """What a client loop saw, shared between its threads."""

    ok: int = 0
    retryable: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def done(self) -> int:
        with self.lock:
            return self.ok + len(self.retryable) + len(self.wrong)


def client_loop(url: str, worker: int, stop: threading.Event, seen: Outcomes) -> None:
    """Post seed requests (a different loss and size each time) until ``stop``; classify each."""
    names = list(SEED_VALUES)
    with httpx.Client(base_url=url, timeout=30) as client:
        i = 0
        while not stop.is_set():
            name = names[(worker + i) % len(names)]
            body, expected = seed_request(name, 200 + 37 * ((worker * 7 + i) % 11))
            i += 1
            try:
                response = client.post(f"/v1/losses/{name}", json=body)
            except httpx.TransportError as exc:
                with seen.lock:
                    seen.retryable.append(f"transport: {exc!r}")
                continue
            with seen.lock:
                if response.status_code in RETRYABLE:
                    seen.retryable.append(f"{response.status_code}: {response.text[:200]}")
                elif is_correct(response, name, expected):
                    seen.ok += 1
                else:
                    seen.wrong.append(f"{name}: {response.status_code} {response.text[:200]}")


def wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


def test_killed_replica_costs_at_most_retryable_errors(
    nginx: Nginx, replicas: list[ServerProcess]
) -> None:
    seen = Outcomes()
    stop = threading.Event()
    threads = [
        threading.Thread(target=client_loop, args=(nginx.url, w, stop, seen)) for w in range(4)
    ]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: seen.done >= 40, "40 requests before the kill")
        victim = replicas[0]
        victim.process.kill()  # SIGKILL, while requests are in flight
        victim.process.wait()
        before = seen.done
        wait_for(lambda: seen.done >= before + 80, "80 requests after the kill")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=DEADLINE_S)
    assert seen.wrong == []
    assert seen.ok >= 100
    # Every failure is one a client may retry; nginx's own retries should hide most of them.
    assert len(seen.retryable) <= seen.done // 10, seen.retryable
    # nginx did try the dead replica after the kill, and resent those requests to another one.
    dead = f"127.0.0.1:{victim.port}"
    retried = [e for e in nginx.entries() if e["upstream"].startswith(dead + ", ")]
    assert retried, "no request was retried away from the killed replica"

    # After the kill, sequential requests (each tagged) are all answered by the survivors:
    # nginx retries a refused connection on the next replica, then marks the dead one down.
    survivors = {r.port for r in replicas[1:]}
    with httpx.Client(base_url=nginx.url, timeout=30) as client:
        for i in range(12):
            body, expected = seed_request("logcosh", 1 + i)
            response = client.post(
                "/v1/losses/logcosh", json=body, headers={"X-Request-ID": f"after-{i}"}
            )
            assert is_correct(response, "logcosh", expected), response.text
    entries = nginx.entries_through(lambda e: e["request_id"] == "after-11")
    after = [e for e in entries if e["request_id"].startswith("after-")]
    assert len(after) == 12
    assert {final_upstream(e) for e in after} == survivors
    assert all(e["status"] == 200 for e in after)
