"""Load shedding and body timeouts (app/api/gate.py) on the ASGI app, driven message by
message so a test controls when each piece of a body arrives, stalls or never comes.

After every scenario the worker's permits and in-flight bytes are back to zero: success, error,
413, 503 before and half-way through a body, 408 and client disconnect each release what they
held.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import json
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI

from app.api import inflate, ndjson
from app.api.accounting import Admission
from app.api.routes import stream as stream_route
from app.main import create_app
from app.settings import Settings
from tests.helpers import SEED, SEED_MSE, assert_problem

KiB = 1024
JSON = "application/json"
NDJSON = "application/x-ndjson"


@dataclass
class Answer:
    """What the app sent for one request, and how much of the body it read."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunks_read: int = 0

    def json(self) -> Any:
        return json.loads(self.body)

    # What tests.helpers.assert_problem reads, as on an httpx response.
    @property
    def status_code(self) -> int:
        return self.status

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


def padded(doc: dict[str, Any], size: int) -> bytes:
    """``doc`` as JSON padded with spaces to ``size`` bytes (JSON ignores trailing spaces)."""
    raw = json.dumps(doc).encode()
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


async def send_request(
    app: FastAPI,
    path: str,
    chunks: list[bytes] | Callable[[], AsyncIterator[bytes]],
    *,
    headers: dict[str, str] | None = None,
    content_length: bool = True,
    disconnect: bool = False,
    gated: asyncio.Event | None = None,
) -> Answer:
    """One HTTP request through the ASGI app. ``chunks`` is the body, all at once as a list (with
    Content-Length unless ``content_length`` is false: chunked) or an async generator (chunked)
    whose pauses are the client's. ``disconnect``: the client goes away after the last chunk.
    ``gated``: the chunks after the first wait for this event. Headers given override those
    derived (a Content-Length with a held body, say)."""
    answer = Answer()
    hdrs = {"content-type": JSON, **(headers or {})}
    if isinstance(chunks, list):
        if content_length:
            hdrs["content-length"] = str(sum(map(len, chunks)))
        else:
            hdrs["transfer-encoding"] = "chunked"
        listed = chunks

        async def generate() -> AsyncIterator[bytes]:
            for i, chunk in enumerate(listed):
                if i and gated is not None:
                    await gated.wait()
                yield chunk

        source = generate()
    else:
        hdrs["transfer-encoding"] = "chunked"
        source = chunks()
    hdrs.update(headers or {})
    if "content-length" in hdrs:
        hdrs.pop("transfer-encoding", None)
    done = False

    async def receive() -> dict[str, Any]:
        # A generator's end is known only once it is asked for one more chunk, as a server
        # knows a chunked body's end from its last (empty) chunk.
        nonlocal done
        if done:
            if disconnect:
                return {"type": "http.disconnect"}
            await asyncio.Event().wait()  # a live client: nothing more until it goes away
        chunk = await anext(source, None)
        if chunk is None:
            done = True
            if disconnect:
                return {"type": "http.disconnect"}
            return {"type": "http.request", "body": b"", "more_body": False}
        answer.chunks_read += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer.status = message["status"]
            answer.headers = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            answer.body += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in hdrs.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    await app(scope, receive, send)
    return answer


def make_app(**overrides: Any) -> FastAPI:
    settings = {
        "large_body_bytes": 4 * KiB,
        "max_concurrent_large": 1,
        "max_inflight_bytes": 64 * KiB,
        "max_body_bytes": 256 * KiB,
        "body_timeout_s": 5.0,
        **overrides,
    }
    app = create_app(Settings(**settings))
    # KiB-sized bodies stand for MiB-sized ones: charge everything over 1 KiB.
    adm = admission(app)
    adm.limits = dataclasses.replace(adm.limits, small_body_bytes=KiB)
    return app


def admission(app: FastAPI) -> Admission:
    adm: Admission = app.state.admission
    return adm


def assert_released(app: FastAPI) -> None:
    adm = admission(app)
    assert (adm.large, adm.inflight_bytes) == (0, 0), "a request kept what it held"


def run(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await asyncio.wait_for(coro, 30)

    return asyncio.run(main())


async def held(gate: asyncio.Event, first: bytes, rest: bytes) -> AsyncIterator[bytes]:
    """A body whose client sends ``first``, waits for ``gate``, then sends ``rest``."""
    yield first
    await gate.wait()
    yield rest


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.001)


