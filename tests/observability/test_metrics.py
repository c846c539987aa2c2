"""GET /metrics after known traffic: exact counts on a fresh app (each app has its own registry).

"Elements" are the values of ``y_pred`` in every completed evaluation: a (2, 3) ``y_pred`` is 6.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import Histogram
from prometheus_client.parser import text_string_to_metric_families

from app.observability.metrics import LATENCY_BUCKETS, _increment, _observer
from app.observability.serve import MULTIPROCESS_ENV, prepare_metrics_dir
from tests.helpers import SEED

EVALUATE = "/v1/losses/{name}"
JSON = {"Content-Type": "application/json"}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient) -> Samples:
    """Every sample of ``/metrics`` by (name, labels)."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def requests(samples: Samples, route: str, method: str, status: int, loss: str = "") -> float:
    labels = {"route": route, "method": method, "status": str(status), "loss": loss}
    return samples.get(("lossd_http_requests_total", frozenset(labels.items())), 0.0)


def elements(samples: Samples, loss: str) -> float:
    return samples.get(("lossd_elements_evaluated_total", frozenset({("loss", loss)})), 0.0)


def test_evaluations_count_requests_and_elements(client: TestClient) -> None:
    for name in ("mse", "MSE", "loss_mean_squared_error"):  # aliases count under one name
        assert client.post(f"/v1/losses/{name}", json=SEED).status_code == 200
    samples = scrape(client)
    assert requests(samples, EVALUATE, "POST", 200, "mean_squared_error") == 3
    assert elements(samples, "mean_squared_error") == 18  # 3 calls x a 2x3 y_pred
    route = frozenset({("route", EVALUATE)})
    assert samples[("lossd_http_request_duration_seconds_count", route)] == 3
    assert samples[("lossd_http_request_duration_seconds_bucket", route | {("le", "+Inf")})] == 3
    assert samples[("lossd_http_request_duration_seconds_sum", route)] > 0
    # the scrape counts itself as in flight, and only itself
    assert samples[("lossd_http_requests_in_flight", frozenset())] == 1


def test_evaluations_in_worker_threads_count_too(client: TestClient) -> None:
    # bodies over 64 KiB are parsed and evaluated in a worker thread (app.api.bodies.offload)
    big = {"y_true": [[0.25] * 100] * 100, "y_pred": [[0.5] * 100] * 100}
    body = json.dumps(big).encode()
    assert len(body) > 64 * 1024
    assert client.post("/v1/losses/mae", content=body, headers=JSON).status_code == 200
    assert elements(scrape(client), "mean_absolute_error") == 10_000


def test_series_are_bounded_by_route_template_not_path(client: TestClient) -> None:
    for name in ("mse", "mae", "huber"):
        client.get(f"/v1/losses/{name}")
    client.get("/v1/losses/no-such-loss")
    client.get("/v2/models/mse/versions/7")
    client.get("/no/such/path")
    client.request("BREW", "/healthz")
    samples = scrape(client)
    assert requests(samples, EVALUATE, "GET", 200) == 3  # no loss label: nothing evaluated
    assert requests(samples, EVALUATE, "GET", 404) == 1
    assert requests(samples, "/v2/models/{name}/versions/{version}", "GET", 404) == 1
    assert requests(samples, "", "GET", 404) == 1  # unmatched: empty route
    assert requests(samples, "/healthz", "other", 405) == 1  # unknown methods are "other"
    routes = {dict(labels).get("route") for _, labels in samples}
    assert not any(r and ("mse" in r or "no/such" in r) for r in routes), routes


def test_answers_before_routing_get_their_route(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_body_bytes=1024)  # refused by a middleware, before routing
    big = {"Content-Type": "application/json", "Content-Length": "2048"}
    assert client.post("/v1/losses/mse", content=b"{" * 2048, headers=big).status_code == 413
    assert requests(scrape(client), EVALUATE, "POST", 413) == 1


def test_errors_keep_the_loss_and_count_no_elements(client: TestClient) -> None:
    bad = {"y_true": [[0, 1]], "y_pred": [[1, 1, 1]]}
    assert client.post("/v1/losses/mae", json=bad).status_code == 422
    assert client.post("/v1/losses/mae", content=b"{", headers=JSON).status_code == 400
    assert client.post("/v1/losses/nope", json=SEED).status_code == 404
    samples = scrape(client)
    assert requests(samples, EVALUATE, "POST", 422, "mean_absolute_error") == 1
    assert requests(samples, EVALUATE, "POST", 400, "mean_absolute_error") == 1
    assert requests(samples, EVALUATE, "POST", 404) == 1  # unknown: no loss label
    assert elements(samples, "mean_absolute_error") == 0


def test_batch_counts_each_items_losses(client: TestClient) -> None:
    items = [
        {"loss": ["mse", "mae"], **SEED},  # 6 values, two losses
        {"loss": "mse", "y_true": [[1.0]], "y_pred": [[0.5]]},  # 1 value
        {"loss": "nope", **SEED},  # fails alone: nothing evaluated
        {"loss": [{"name": "huber", "options": {"delta": 2.0}}], **SEED},
    ]
    response = client.post("/v1/batch", json={"items": items})
    assert [r["status"] for r in response.json()["results"]] == [200, 200, 404, 200]
    samples = scrape(client)
    assert requests(samples, "/v1/batch", "POST", 200) == 1  # a batch has no single loss
    assert elements(samples, "mean_squared_error") == 7
    assert elements(samples, "mean_absolute_error") == 6
    assert elements(samples, "huber") == 6


