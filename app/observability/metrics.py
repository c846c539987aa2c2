"""Prometheus metrics and ``GET /metrics``.

Every label is bounded: routes are templates (``/v1/losses/{name}``, never the raw path), methods
outside the usual seven are ``other``, losses are canonical names. With several worker processes
each one writes its values to files in ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics``, whichever
worker answers it, merges them all (prometheus-client's multiprocess mode); the variable must be
set before the workers start (``lossd serve`` does it, see :mod:`app.observability.serve`).
"""

from __future__ import annotations

import atexit
import functools
import os

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from app.observability.context import Observation
from app.observability.serve import MULTIPROCESS_ENV

#: Seconds; most small requests answer in a few milliseconds, a 64 MiB body in seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    """The service's instruments and the registry ``/metrics`` exposes."""

    def __init__(self, registry: CollectorRegistry, *, register: bool = True) -> None:
        # In multiprocess mode the values live in files read by a collector on ``registry``;
        # the instruments themselves are registered nowhere.
        target = registry if register else None
        self.registry = registry
        self.requests = Counter(
            "lossd_http_requests",
            "HTTP requests answered, by route template, method, status and canonical loss name "
            "(empty when the request evaluates no loss; /v1/batch counts its losses in "
            "lossd_elements_evaluated_total only).",
            ("route", "method", "status", "loss"),
            registry=target,
        )
        self.latency = Histogram(
            "lossd_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by route template.",
            ("route",),
            buckets=LATENCY_BUCKETS,
            registry=target,
        )
        self.elements = Counter(
            "lossd_elements_evaluated",
            "Values of y_pred in every completed evaluation, by canonical loss name "
            "(each /v1/batch item's losses, each stream chunk).",
            ("loss",),
            registry=target,
        )
        self.in_flight = Gauge(
            "lossd_http_requests_in_flight",
            "Requests being handled now (a scrape of /metrics counts itself).",
            multiprocess_mode="livesum",
            registry=target,
        )
        # Labelled children by label values: the per-request path skips prometheus-client's
        # validation and lock. Bounded like the labels themselves.
        self._requests: dict[tuple[str, str, int, str], Counter] = {}
        self._latency: dict[str, Histogram] = {}
        self._elements: dict[str, Counter] = {}

    def observe(
        self, route: str, method: str, status: int, obs: Observation, seconds: float
    ) -> None:
        """Record one finished request (``route`` a template, empty when nothing matched)."""
        method = method if method in METHODS else "other"
        key = (route, method, status, obs.loss)
        requests = self._requests.get(key)
        if requests is None:
            requests = self._requests[key] = self.requests.labels(
                route, method, str(status), obs.loss
            )
        requests.inc()
        latency = self._latency.get(route)
        if latency is None:
            latency = self._latency[route] = self.latency.labels(route)
        latency.observe(seconds)
        for loss, count in obs.elements.items():
            elements = self._elements.get(loss)
            if elements is None:
                elements = self._elements[loss] = self.elements.labels(loss)
            elements.inc(count)

    def render(self) -> bytes:
        """Every series in the Prometheus text format (all workers' in multiprocess mode)."""
        return generate_latest(self.registry)


def create_metrics() -> Metrics:
    """The instruments of a new app: on a registry of its own in one process; in multiprocess
    mode (``PROMETHEUS_MULTIPROC_DIR`` set) the process's one set, which writes to that
    directory, and a registry that reads every worker's files."""
    if os.environ.get(MULTIPROCESS_ENV):
        return _multiprocess_metrics()
    return Metrics(CollectorRegistry())


@functools.cache
def _multiprocess_metrics() -> Metrics:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    # A worker that stops takes its in-flight gauge with it; its counters stay, being totals.
    atexit.register(multiprocess.mark_process_dead, os.getpid())
    return Metrics(registry, register=False)


class PrometheusText(PlainTextResponse):
    """The Prometheus text exposition format, version 0.0.4."""

    media_type = CONTENT_TYPE_PLAIN_0_0_4


router = APIRouter(tags=["observability"])


@router.get(
    "/metrics",
    response_class=PrometheusText,
    responses={200: {"description": "Every series in the Prometheus text format 0.0.4."}},
)
def metrics(request: Request) -> PrometheusText:
    """Request counts and latencies, elements evaluated and requests in flight, for Prometheus
    (all workers' when several run). Never needs an API key."""
    return PrometheusText(request.app.state.metrics.render())
