"""The benchmarks with their targets: each starts its servers, measures, and states its goals.

Every ratio compares figures measured side by side in the same run (servers started together,
requests interleaved round by round; see :mod:`bench.timing`). ``bench/README.md`` lists what each
target measures.

- P1, P2, T1 (``json``): MSE over two [1000, 1000] float32 tensors (38.5 MB of JSON) to
  ``lossd serve``: vs baseline N (``bench/baselines/naive_app.py``), vs a bare ASGI app only
  receiving the same body (T1), and through ``/v2`` with Triton's binary extension (P2).
- T2 (``decoder``): the JSON tensor decoder in-process vs ``orjson.loads`` + ``np.asarray``
  (:mod:`bench.decoding`).
- T3 (``memory``): peak RSS growth of a fresh worker per request, as a multiple of the body.
- T4 (``small``): 32x10 MSE and ``/healthz`` with wrk vs the leanest FastAPI app
  (``bench/baselines/lean_app.py``), and the in-process CPU per request of each.
- P5 (``stream``): a large NDJSON body to the stream endpoint; peak server RSS.
- P6 (``workers``): two workers vs one on small requests, with the CPU each side got.
- C1 (``client``): the Python client against a hand-written binary /v2 call
  (:mod:`bench.client_bench`).
- S (``sweep``): time per element of JSON and binary requests from 1e3 to 1e7 elements; the
  target is its largest growth from one size to a larger one (linear scaling), from 1e5 up.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import orjson

from app.losses import evaluate
from bench import client_bench, decoding, payloads, servers, wrk
from bench.client import Client
from bench.report import Section, Target
from bench.timing import interleaved, paired_ratio, timed

JSON = {"Content-Type": "application/json"}
NDJSON = {"Content-Type": "application/x-ndjson"}
MiB = 1024 * 1024


@dataclass
class Config:
    """Sizes and durations; ``full()``, ``quick()`` and ``tiny()`` are the three presets."""

    elements: int = 1_000_000  # per tensor, for P1, P2, T1, T2 and T3's float32 body
    repeats: int = 7
    naive_repeats: int = 5
    wrk_seconds: float = 10.0  # P6
    small_seconds: float = 5.0  # T4: each wrk run
    small_rounds: int = 3  # T4: rounds of the four wrk runs, interleaved
    digit_elements: int = 16_000_000  # per tensor, T3's body of one-digit integers (~64 MB)
    memory_repeats: int = 3  # T3: fresh servers per kind of body
    stream_bytes: int = 1024 * MiB
    stream_probe_lines: int = 100_000  # P5's figure of /healthz during a stream of tiny lines
    sweep: tuple[int, ...] = (1_000, 10_000, 100_000, 1_000_000, 10_000_000)
    sweep_repeats: int = 3

    @classmethod
    def full(cls) -> Config:
        return cls()

    @classmethod
    def quick(cls) -> Config:
        return cls(
            repeats=3,
            naive_repeats=2,
            wrk_seconds=3,
            small_seconds=3,
            small_rounds=2,
            memory_repeats=1,
            stream_bytes=200 * MiB,
            sweep=(1_000, 10_000, 100_000, 1_000_000),
            sweep_repeats=2,
        )

    @classmethod
    def tiny(cls) -> Config:
        """Smoke-test sizes: proves the harness runs, measures nothing meaningful."""
        return cls(
            elements=10_000,
            repeats=1,
            naive_repeats=1,
            wrk_seconds=1,
            small_seconds=1,
            small_rounds=1,
            digit_elements=200_000,
            memory_repeats=1,
            stream_bytes=1 * MiB,
            stream_probe_lines=1000,
            sweep=(1_000, 10_000),
            sweep_repeats=1,
        )


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def limit_l(body: bytes) -> float:
    """L: the in-process floor of a JSON request, orjson + np.asarray + the loss."""
    data = orjson.loads(body)
    y_true = np.asarray(data["y_true"], dtype=np.float32)
    y_pred = np.asarray(data["y_pred"], dtype=np.float32)
    return float(evaluate("mse", y_true, y_pred).result.mean)


def json_and_binary(cfg: Config) -> Section:
    """P1, P2 and T1: the same 1M pairs to N, lossd (JSON and binary) and the body sink, all
    running at once and asked in turn by one client, round after round; L in-process."""
    y_true, y_pred = payloads.tensors(cfg.elements)
    body = payloads.json_body(y_true, y_pred)
    binary, binary_headers = payloads.binary_request(y_true, y_pred)
    expected = float(np.mean(np.square(y_pred.astype(np.float64) - y_true)))
    shape = list(y_true.shape)
    answers: dict[str, bytes] = {}

    with contextlib.ExitStack() as stack:
        naive = stack.enter_context(servers.naive())
        ours = stack.enter_context(servers.lossd())
        sink = stack.enter_context(servers.body_sink())
        client = stack.enter_context(Client())

        def post(name: str, url: str, payload: bytes, headers: Mapping[str, str]) -> float:
            elapsed, answers[name] = client.post(url, payload, headers)
            return elapsed

        times = interleaved(
            {
                "sink": lambda: post("sink", sink.url + "/", body, JSON),
                "ours": lambda: post("ours", ours.url + "/v1/losses/mse", body, JSON),
                "L": timed(lambda: limit_l(body)),
                "sink binary": lambda: post("sink binary", sink.url + "/", binary, binary_headers),
                "binary": lambda: post(
                    "binary", ours.url + "/v2/models/mse/infer", binary, binary_headers
                ),
                "N": lambda: post("N", naive.url + "/mse", body, JSON),
            },
            cfg.repeats,
            at_most={"N": cfg.naive_repeats},
        )

    # The answers must be right, or the times mean nothing.
    assert np.isclose(orjson.loads(answers["N"])["mean"], expected, rtol=1e-5)
    assert np.isclose(orjson.loads(answers["ours"])["mean"], expected, rtol=1e-5)
    assert orjson.loads(answers["sink"]) == {"bytes": len(body)}
    header = orjson.loads(answers["binary"][: _binary_header_length(answers["binary"])])
    assert {o["name"] for o in header["outputs"]} >= {"per_sample", "mean"}, header

    median = {name: statistics.median(t) for name, t in times.items()}
    n_ratio = median["N"] / median["ours"]
    b_ratio = median["N"] / median["binary"]
    t1_ratio = paired_ratio(times["ours"], times["sink"])
    pairs = f"{cfg.elements:,} pairs of float32 (shape {shape} each)"
    section = Section(
        f"JSON and binary: MSE over {pairs}",
        figures=[
            ("JSON body", f"{len(body) / 1e6:.1f} MB"),
            ("binary body (v2 + Triton binary extension)", f"{len(binary) / 1e6:.1f} MB"),
            ("N: naive FastAPI app, JSON", ms(median["N"])),
            ("lossd /v1 JSON", ms(median["ours"])),
            ("bare ASGI app receiving the JSON body (same uvicorn)", ms(median["sink"])),
            ("L: in-process orjson.loads + np.asarray + loss", ms(median["L"])),
            ("lossd /v2 binary", ms(median["binary"])),
            ("bare ASGI app receiving the binary body", ms(median["sink binary"])),
        ],
    )
    section.notes += [
        f"rounds interleaved: {cfg.repeats} (N in the first {cfg.naive_repeats}); T1 is the "
        f"median of the per-round ratios; lossd spends {ms(median['ours'] - median['sink'])} "
        f"beyond receiving the body (decoding, validation, the loss, the answer), L alone takes "
        f"{ms(median['L'])} in-process",
        f"the binary request is bounded below by its reception, {ms(median['sink binary'])}: "
        f"at most {median['N'] / median['sink binary']:.0f}x faster than N on this machine",
    ]
    section.targets += [
        Target("P1", "JSON vs N", f"{n_ratio:.2f}x faster", ">= 2.5x", n_ratio >= 2.5),
        Target(
            "T1",
            "large JSON end to end vs receiving it",
            f"{t1_ratio:.2f}x",
            "<= 2.5x",
            t1_ratio <= 2.5,
        ),
        Target("P2", "binary vs N (JSON)", f"{b_ratio:.1f}x faster", ">= 50x", b_ratio >= 50),
    ]
    return section


def _binary_header_length(response: bytes) -> int:
    # The response's JSON header ends where its outermost object closes.
    depth = 0
    for i, byte in enumerate(response):
        depth += {ord("{"): 1, ord("}"): -1}.get(byte, 0)
        if depth == 0:
            return i + 1
    raise ValueError("no JSON header in the response")


def small_body() -> bytes:
    """The P3/P6 request: MSE on 32 samples of 10 values."""
    return payloads.json_body(*payloads.tensors(320, seed=1, cols=10))


def pinning() -> tuple[str | None, str | None]:
    """(server CPUs, wrk CPUs): one core each when there are two or more."""
    return ("0", "1") if (os.cpu_count() or 1) >= 2 else (None, None)


def rate(run: wrk.Throughput) -> str:
    return f"{run.requests_per_s:,.0f} req/s ({run.server_cores:.2f} server cores)"


def small_requests(cfg: Config) -> Section:
    """T4: 32x10 MSE and GET /healthz on lossd vs the lean FastAPI app, wrk with 16 connections,
    both servers up at once on the same core, runs interleaved round by round."""
    section = Section("Small requests vs the leanest FastAPI app (32x10 MSE, 16 connections, wrk)")
    if wrk.find_wrk() is None:
        for what, goal in (("32x10 MSE vs lean app", ">= 0.9x"), ("/healthz vs hello", ">= 0.8x")):
            section.targets.append(Target("T4", what, "wrk missing", goal, None))
        return section
    server_cpus, wrk_cpus = pinning()
    body = small_body()
    with servers.lossd(cpus=server_cpus) as ours, servers.lean(cpus=server_cpus) as lean:

        def load(server: servers.Server, path: str, post: bytes | None) -> Callable[[], float]:
            def run() -> float:
                got = wrk.run(server, path, seconds=cfg.small_seconds, body=post, cpus=wrk_cpus)
                runs.setdefault((server.name, path), []).append(got)
                return got.requests_per_s if got.errors == 0 else 0.0

            return run

        runs: dict[tuple[str, str], list[wrk.Throughput]] = {}
        rates = interleaved(
            {
                "ours health": load(ours, "/healthz", None),
                "lean health": load(lean, "/healthz", None),
                "ours mse": load(ours, "/v1/losses/mse", body),
                "lean mse": load(lean, "/mse", body),
            },
            cfg.small_rounds,
            warmup=0,
        )
    errors = {name: sum(r.errors for r in got) for (name, _), got in runs.items()}
    health = paired_ratio(rates["ours health"], rates["lean health"])
    mse = paired_ratio(rates["ours mse"], rates["lean mse"])
    cores = {key: statistics.median(r.server_cores for r in got) for key, got in runs.items()}
    for label, key, (name, path) in (
        ("lossd GET /healthz", "ours health", (ours.name, "/healthz")),
        ("lean app GET /healthz (async def hello world)", "lean health", (lean.name, "/healthz")),
        ("lossd POST /v1/losses/mse 32x10", "ours mse", (ours.name, "/v1/losses/mse")),
        ("lean app POST /mse 32x10 (async def, Pydantic lists)", "lean mse", (lean.name, "/mse")),
    ):
        got = runs[(name, path)]
        per_cpu = statistics.median(r.per_server_cpu_s for r in got)
        section.figures.append(
            (
                label,
                f"{statistics.median(rates[key]):,.0f} req/s ({cores[(name, path)]:.2f} server "
                f"cores, {per_cpu:,.0f} req per server CPU-second)",
            )
        )
    section.figures += [
        ("pinning", f"servers on CPU {server_cpus}, wrk on CPU {wrk_cpus}" if wrk_cpus else "none"),
        ("errors (non-2xx, socket)", ", ".join(f"{n}: {e}" for n, e in errors.items())),
    ]
    section.notes.append(
        f"{cfg.small_rounds} rounds of {cfg.small_seconds:g} s per run; each ratio is the median "
        "of the per-round ratios"
    )
    section.notes += in_process_notes(cfg)
    section.targets += [
        Target("T4", "32x10 MSE vs lean app", f"{mse:.2f}x", ">= 0.9x", mse >= 0.9),
        Target("T4", "/healthz vs hello world", f"{health:.2f}x", ">= 0.8x", health >= 0.8),
    ]
    return section


def in_process_notes(cfg: Config) -> list[str]:
    """The CPU each request of T4 costs inside each application, called as ASGI in-process."""
    from app.main import create_app  # here: creating the app configures logging
    from bench.asgi_cost import cpu_per_call, cpu_per_request, mse_work
    from bench.baselines.lean_app import app as lean_app

    n = 50 if cfg.small_seconds < 2 else 500
    body = small_body()
    # lossd as it serves by default: its request lines written (here to /dev/null)
    ours_health = cpu_per_request(create_app(), "GET", "/healthz", b"", n, log=True)
    ours_mse = cpu_per_request(create_app(), "POST", "/v1/losses/mse", body, n, log=True)
    lean_health = cpu_per_request(lean_app, "GET", "/healthz", b"", n)
    lean_mse = cpu_per_request(lean_app, "POST", "/mse", body, n)
    floor = cpu_per_call(lambda: limit_l(body), n)
    try:
        work: float | None = cpu_per_call(mse_work(body), n)
    except (ImportError, AttributeError, TypeError):  # the API's internals changed
        work = None

    def us(seconds: float) -> str:
        return f"{seconds * 1e6:.0f} us"

    return [
        f"in-process CPU per request (ASGI, no sockets; lossd writing its request log to "
        f"/dev/null): lossd /healthz {us(ours_health)}, "
        f"lean app {us(lean_health)} ({lean_health / ours_health:.2f}x the throughput); "
        f"32x10 MSE: lossd {us(ours_mse)}, lean app {us(lean_mse)} "
        f"({lean_mse / ours_mse:.2f}x); python -m bench.asgi_cost breaks lossd's down by layer",
        (
            f"of lossd's 32x10 MSE, the endpoint's own work (parse and validate the body, "
            f"evaluate, encode the answer) is {us(work)}; "
            if work is not None
            else "of lossd's 32x10 MSE: "
        )
        + f"L for this body (orjson.loads + np.asarray + the loss, nothing else) takes "
        f"{us(floor)}",
    ]


def workers(cfg: Config) -> Section:
    """P6: small-request throughput of 2 workers vs 1, and the CPU each got."""
    section = Section("Workers (32x10 MSE, 16 connections, wrk, nothing pinned)")
    if wrk.find_wrk() is None:
        section.targets.append(Target("P6", "2 workers vs 1", "wrk missing", ">= 1.7x", None))
        return section
    runs = {}
    for n in (1, 2):
        with servers.lossd(workers=n) as server:
            runs[n] = wrk.run(server, "/v1/losses/mse", seconds=cfg.wrk_seconds, body=small_body())
    one, two = runs[1], runs[2]
    ratio = two.requests_per_s / one.requests_per_s
    efficiency = two.per_server_cpu_s / one.per_server_cpu_s
    cores = os.cpu_count() or 1
    for n, r in runs.items():
        section.figures.append(
            (
                f"{n} worker{'s' if n > 1 else ''}",
                f"{r.requests_per_s:,.0f} req/s; server {r.server_cores:.2f} cores, wrk "
                f"{r.wrk_cores:.2f} cores; {r.per_server_cpu_s:,.0f} req per server CPU-second",
            )
        )
    target = Target("P6", "2 workers vs 1", f"{ratio:.2f}x", ">= 1.7x", ratio >= 1.7)
    target.notes.append(
        f"{cores} cores here, shared by wrk and the server: with 2 workers the server got "
        f"{two.server_cores:.2f} cores (wrk {two.wrk_cores:.2f}) against {one.server_cores:.2f} "
        f"with 1 worker, so this machine caps the ratio near "
        f"{two.server_cores / max(one.server_cores, 1e-9):.2f}x. Per server CPU-second, 2 workers "
        f"serve {efficiency:.2f}x what 1 does; with a free core per worker (wrk elsewhere) the "
        f"ratio would be about {2 * efficiency:.2f}x."
    )
    section.targets.append(target)
    return section


def memory(cfg: Config) -> Section:
    """T3: how much one request raises a fresh worker's peak RSS, as a multiple of its body."""
    section = Section("Memory: peak RSS growth of one worker per request (MSE, float32)")
    digits = payloads.json_body(*payloads.digits(cfg.digit_elements))
    floats = payloads.json_body(*payloads.tensors(cfg.elements))
    how = ""
    for kind, body, goal in (
        ("one-digit integers", digits, 10.0),
        ("random float32", floats, 3.0),
    ):
        factors = []
        for _ in range(cfg.memory_repeats):
            factor, how = peak_growth(body)
            factors.append(factor)
        factor = statistics.median(factors)
        section.figures.append(
            (
                f"JSON of {kind}, {len(body) / 1e6:.1f} MB",
                f"peak RSS +{factor * len(body) / MiB:,.0f} MiB = {factor:.1f}x the body"
                + (
                    f" (runs: {', '.join(f'{f:.1f}' for f in factors)})" if len(factors) > 1 else ""
                ),
            )
        )
        section.targets.append(
            Target(
                "T3",
                f"peak RSS per request, {kind}",
                f"{factor:.1f}x body",
                f"<= {goal:g}x",
                factor <= goal,
            )
        )
    section.notes.append(
        f"each figure is the median over {cfg.memory_repeats} fresh `lossd serve` (1 worker), "
        f"warmed up with two small requests; {how}"
    )
    return section