async def hold_large(
    app: FastAPI, path: str = "/v1/losses/mse", doc: dict[str, Any] = SEED
) -> tuple[asyncio.Event, asyncio.Task[Answer]]:
    """Start a 10 KiB (large) request that sends 6000 bytes, then waits for the returned gate;
    return once it holds a large permit. Set the gate and await the task to finish it."""
    gate = asyncio.Event()
    body = padded(doc, 10 * KiB)
    first = asyncio.create_task(
        send_request(app, path, lambda: held(gate, body[:6000], body[6000:]))
    )
    await until(lambda: admission(app).large == 1)
    return gate, first


# --- through the app ---------------------------------------------------------------------------


def test_success_and_errors_release_everything() -> None:
    app = make_app()

    async def scenario() -> None:
        ok = await send_request(app, "/v1/losses/mse", [padded(SEED, 10 * KiB)])
        assert ok.status == 200, ok
        assert ok.json()["per_sample"] == SEED_MSE
        bad = await send_request(app, "/v1/losses/mse", [padded({"y_true": [[1]]}, 10 * KiB)])
        assert_problem(bad, 422)
        unknown = await send_request(app, "/v1/losses/nope", [padded(SEED, 10 * KiB)])
        assert_problem(unknown, 404)
        chunked = await send_request(
            app, "/v1/batch", [b'{"items": [', b" " * (300 * KiB)], content_length=False
        )
        assert_problem(chunked, 413)

    run(scenario())
    assert_released(app)


def test_a_large_request_past_the_permits_gets_503_before_its_body_is_read() -> None:
    app = make_app()

    async def scenario() -> None:
        gate, first = await hold_large(app)
        refused = await send_request(
            app, "/v1/losses/mse", [padded(SEED, 10 * KiB)[:5000], b" " * 5000]
        )
        problem = assert_problem(refused, 503)
        assert refused.headers["retry-after"] == "1"
        assert "LOSSD_MAX_CONCURRENT_LARGE" in problem["detail"]
        assert "error" not in problem
        assert refused.chunks_read == 2  # drained, so a client still uploading reads the 503
        assert "connection" not in refused.headers
        small = await send_request(app, "/v1/losses/mse", [json.dumps(SEED).encode()])
        assert small.status == 200  # small requests are not held up
        gate.set()
        done = await first
        assert done.status == 200 and done.json()["per_sample"] == SEED_MSE

    run(scenario())
    assert_released(app)


def test_v2_refusals_carry_the_protocols_error_member() -> None:
    app = make_app()
    infer = {
        "inputs": [
            {"name": "y_true", "datatype": "FP32", "shape": [2, 3], "data": [0, 1, 1, 0, 0, 1]},
            {"name": "y_pred", "datatype": "FP32", "shape": [2, 3], "data": [1, 1, 0, 1, 0, 1]},
        ]
    }

    async def scenario() -> None:
        gate, first = await hold_large(app, "/v2/models/mse/infer", infer)
        refused = await send_request(app, "/v2/models/mse/infer", [padded(infer, 10 * KiB)])
        problem = assert_problem(refused, 503)
        assert problem["error"] == problem["detail"]
        gate.set()
        done = await first
        assert done.status == 200, done
        assert done.json()["outputs"][0]["data"] == pytest.approx(SEED_MSE)

    run(scenario())
    assert_released(app)


def test_a_chunked_body_turning_large_is_shed_half_way() -> None:
    app = make_app()

    async def scenario() -> None:
        gate, first = await hold_large(app)
        chunks = [padded(SEED, 9 * KiB)[i : i + KiB] for i in range(0, 9 * KiB, KiB)]
        refused = await send_request(app, "/v1/losses/mse", chunks, content_length=False)
        assert_problem(refused, 503)
        assert refused.headers["retry-after"] == "1"
        assert refused.chunks_read == 9  # the rest was drained
        assert admission(app).large == 1
        gate.set()
        assert (await first).status == 200

    run(scenario())
    assert_released(app)


