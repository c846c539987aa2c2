"""Observability: Prometheus metrics (``GET /metrics``), one log line per request on stdout
(JSON or text) and ``X-Request-ID`` on every response.

- :mod:`.context`: the per-request :class:`Observation` the route layer fills in through
  :func:`observation` (the loss a request evaluates, the values evaluated).
- :mod:`.middleware`: the one ASGI middleware doing ids, metrics and the log line;
  ``install(app, settings)``.
- :mod:`.metrics`: the instruments, multiprocess mode and the ``/metrics`` route.
- :mod:`.logs`: the JSON and text formatters.
- :mod:`.serve`: what ``lossd serve`` prepares before uvicorn starts its workers.
"""

from app.observability.context import Observation, observation

__all__ = ["Observation", "observation"]