def peak_growth(body: bytes) -> tuple[float, str]:
    """(growth of the worker's peak RSS while it answers ``body``, over ``len(body)``; how the
    growth was measured), on a fresh ``lossd serve``."""
    warm = payloads.json_body(*payloads.tensors(20_000, seed=3, cols=100))  # > 64 KiB: thread pool
    with servers.lossd() as server, Client() as client:
        url = server.url + "/v1/losses/mse"
        client.post(url, small_body(), JSON)
        client.post(url, warm, JSON)
        if server.reset_peak_rss():
            how = "growth = VmHWM after the request - VmRSS before, VmHWM reset just before"
        else:
            how = "growth = VmHWM after - VmRSS before (VmHWM not resettable: an upper bound)"
        before = server.rss_mib()
        client.post(url, body, JSON)
        after = server.peak_rss_mib()
    growth = max(after[pid] - rss for pid, rss in before.items() if pid in after)
    return growth * MiB / len(body), how


def stream(cfg: Config) -> Section:
    """P5: a large NDJSON body, generated while sending, to /v1/losses/mse/stream."""
    lines = payloads.ndjson_line_count(cfg.stream_bytes)
    with servers.lossd() as server:
        idle = max(server.peak_rss_mib().values())
        with Client() as client:
            start = time.perf_counter()
            status, answer = client.request(
                "POST",
                server.url + "/v1/losses/mse/stream",
                payloads.ndjson_stream(cfg.stream_bytes),
                NDJSON,
            )
            elapsed = time.perf_counter() - start
        peaks = server.peak_rss_mib()
    result = orjson.loads(answer)
    if status != 200 or result.get("chunks") != lines:
        raise RuntimeError(f"stream answered {status}: {answer[:500]!r}")
    peak = max(peaks.values())
    size = f"{cfg.stream_bytes / MiB:,.0f} MiB"
    section = Section(
        f"Streaming: {size} of NDJSON (lines of 100x100 pairs) to /v1/losses/mse/stream",
        figures=[
            ("lines", f"{lines:,}"),
            ("time", f"{elapsed:.1f} s ({cfg.stream_bytes / MiB / elapsed:.0f} MiB/s)"),
            ("server peak RSS (VmHWM), idle after start", f"{idle:.0f} MiB"),
            ("server peak RSS (VmHWM), after the stream", f"{peak:.0f} MiB ({len(peaks)} process)"),
        ],
    )
    section.targets.append(
        Target(
            "P5", f"{size} stream, peak server RSS", f"{peak:.0f} MiB", "<= 256 MiB", peak <= 256
        )
    )
    idle, during, tiny_lines, tiny_seconds = probes_during_stream(cfg.stream_probe_lines)
    section.figures += [
        (
            f"/healthz during a stream of {tiny_lines:,} tiny lines ({tiny_seconds:.1f} s)",
            f"median {ms(statistics.median(during))}, max {ms(max(during))} "
            f"({len(during)} probes; idle median {ms(statistics.median(idle))})",
        ),
    ]
    section.notes.append(
        "the stream's lines are parsed and evaluated in a worker thread, a batch at a time, so "
        "a probe waits for the event loop at most one GIL switch interval (5 ms) at a time"
    )
    return section


