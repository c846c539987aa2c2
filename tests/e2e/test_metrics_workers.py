"""/metrics and the request log with two uvicorn workers: the counts add up across processes.

Each request goes on a new connection, so the kernel hands them to either worker; whichever worker
answers a scrape must report every worker's counts (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import ServerProcess, lossd_serve_argv, uvicorn_argv
from tests.helpers import SEED_PRED, SEED_TRUE

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EVALUATIONS = 12  # POST /v1/losses/mse on the 2x3 seed tensors: 6 elements each
PROBES = 8  # GET /healthz
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
LOGGING = {"LOSSD_LOG_FORMAT": "json", "LOSSD_LOG_LEVEL": "info"}  # whatever the shell says


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(url + "/metrics", timeout=10).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def counts(url: str) -> dict[str, float]:
    """The series this test's traffic touches, from one scrape."""
    samples = scrape(url)

    def requests(route: str, method: str, loss: str = "") -> float:
        labels = {"route": route, "method": method, "status": "200", "loss": loss}
        return samples.get(("lossd_http_requests_total", frozenset(labels.items())), 0.0)

    return {
        "evaluations": requests("/v1/losses/{name}", "POST", "mean_squared_error"),
        "probes": requests("/healthz", "GET"),
        "elements": samples.get(
            ("lossd_elements_evaluated_total", frozenset({("loss", "mean_squared_error")})), 0.0
        ),
        "latency_count": samples.get(
            ("lossd_http_request_duration_seconds_count", frozenset({("route", "/healthz")})), 0
        ),
        "in_flight": samples[("lossd_http_requests_in_flight", frozenset())],
    }


EXPECTED = {
    "evaluations": EVALUATIONS,
    "probes": PROBES,
    "elements": 6 * EVALUATIONS,
    "latency_count": PROBES,
    "in_flight": 1,  # the scrape itself, in whichever worker answers it
}


def send_traffic(url: str) -> list[str]:
    """The known requests, each on its own connection; returns their request ids."""
    ids = []
    for i in range(EVALUATIONS):
        rid = f"e2e-eval-{i}"
        seed = {"y_true": SEED_TRUE, "y_pred": SEED_PRED}
        r = httpx.post(url + "/v1/losses/mse", json=seed, headers={"X-Request-ID": rid})
        assert r.status_code == 200 and r.headers["x-request-id"] == rid
        ids.append(rid)
    for i in range(PROBES):
        rid = f"e2e-probe-{i}"
        r = httpx.get(url + "/healthz", headers={"X-Request-ID": rid})
        assert r.status_code == 200 and r.headers["x-request-id"] == rid
        ids.append(rid)
    return ids


def check_counts_add_up(url: str) -> None:
    """Scrape until the counts are complete (a worker records a request just after answering
    it), then check that further scrapes, answered by either worker, agree exactly."""
    deadline = time.monotonic() + 15
    seen = counts(url)
    while seen != EXPECTED and time.monotonic() < deadline:
        time.sleep(0.2)
        seen = counts(url)
    assert seen == EXPECTED
    for _ in range(6):
        assert counts(url) == EXPECTED


def request_lines(server: ServerProcess, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The request log lines of ``ids`` (waiting briefly for the last ones), by request id."""
    deadline = time.monotonic() + 10
    while True:
        lines = [json.loads(line) for line in server.output().splitlines() if line[:1] == "{"]
        found = {
            line["request_id"]: line
            for line in lines
            if line.get("logger") == "lossd.access" and line["request_id"] in ids
        }
        if len(found) == len(ids) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert sorted(found) == sorted(ids)
    assert sum(line.get("request_id") in ids for line in lines) == len(ids)  # once each
    return found


def children(server: ServerProcess) -> list[int]:
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    return [int(pid) for pid in children.read_text().split()]


def environment_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_lossd_serve_two_workers(
    start_process: Callable[..., ServerProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`lossd serve --workers 2` with no PROMETHEUS_MULTIPROC_DIR makes a temporary one."""
    monkeypatch.delenv(MULTIPROCESS_ENV, raising=False)
    server = start_process(
        env=LOGGING, argv=lambda port: [*lossd_serve_argv(port), "--workers", "2"]
    )
    ids = send_traffic(server.url)
    check_counts_add_up(server.url)
    lines = request_lines(server, ids)
    assert lines["e2e-eval-0"]["loss"] == "mean_squared_error"
    assert lines["e2e-eval-0"]["elements"] == 6
    # every line the server wrote is JSON: uvicorn's own too, and no uvicorn access lines
    output = server.output().splitlines()
    assert output and all(line.startswith("{") for line in output), output[:5]
    assert not any(json.loads(line)["logger"] == "uvicorn.access" for line in output)

    # the workers (and multiprocessing's resource tracker) inherited one directory
    [exported] = {environment_of(pid).get(MULTIPROCESS_ENV) for pid in children(server)}
    assert exported is not None
    directory = Path(exported)
    assert directory.name.startswith("lossd-metrics-") and any(directory.glob("counter_*.db"))
    server.stop()
    assert not directory.exists()  # removed when lossd serve exits


def test_plain_uvicorn_two_workers(
    start_process: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    """Plain `uvicorn --workers 2` merges the workers' counts once the variable is set."""

    def argv(port: int) -> list[str]:
        # info, uvicorn's default, at which its access log would print '"GET ..." 200' lines
        return [*uvicorn_argv(port), "--log-level", "info", "--workers", "2"]

    server = start_process(env={**LOGGING, MULTIPROCESS_ENV: str(tmp_path)}, argv=argv)
    ids = send_traffic(server.url)
    check_counts_add_up(server.url)
    request_lines(server, ids)
    assert "Application startup complete" in server.output()  # uvicorn logs at info...
    assert not re.search(r'"GET /healthz HTTP/1\.1" 200', server.output())  # ...but no access
    writers = {p.name.rsplit("_", 1)[1] for p in tmp_path.glob("counter_*.db")}
    assert len(writers) == 2, writers  # both workers answered some of the requests