def test_the_byte_budget_sheds_while_a_large_request_runs() -> None:
    app = make_app(max_concurrent_large=4, max_inflight_bytes=16 * KiB)

    async def scenario() -> None:
        gate, first = await hold_large(app)
        refused = await send_request(app, "/v1/losses/mse", [padded(SEED, 12 * KiB)])
        assert "LOSSD_MAX_INFLIGHT_BYTES" in assert_problem(refused, 503)["detail"]
        fits = await send_request(app, "/v1/losses/mse", [padded(SEED, 5 * KiB)])
        assert fits.status == 200
        gate.set()
        assert (await first).status == 200
        alone = await send_request(app, "/v1/losses/mse", [padded(SEED, 20 * KiB)])
        assert alone.status == 200  # over the budget, but alone

    run(scenario())
    assert_released(app)


def test_expect_100_continue_is_refused_without_reading_the_body() -> None:
    app = make_app()

    async def scenario() -> None:
        gate, first = await hold_large(app)
        refused = await send_request(
            app,
            "/v1/losses/mse",
            [padded(SEED, 10 * KiB)],
            headers={"expect": "100-continue"},
        )
        assert_problem(refused, 503)
        assert refused.chunks_read == 0
        assert refused.headers["connection"] == "close"
        gate.set()
        await first

    run(scenario())
    assert_released(app)


def test_a_compressed_body_counts_as_large() -> None:
    app = make_app()

    async def scenario() -> None:
        gate, first = await hold_large(app)
        refused = await send_request(
            app, "/v2/models/mse/infer", [b"\x1f\x8b tiny"], headers={"content-encoding": "gzip"}
        )
        assert_problem(refused, 503)
        gate.set()
        await first

    run(scenario())
    assert_released(app)


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/v1/losses/mse", JSON), ("/v1/batch", JSON), ("/v1/losses/mse/stream", NDJSON)],
)
def test_a_stalled_body_gets_408_and_releases(path: str, content_type: str) -> None:
    app = make_app(body_timeout_s=0.2)

    async def stalls() -> AsyncIterator[bytes]:
        yield b'{"y_true": [[0, 1]], ' + b" " * (5 * KiB)  # large: takes a permit
        await asyncio.sleep(60)
        yield b"never"

    async def scenario() -> None:
        answer = await send_request(app, path, stalls, headers={"content-type": content_type})
        problem = assert_problem(answer, 408)
        assert "LOSSD_BODY_TIMEOUT_S" in problem["detail"]
        assert answer.headers["connection"] == "close"

    run(scenario())
    assert_released(app)


def test_a_stalled_v2_body_gets_408_with_error() -> None:
    app = make_app(body_timeout_s=0.2)

    async def stalls() -> AsyncIterator[bytes]:
        yield b'{"inputs": '
        await asyncio.sleep(60)
        yield b"[]}"

    async def scenario() -> None:
        answer = await send_request(app, "/v2/models/mse/infer", stalls)
        assert "error" in assert_problem(answer, 408)

    run(scenario())
    assert_released(app)


def test_a_slow_body_that_keeps_sending_is_not_timed_out() -> None:
    app = make_app(body_timeout_s=0.3)
    raw = json.dumps(SEED).encode()

    async def slow() -> AsyncIterator[bytes]:
        for i in range(0, len(raw), 8):
            await asyncio.sleep(0.05)  # 0.5 s in all, each gap well inside the timeout
            yield raw[i : i + 8]

    answer = run(send_request(app, "/v1/losses/mse", slow))
    assert answer.status == 200 and answer.json()["per_sample"] == SEED_MSE
    assert_released(app)


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/v1/losses/mse", JSON),
        ("/v1/losses/mse/stream", NDJSON),
        ("/v2/models/mse/infer", JSON),
    ],
)
def test_a_client_gone_half_way_releases_and_is_logged_as_499(path: str, content_type: str) -> None:
    app = make_app()
    body = padded(SEED, 10 * KiB)
    answer = run(
        send_request(
            app,
            path,
            [body[:6000], body[6000:8000]],
            headers={"content-type": content_type},
            content_length=False,
            disconnect=True,
        )
    )
    assert answer.status == 499
    assert_released(app)