def probes_during_stream(lines: int) -> tuple[list[float], list[float], int, float]:
    """``/healthz`` latencies (seconds) idle and while one client streams ``lines`` tiny NDJSON
    lines (the review's probe: 100k of them held the event loop for 1.2 s); the stream's time."""
    line = b'{"y_true": [[0, 1]], "y_pred": [[1, 1]]}\n'
    body = line * lines
    with servers.lossd() as server, Client() as prober, Client() as streamer:
        url = server.url + "/healthz"

        def probe() -> float:
            start = time.perf_counter()
            status, _ = prober.request("GET", url)
            if status != 200:
                raise RuntimeError(f"/healthz answered {status}")
            return time.perf_counter() - start

        idle = [probe() for _ in range(20)]
        during: list[float] = []
        done = threading.Event()
        answer: list[tuple[int, bytes]] = []

        def send() -> None:
            try:
                answer.append(
                    streamer.request("POST", server.url + "/v1/losses/mse/stream", body, NDJSON)
                )
            finally:
                done.set()

        sender = threading.Thread(target=send)
        start = time.perf_counter()
        sender.start()
        while not done.is_set():
            during.append(probe())
            time.sleep(0.01)
        sender.join()
        elapsed = time.perf_counter() - start
    if not answer or answer[0][0] != 200 or orjson.loads(answer[0][1])["chunks"] != lines:
        raise RuntimeError(f"the stream of tiny lines answered {answer[:1]!r}")
    return idle, during or [0.0], lines, elapsed


