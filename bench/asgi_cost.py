"""CPU time one request costs inside the application, called in-process as an ASGI app.

No sockets and no uvicorn: the figure is the framework (middleware, routing, dependencies) plus
the endpoint, in CPU microseconds of this process (its worker threads included), so it is less
sensitive to other load on the machine than wall time.

    python -m bench.asgi_cost                 # per layer: lossd less one middleware at a time
    python -m bench.asgi_cost --profile mse   # cProfile of the whole app, top functions

The layer table builds lossd's app once as is and once without each middleware it has (found
on the app, whatever they are called), plus the lean baseline app (``bench/baselines``); every
variant is measured in the same rounds, interleaved, and the table shows medians. What a layer
costs is the difference between the full app and the app without it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import functools
import logging
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

Message = dict[str, Any]
ASGI = Callable[..., Any]


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
            (b"user-agent", b"bench/1"),
            (b"accept", b"*/*"),
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


async def _warm(app: Any, method: str, path: str, body: bytes) -> None:
    for _ in range(20):
        if (status := await _call(app, method, path, body)) != 200:
            raise RuntimeError(f"{method} {path} answered {status}")


async def _round(app: Any, method: str, path: str, body: bytes, n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        await _call(app, method, path, body)
    return (time.process_time() - start) / n


@contextlib.contextmanager
def _quiet(log: bool = False) -> Any:
    """Request log lines written to /dev/null (``log``, as a server writes them to its stdout),
    or not written at all."""
    if log:
        # File descriptor 1 itself goes to /dev/null, sys.stdout stays the process's own: the
        # request log then queues its lines and writes them once per event-loop iteration, as
        # in a server (a replaced sys.stdout gets each line at once, see RequestLog.write).
        sys.stdout.flush()
        saved = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
            os.close(devnull)
        return
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def cpu_per_request(
    app: FastAPI, method: str, path: str, body: bytes, n: int, log: bool = False
) -> float:
    """Median over 5 rounds of CPU seconds per request, after a warm-up; fails on non-200.
    ``log``: the app writes its request lines (to /dev/null) as configured, else none."""
    return cpu_per_request_of({"app": app}, method, path, body, n, log=log)["app"]


def cpu_per_request_of(
    apps: dict[str, FastAPI],
    method: str,
    path: str,
    body: bytes,
    n: int,
    rounds: int = 5,
    log: bool = False,
) -> dict[str, float]:
    """:func:`cpu_per_request` of several apps, their rounds interleaved; by name."""

    async def run() -> dict[str, float]:
        async with contextlib.AsyncExitStack() as stack:
            for app in apps.values():
                await stack.enter_async_context(app.router.lifespan_context(app))
                await _warm(app, method, path, body)
            figures: dict[str, list[float]] = {name: [] for name in apps}
            for _ in range(rounds):
                for name, app in apps.items():
                    figures[name].append(await _round(app, method, path, body, n))
            return {name: statistics.median(f) for name, f in figures.items()}

    with _quiet(log):
        return asyncio.run(run())


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
    evaluate, encode the response. Raises ImportError or AttributeError when the API modules no
    longer have the pieces this uses."""
    from app.api.bodies import ORJSONResponse, parse_json
    from app.api.schemas import EvaluateRequest
    from app.losses import resolve
    from app.results import evaluation_fields

    spec = resolve("mse")
    context = {"max_elements": 16_000_000}

    def work() -> bytes:
        req = parse_json(EvaluateRequest, body, context)
        result = evaluation_fields(req.evaluate(spec, req.options, req.reduction))
        return ORJSONResponse(result).body

    return work


# --- the layer table and the profile ----------------------------------------------------------

REQUESTS = {
    "healthz": ("GET", "/healthz", "/healthz"),
    "mse": ("POST", "/v1/losses/mse", "/mse"),  # lossd's path, the lean app's
}


def small_body() -> bytes:
    from bench.http_bench import small_body

    return small_body()


