"""Prometheus metrics and ``GET /metrics``.

Every label is bounded: routes are templates (``/v1/losses/{name}``, never the raw path), methods
outside the usual seven are ``other``, losses are canonical names. With several worker processes
each one writes its values to files in ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics``, whichever
worker answers it, merges them all (prometheus-client's multiprocess mode); the variable must be
set before the workers start (``lossd serve`` does it, see :mod:`app.observability.serve`).
"""

from __future__ import annotations

import atexit
import bisect
import functools
import os
from collections.abc import Callable
from typing import Any

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
        # Per-request path: one dict lookup per labelled series, then the value's own increment
        # (see _increment and _observer). Bounded like the labels themselves.
        self._requests: dict[tuple[str, str, int, str], Callable[[float], None]] = {}
        self._latency: dict[str, Callable[[float], None]] = {}
        self._elements: dict[str, Callable[[float], None]] = {}
        self.in_flight_add = _increment(self.in_flight)

    def observe(
        self, route: str, method: str, status: int, obs: Observation, seconds: float
    ) -> None:
        """Record one finished request (``route`` a template, empty when nothing matched)."""
        if method not in METHODS:
            method = "other"
        key = (route, method, status, obs.loss)
        count = self._requests.get(key)
        if count is None:
            child = self.requests.labels(route, method, str(status), obs.loss)
            count = self._requests[key] = _increment(child)
        count(1)
        latency = self._latency.get(route)
        if latency is None:
            latency = self._latency[route] = _observer(self.latency.labels(route))
        latency(seconds)
        for loss, n in obs.elements.items():
            elements = self._elements.get(loss)
            if elements is None:
                elements = self._elements[loss] = _increment(self.elements.labels(loss))
            elements(n)

    def render(self) -> bytes:
        """Every series in the Prometheus text format (all workers' in multiprocess mode)."""
        return generate_latest(self.registry)


def _increment(metric: Counter | Gauge) -> Callable[[float], None]:
    """``metric``'s own value's ``inc``: what ``Counter.inc`` and ``Gauge.inc`` call after
    checking, on every call, that the metric is a labelled child and the amount not negative (a
    child never stops being one; our amounts are counts). Falls back to the public method should
    prometheus-client keep its values elsewhere one day."""
    value: Any = getattr(metric, "_value", None)
    add = getattr(value, "inc", None)
    return add if callable(add) else metric.inc


def _observer(histogram: Histogram) -> Callable[[float], None]:
    """``histogram.observe`` for a labelled child: the sum and one bucket, found by bisection
    (the upper bounds are sorted and end with +Inf) rather than by a loop over 15 bounds; the
    public method where the child's values are not where prometheus-client 0.20-0.26 keeps them."""
    bounds: Any = getattr(histogram, "_upper_bounds", None)
    buckets: Any = getattr(histogram, "_buckets", None)
    total: Any = getattr(histogram, "_sum", None)
    if not (
        isinstance(bounds, list)
        and isinstance(buckets, list)
        and len(bounds) == len(buckets)
        and bounds[-1] == float("inf")
        and callable(getattr(total, "inc", None))
    ):
        return histogram.observe
    bucket_adds = [bucket.inc for bucket in buckets]
    add_to_sum = total.inc
    bisect_left = bisect.bisect_left

    def observe(seconds: float) -> None:
        add_to_sum(seconds)
        bucket_adds[bisect_left(bounds, seconds)](1)

    return observe


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