def test_streams_are_charged_by_their_longest_line() -> None:
    app = make_app()
    line = json.dumps(SEED).encode() + b"\n"

    async def scenario() -> None:
        gate, first = await hold_large(app)
        # 20 KiB of short lines: not large, runs while the permit is taken
        many = await send_request(
            app,
            "/v1/losses/mse/stream",
            [line] * (20 * KiB // len(line)),
            headers={"content-type": NDJSON},
        )
        assert many.status == 200, many
        assert many.json()["count"] == 2 * (20 * KiB // len(line))
        # one line over the large threshold needs a permit
        long_line = padded(SEED, 5 * KiB) + b"\n"
        refused = await send_request(
            app, "/v1/losses/mse/stream", [long_line], headers={"content-type": NDJSON}
        )
        assert_problem(refused, 503)
        gate.set()
        assert (await first).status == 200

    run(scenario())
    assert_released(app)


def test_requests_without_a_body_pass_untouched() -> None:
    app = make_app(max_concurrent_large=1)

    async def scenario() -> None:
        gate, first = await hold_large(app)
        empty = await send_request(app, "/v1/losses/mse", [])
        assert_problem(empty, 400)  # an empty body is malformed JSON, not a 503
        gate.set()
        await first

    run(scenario())
    assert_released(app)


def test_a_request_cancelled_by_the_shutdown_gets_a_retryable_503() -> None:
    """uvicorn cancels what still runs when LOSSD_GRACEFUL_TIMEOUT_S is over."""
    app = make_app()

    async def never_finishes() -> AsyncIterator[bytes]:
        yield b'{"y_true": ' + b" " * (5 * KiB)
        await asyncio.Event().wait()
        yield b""

    async def scenario() -> Answer:
        task = asyncio.create_task(send_request(app, "/v2/models/mse/infer", never_finishes))
        await until(lambda: admission(app).large == 1)
        task.cancel()
        return await task

    answer = run(scenario())
    problem = assert_problem(answer, 503)
    assert problem["type"] == "urn:lossd:problem:shutting-down" and problem["error"]
    assert (answer.headers["retry-after"], answer.headers["connection"]) == ("1", "close")
    assert_released(app)


def test_bodies_below_the_large_size_count_against_the_budget_too() -> None:
    """Many medium bodies at once weigh as much as a large one: the budget bounds them all."""
    app = make_app(large_body_bytes=64 * KiB, max_concurrent_large=4, max_inflight_bytes=8 * KiB)

    async def scenario() -> None:
        gate = asyncio.Event()
        body = padded(SEED, 6 * KiB)
        first = asyncio.create_task(
            send_request(app, "/v1/losses/mse", lambda: held(gate, body[:4000], body[4000:]))
        )
        await until(lambda: admission(app).inflight_bytes > 0)
        refused = await send_request(app, "/v1/losses/mse", [padded(SEED, 5 * KiB)])
        assert "LOSSD_MAX_INFLIGHT_BYTES" in assert_problem(refused, 503)["detail"]
        tiny = await send_request(app, "/v1/losses/mse", [padded(SEED, 900)])
        assert tiny.status == 200  # not charged
        gate.set()
        assert (await first).status == 200

    run(scenario())
    assert_released(app)


# --- holds: what a body declares, how slowly it comes, what it inflates to (issue 11) ---------


def test_a_declared_length_holds_nothing_until_it_arrives() -> None:
    """One connection declaring a body as large as the budget and sending a byte used to hold
    the whole budget: only what has arrived is charged."""
    app = make_app(max_concurrent_large=4, max_inflight_bytes=16 * KiB)

    async def scenario() -> None:
        gate = asyncio.Event()
        declared = padded(SEED, 16 * KiB)
        first = asyncio.create_task(
            send_request(
                app,
                "/v1/losses/mse",
                [declared[:1], declared[1:]],
                headers={"content-length": str(len(declared))},
                content_length=False,
                gated=gate,
            )
        )
        await until(lambda: admission(app).large == 1)
        other = await send_request(app, "/v1/losses/mse", [padded(SEED, 12 * KiB)])
        assert other.status == 200, other  # the declared 16 KiB did not keep it out
        gate.set()
        assert (await first).status == 200

    run(scenario())
    assert_released(app)


def test_a_body_that_grows_past_the_budget_is_shed_half_way() -> None:
    app = make_app(max_concurrent_large=4, max_inflight_bytes=16 * KiB)

    async def scenario() -> None:
        gate, first = await hold_large(app)  # holds 6000 bytes
        body = padded(SEED, 12 * KiB)
        grows = await send_request(
            app,
            "/v1/losses/mse",
            [body[: 2 * KiB], body[2 * KiB :]],
            headers={"content-length": str(len(body))},
            content_length=False,
        )
        # 12 KiB declared would not fit: refused before it is read, as before.
        assert "LOSSD_MAX_INFLIGHT_BYTES" in assert_problem(grows, 503)["detail"]
        gate.set()
        assert (await first).status == 200

    run(scenario())
    assert_released(app)


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/v1/losses/mse", JSON), ("/v1/batch", JSON), ("/v2/models/mse/infer", JSON)],
)
def test_a_body_that_crawls_gets_408_and_releases(path: str, content_type: str) -> None:
    """Each gap is within LOSSD_BODY_TIMEOUT_S, but the body averages under the minimum rate
    once its grace is over: it would hold its permit for ever."""
    app = make_app(body_timeout_s=5.0, body_grace_s=0.2, body_min_rate=1000)

    async def crawls() -> AsyncIterator[bytes]:
        yield b'{"y_true": [[0, 1]], ' + b" " * (5 * KiB)  # large: takes a permit
        for _ in range(1000):
            await asyncio.sleep(0.05)
            yield b" "

    async def scenario() -> None:
        answer = await send_request(app, path, crawls, headers={"content-type": content_type})
        problem = assert_problem(answer, 408)
        assert "LOSSD_BODY_MIN_RATE" in problem["detail"]
        assert answer.headers["connection"] == "close"

    run(scenario())
    assert_released(app)


def test_a_streams_slow_lines_are_kept_but_a_crawling_line_is_not() -> None:
    """A stream is long-lived: lines may come seldom (only the gap applies between them), but
    its line in progress, what it holds, must come at the minimum rate."""
    app = make_app(body_timeout_s=5.0, body_grace_s=0.2, body_min_rate=1000)
    line = json.dumps(SEED).encode() + b"\n"

    async def seldom() -> AsyncIterator[bytes]:
        for _ in range(3):
            await asyncio.sleep(0.3)  # longer than the grace, between whole lines
            yield line

    async def crawling_line() -> AsyncIterator[bytes]:
        yield line
        yield line[:10]
        for byte in line[10:] * 100:
            await asyncio.sleep(0.05)
            yield bytes([byte])

    async def scenario() -> None:
        ok = await send_request(
            app, "/v1/losses/mse/stream", seldom, headers={"content-type": NDJSON}
        )
        assert ok.status == 200, ok
        cut = await send_request(
            app, "/v1/losses/mse/stream", crawling_line, headers={"content-type": NDJSON}
        )
        assert "LOSSD_BODY_MIN_RATE" in assert_problem(cut, 408)["detail"]

    run(scenario())
    assert_released(app)


def test_a_stream_whose_chunks_end_mid_line_keeps_going_past_the_grace() -> None:
    """Every chunk ends part-way through a line, as most do: the line in progress is a new one
    each time (the last ended in the chunk), so its pace starts again; the stream runs longer
    than the grace in all, each line well within the rate."""
    app = make_app(body_timeout_s=5.0, body_grace_s=0.2, body_min_rate=1000)
    # 0.05 s a chunk: ~0.4 s in all, twice the grace
    assert_all_lines_evaluated(app, lines=8, pause_s=0.05)


def test_a_stream_is_not_cut_for_the_time_its_own_evaluation_takes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While a batch is evaluated and the next one is full, the stream reads no more of the
    body: that time, longer than the grace here, is the server's, not the client's, and a line
    in progress across it is not cut."""
    app = make_app(body_timeout_s=5.0, body_grace_s=0.2, body_min_rate=1000)
    monkeypatch.setattr(ndjson, "MAX_BATCH_BYTES", 1)  # one chunk a batch: the body waits
    original = stream_route.for_each_line

    async def slow_lines(receive: Any, evaluate: Any) -> None:
        def slow(number: int, line: Any) -> None:
            time.sleep(0.3)  # longer than the grace
            evaluate(number, line)

        await original(receive, slow)

    monkeypatch.setattr(stream_route, "for_each_line", slow_lines)
    assert_all_lines_evaluated(app, lines=3, pause_s=0.01)


def assert_all_lines_evaluated(app: Any, lines: int, pause_s: float) -> None:
    """Stream ``lines`` seed lines to ``app`` in chunks that never hold a whole line nor end at
    a newline, ``pause_s`` before each: the stream answers 200 with every line evaluated, and
    the app is released."""
    line = json.dumps(SEED).encode() + b"\n"
    body = line * lines

    async def mid_lines() -> AsyncIterator[bytes]:
        step = len(line) - 7  # never a whole line, never ending at a newline
        for start in range(0, len(body), step):
            await asyncio.sleep(pause_s)
            yield body[start : start + step]

    async def scenario() -> None:
        answer = await send_request(
            app, "/v1/losses/mse/stream", mid_lines, headers={"content-type": NDJSON}
        )
        assert answer.status == 200, answer
        assert answer.json()["chunks"] == lines

    run(scenario())
    assert_released(app)


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_v1_inflates_gzip_and_deflate(encoding: str) -> None:
    app = make_app()
    raw = json.dumps(SEED).encode()
    body = gzipped(raw) if encoding == "gzip" else zlib.compress(raw)
    answer = run(
        send_request(app, "/v1/losses/mse", [body], headers={"content-encoding": encoding})
    )
    assert answer.status == 200, answer
    assert answer.json()["per_sample"] == SEED_MSE
    assert_released(app)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (json.dumps(SEED).encode(), "not valid gzip data"),  # plain JSON labelled gzip
        (gzipped(json.dumps(SEED).encode())[:-5], "truncated gzip data"),
        (gzipped(json.dumps(SEED).encode()) + b"garbage", "after the end of its gzip data"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/losses/mse", "/v2/models/mse/infer"])
def test_a_body_that_does_not_inflate_is_400(body: bytes, expected: str, path: str) -> None:
    app = make_app()
    answer = run(send_request(app, path, [body], headers={"content-encoding": "gzip"}))
    if path.startswith("/v2"):
        assert answer.status == 400 and expected in answer.json()["error"], answer
    else:
        assert expected in assert_problem(answer, 400)["detail"]
    assert_released(app)


@pytest.mark.parametrize(
    "path", ["/v1/losses/mse", "/v1/losses/mse/stream", "/v2/models/mse/infer"]
)
def test_an_unknown_content_encoding_is_415(path: str) -> None:
    app = make_app()
    answer = run(send_request(app, path, [b"{}"], headers={"content-encoding": "br"}))
    if path.startswith("/v2"):
        assert answer.status == 415 and "'br'" in answer.json()["error"], answer
    else:
        assert "'br'" in assert_problem(answer, 415)["detail"]
    assert_released(app)


def test_inflated_bytes_are_charged_against_the_budget() -> None:
    """Two compressed bodies inflating to more than the budget together were both admitted:
    a few hundred bytes of gzip were charged as if they inflated 16 times."""
    app = make_app(max_concurrent_large=4, max_inflight_bytes=16 * KiB)

    async def scenario() -> None:
        gate, first = await hold_large(app)  # holds 6000 bytes
        bomb = gzipped(padded(SEED, 12 * KiB))
        assert len(bomb) < 200
        refused = await send_request(
            app, "/v1/losses/mse", [bomb], headers={"content-encoding": "gzip"}
        )
        assert "LOSSD_MAX_INFLIGHT_BYTES" in assert_problem(refused, 503)["detail"]
        gate.set()
        assert (await first).status == 200
        alone = await send_request(
            app, "/v1/losses/mse", [bomb], headers={"content-encoding": "gzip"}
        )
        assert alone.status == 200, alone

    run(scenario())
    assert_released(app)


@pytest.mark.parametrize(
    "path", ["/v1/losses/mse", "/v2/models/mse/infer", "/v1/losses/mse/stream"]
)
def test_a_decompression_bomb_is_stopped_as_it_inflates(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """64 MiB of spaces in 64 KiB of gzip, with a 256 KiB body limit: 413 once the limit is
    passed, having inflated at most one piece more, never the whole bomb."""
    inflated: list[int] = []
    real_next = inflate.Inflater.next

    def counting_next(self: inflate.Inflater) -> bytes:
        piece = real_next(self)
        inflated.append(len(piece))
        return piece

    monkeypatch.setattr(inflate.Inflater, "next", counting_next)
    app = make_app()
    bomb = gzipped(b'{"y_true": [[1]], "y_pred": [[' + b" " * (64 * 1024 * KiB))
    content_type = NDJSON if path.endswith("/stream") else JSON
    headers = {"content-encoding": "gzip", "content-type": content_type}
    answer = run(send_request(app, path, [bomb], headers=headers))
    if path.startswith("/v2"):
        assert answer.status == 413 and "LOSSD_MAX_BODY_BYTES" in answer.json()["error"], answer
    else:
        assert_problem(answer, 413)
    assert sum(inflated) <= 256 * KiB + inflate.PIECE_BYTES
    assert_released(app)