def lossd_without(drop: str | None = None) -> FastAPI:
    """lossd's app, less the user middleware class named ``drop`` or, for
    ``ObservabilityMiddleware``, less the observability wrapper around the whole stack."""
    from app.main import create_app

    app = create_app()
    if drop == "ObservabilityMiddleware":
        app.build_middleware_stack = functools.partial(  # type: ignore[method-assign]
            FastAPI.build_middleware_stack, app
        )
    elif drop is not None:
        app.user_middleware = [m for m in app.user_middleware if _name(m.cls) != drop]
    app.middleware_stack = None
    return app


def _name(cls: Any) -> str:
    return str(getattr(cls, "__name__", cls))


def variants() -> dict[str, FastAPI]:
    """lossd as is, lossd less each layer, lossd with no layer of its own, the lean app."""
    from bench.baselines.lean_app import app as lean

    full = lossd_without()
    layers = ["ObservabilityMiddleware", *(_name(m.cls) for m in full.user_middleware)]
    apps = {"lossd": full}
    apps |= {f"lossd without {layer}": lossd_without(layer) for layer in layers}
    bare = lossd_without("ObservabilityMiddleware")
    bare.user_middleware = []
    apps["lossd without any middleware of its own"] = bare
    apps["lean FastAPI app (bench/baselines/lean_app.py)"] = lean
    return apps


def layer_table(n: int, rounds: int) -> None:
    apps = variants()
    body = small_body()
    results = {}
    for name, (method, path, lean_path) in REQUESTS.items():
        payload = body if method == "POST" else b""
        lossd_apps = {k: v for k, v in apps.items() if not k.startswith("lean")}
        lean_apps = {k: v for k, v in apps.items() if k.startswith("lean")}
        figures = cpu_per_request_of(lossd_apps, method, path, payload, n, rounds)
        figures |= cpu_per_request_of(lean_apps, method, lean_path, payload, n, rounds)
        results[name] = figures
    logged = "lossd, request log on (to /dev/null, as lossd serve's default)"
    for name, (method, path, _) in REQUESTS.items():
        payload = body if method == "POST" else b""
        app = lossd_without()
        results[name][logged] = cpu_per_request_of(
            {"": app}, method, path, payload, n, rounds, log=True
        )[""]
    apps = {"lossd": apps["lossd"], logged: apps["lossd"], **apps}
    width = max(len(k) for k in apps)
    print(f"CPU us per request, in-process, median of {rounds} rounds of {n}; request log off")
    print("but in the second row; in brackets: the difference with the first row")
    print(f"{'':{width}}  {'/healthz':>16}  {'32x10 MSE':>16}")
    full = {name: results[name]["lossd"] for name in REQUESTS}
    for variant in apps:
        cells = []
        for name in REQUESTS:
            value = results[name][variant]
            delta = "" if variant == "lossd" else f" ({(value - full[name]) * 1e6:+.0f})"
            cells.append(f"{value * 1e6:.0f}{delta}")
        print(f"{variant:{width}}  {cells[0]:>16}  {cells[1]:>16}")


def profile(request: str, n: int, top: int) -> None:
    from app.main import create_app

    method, path, _ = REQUESTS[request]
    body = small_body() if method == "POST" else b""
    app = create_app()
    profiler = cProfile.Profile()

    async def run() -> None:
        async with app.router.lifespan_context(app):
            await _warm(app, method, path, body)
            profiler.enable()
            for _ in range(n):
                await _call(app, method, path, body)
            profiler.disable()

    with _quiet():
        asyncio.run(run())
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--profile", choices=list(REQUESTS), help="cProfile this request")
    parser.add_argument("--top", type=int, default=40, help="functions the profile lists")
    args = parser.parse_args()
    if args.profile:
        profile(args.profile, args.requests, args.top)
    else:
        layer_table(args.requests, args.rounds)


if __name__ == "__main__":
    main()