def sweep(cfg: Config) -> Section:
    """Time per element from 1e3 to 1e7 elements per tensor, JSON and binary."""
    section = Section("Size sweep: MSE, time per element (pairs), JSON /v1 and binary /v2")
    # The largest JSON body (1e7 pairs, ~390 MB) is over the default 64 MiB body limit: this
    # one server runs with LOSSD_MAX_BODY_BYTES raised, every other setting the default.
    env = {"LOSSD_MAX_BODY_BYTES": str(1024 * MiB)}
    per: dict[str, dict[int, float]] = {"json": {}, "binary": {}}
    with servers.lossd(env=env) as server, Client() as client:
        for n in cfg.sweep:
            y_true, y_pred = payloads.tensors(n, seed=2)
            repeats = cfg.sweep_repeats if n >= 1_000_000 else cfg.sweep_repeats * 3
            body = payloads.json_body(y_true, y_pred)
            url = server.url + "/v1/losses/mse"
            per["json"][n] = client.time(url, body, JSON, repeats).median / n
            del body
            binary, headers = payloads.binary_request(y_true, y_pred)
            url = server.url + "/v2/models/mse/infer"
            per["binary"][n] = client.time(url, binary, headers, repeats * 3).median / n
    for n in cfg.sweep:
        j, b = per["json"][n], per["binary"][n]
        section.figures.append(
            (
                f"{n:.0e} pairs",
                f"JSON {j * 1e9:,.1f} ns/pair ({j * n * 1e3:,.1f} ms); "
                f"binary {b * 1e9:,.2f} ns/pair ({b * n * 1e3:,.2f} ms)",
            )
        )
    section.notes.append(
        "this server ran with LOSSD_MAX_BODY_BYTES=1 GiB (JSON for 1e7 pairs is ~390 MB, and "
        "the default 64 MiB stops JSON near 1.6M pairs); every other setting is the default"
    )
    for path, times in per.items():
        # Linear scaling means no cost per element grows with size: the target is the largest
        # growth of time per element from one size to any larger one, from 1e5 up. Time per
        # element that falls with size (a fixed per-request cost spread thinner) is no growth.
        sizes = sorted(n for n in times if n >= 100_000)
        if len(sizes) < 2:
            section.targets.append(
                Target("S", f"{path} time/element above 1e5", "too few sizes", "<= 1.20", None)
            )
            continue
        growth = max(times[m] / times[n] for i, n in enumerate(sizes) for m in sizes[i + 1 :])
        spread = max(times[n] for n in sizes) / min(times[n] for n in sizes)
        section.notes.append(
            f"{path}: time per pair from 1e5 up spreads max/min {spread:.2f}; "
            f"the largest growth from a size to a larger one is {growth:.2f}x"
        )
        section.targets.append(
            Target(
                "S",
                f"{path} time/element growth above 1e5",
                f"{growth:.2f}x",
                "<= 1.20",
                growth <= 1.2,
            )
        )
    return section


def decoder(cfg: Config) -> Section:
    """T2 (:mod:`bench.decoding`), on the bodies of P1."""
    return decoding.decoder_section(cfg.elements, max(cfg.repeats, 3))


BENCHMARKS: dict[str, Callable[[Config], Section]] = {
    "json": json_and_binary,
    "decoder": decoder,
    "memory": memory,
    "small": small_requests,
    "stream": stream,
    "workers": workers,
    "sweep": sweep,
    "client": client_bench.client_vs_binary,
}