def test_stream_counts_every_chunk(client: TestClient) -> None:
    lines = [SEED, {"y_true": [[1, 2]], "y_pred": [[2, 2]]}, SEED]
    body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    headers = {"Content-Type": "application/x-ndjson"}
    assert client.post("/v1/losses/mse/stream", content=body, headers=headers).status_code == 200
    samples = scrape(client)
    stream_route = "/v1/losses/{name}/stream"
    assert requests(samples, stream_route, "POST", 200, "mean_squared_error") == 1
    assert elements(samples, "mean_squared_error") == 14


def test_v2_inference_counts_its_loss_and_elements(client: TestClient) -> None:
    def tensor(name: str, data: list[list[int]]) -> dict[str, Any]:
        flat = [float(x) for row in data for x in row]
        return {"name": name, "shape": [2, 3], "datatype": "FP32", "data": flat}

    request = {"inputs": [tensor("y_true", SEED["y_true"]), tensor("y_pred", SEED["y_pred"])]}
    for _ in range(2):
        assert client.post("/v2/models/BCE/infer", json=request).status_code == 200
    samples = scrape(client)
    route = "/v2/models/{name}/infer"
    assert requests(samples, route, "POST", 200, "binary_crossentropy") == 2
    assert elements(samples, "binary_crossentropy") == 12


def test_unhandled_errors_count_as_500(make_client: Callable[..., TestClient]) -> None:
    client = make_client()

    def boom() -> None:
        raise RuntimeError("a bug")

    client.app.add_api_route("/boom", boom)  # type: ignore[attr-defined]
    response = client.get("/boom")
    assert response.status_code == 500
    assert response.headers["x-request-id"]
    assert requests(scrape(client), "/boom", "GET", 500) == 1


def test_metrics_route_is_documented_as_text() -> None:
    spec = json.loads((Path(__file__).parents[2] / "openapi" / "openapi.json").read_text())
    ok = spec["paths"]["/metrics"]["get"]["responses"]["200"]
    assert list(ok["content"]) == ["text/plain; version=0.0.4; charset=utf-8"]


# --- several workers: the directory lossd serve prepares --------------------------------------


@pytest.fixture
def no_multiprocess_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    """PROMETHEUS_MULTIPROC_DIR unset, and unset again after the test whatever it exported
    (``delenv`` alone records nothing to undo for a variable that was not there)."""
    monkeypatch.setenv(MULTIPROCESS_ENV, "")
    monkeypatch.delenv(MULTIPROCESS_ENV)


@pytest.mark.usefixtures("no_multiprocess_dir")
def test_one_worker_needs_no_directory() -> None:
    assert prepare_metrics_dir(1) is None
    assert MULTIPROCESS_ENV not in os.environ


@pytest.mark.usefixtures("no_multiprocess_dir")
def test_workers_get_a_fresh_directory_removed_at_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    at_exit: list[tuple[Any, ...]] = []
    monkeypatch.setattr("atexit.register", lambda *args, **kwargs: at_exit.append(args))
    path = prepare_metrics_dir(2)
    assert path is not None and os.environ[MULTIPROCESS_ENV] == path
    assert Path(path).is_dir() and not any(Path(path).iterdir())
    [(cleanup, registered)] = at_exit
    assert registered == path
    cleanup(path, ignore_errors=True)
    assert not Path(path).exists()


def test_a_given_directory_is_emptied_of_old_values(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "counter_123.db").write_bytes(b"old")
    (tmp_path / "gauge_livesum_123.db").write_bytes(b"old")
    (tmp_path / "notes.txt").write_text("not ours")
    monkeypatch.setenv(MULTIPROCESS_ENV, str(tmp_path))
    assert prepare_metrics_dir(4) == str(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    missing = tmp_path / "new" / "dir"
    monkeypatch.setenv(MULTIPROCESS_ENV, str(missing))
    assert prepare_metrics_dir(2) == str(missing) and missing.is_dir()


# --- the per-request shortcuts into prometheus-client -----------------------------------------


def test_the_histogram_shortcut_counts_as_observe_does() -> None:
    amounts = [0.0, 0.0005, 0.001, 0.0010001, 0.0025, 0.3, 1, 2.5, 29.9, 30, 31, 1e9]
    ours = Histogram("ours", "", ("route",), buckets=LATENCY_BUCKETS, registry=None)
    theirs = Histogram("theirs", "", ("route",), buckets=LATENCY_BUCKETS, registry=None)
    observe = _observer(ours.labels("r"))
    assert observe != ours.labels("r").observe  # the shortcut is in use
    for amount in amounts:
        observe(amount)
        theirs.labels("r").observe(amount)

    def samples(h: Histogram) -> list[tuple[str, dict[str, str], float]]:
        return [
            (s.name.removeprefix(m.name), s.labels, s.value)
            for m in h.collect()
            for s in m.samples
            if not s.name.endswith("_created")  # when each child was made
        ]

    assert samples(ours) == samples(theirs)


def test_the_shortcuts_fall_back_to_the_public_methods() -> None:
    class Elsewhere:
        """A metric whose values prometheus-client would keep somewhere else."""

        def __init__(self) -> None:
            self.calls: list[tuple[str, float]] = []

        def inc(self, amount: float = 1) -> None:
            self.calls.append(("inc", amount))

        def observe(self, amount: float) -> None:
            self.calls.append(("observe", amount))

    metric = Elsewhere()
    _increment(metric)(2)  # type: ignore[arg-type]
    _observer(metric)(0.5)  # type: ignore[arg-type]
    assert metric.calls == [("inc", 2), ("observe", 0.5)]
