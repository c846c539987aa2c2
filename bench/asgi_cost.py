"""CPU time one request costs inside the application, called in-process as an ASGI app.

No sockets and no uvicorn: the figure is the framework (middleware, routing, dependencies) plus
the endpoint, in CPU microseconds of this process (its worker threads included), so it is less
sensitive to other load on the machine than wall time. ``async_dependencies`` shows what
FastAPI's thread-pool hop for each plain ``def`` dependency costs a small request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

Message = dict[str, Any]


async def _call(app: Any, method: str, path: str, body: bytes) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
        "state": {},
    }
    sent = False
    status = 0

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)  # no disconnect while the app runs
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def cpu_per_request(app: FastAPI, method: str, path: str, body: bytes, n: int) -> float:
    """Median over 5 rounds of CPU seconds per request, after a warm-up; fails on non-200."""

    async def run() -> float:
        async with app.router.lifespan_context(app):
            for _ in range(20):
                if (status := await _call(app, method, path, body)) != 200:
                    raise RuntimeError(f"{method} {path} answered {status}")
            rounds = []
            for _ in range(5):
                start = time.process_time()
                for _ in range(n):
                    await _call(app, method, path, body)
                rounds.append((time.process_time() - start) / n)
            return sorted(rounds)[2]

    logging.disable(logging.CRITICAL)  # access logs would go to this process's stdout
    try:
        return asyncio.run(run())
    finally:
        logging.disable(logging.NOTSET)


def cpu_per_call(fn: Callable[[], Any], n: int) -> float:
    """Median over 5 rounds of CPU seconds per call of ``fn``, after a warm-up."""
    for _ in range(20):
        fn()
    rounds = []
    for _ in range(5):
        start = time.process_time()
        for _ in range(n):
            fn()
        rounds.append((time.process_time() - start) / n)
    return sorted(rounds)[2]


def mse_work(body: bytes) -> Callable[[], bytes]:
    """The 32x10 MSE endpoint's own work, without the framework: parse and validate the body,
    evaluate, encode the response."""
    from app.api.bodies import ORJSONResponse, evaluation_dict, parse_json
    from app.api.schemas import EvaluateRequest
    from app.losses import resolve

    spec = resolve("mse")
    context = {"max_elements": 16_000_000}

    def work() -> bytes:
        req = parse_json(EvaluateRequest, body, context)
        result = evaluation_dict(req.evaluate(spec, req.options, req.reduction, req.dtype))
        return ORJSONResponse(result).body

    return work
