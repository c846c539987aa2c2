"""app/api/ndjson.py: the NDJSON line splitter (linear however the body is cut) and the batches
that carry lines to a worker thread, off the event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from starlette.requests import ClientDisconnect
from starlette.types import Message

from app.api import ndjson
from app.api.ndjson import INLINE_BODY_BYTES, MAX_BATCH_BYTES, LineSplitter, for_each_line

BODY = b'{"a": 1}\n\n{"b": 22}\n   \n{"c": 333}'
LINES = [(1, b'{"a": 1}'), (3, b'{"b": 22}'), (5, b'{"c": 333}')]


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def split(chunks: list[bytes]) -> list[tuple[int, bytes]]:
    splitter = LineSplitter()
    out = [(n, bytes(line)) for chunk in chunks for n, line in splitter.feed(chunk)]
    return out + [(n, bytes(line)) for n, line in splitter.finish()]


# --- the splitter -----------------------------------------------------------------------------


def test_lines_across_chunks_keep_their_numbers() -> None:
    for size in (1, 2, 3, 7, len(BODY)):
        assert split(pieces(BODY, size)) == LINES, size
    assert split([BODY + b"\n"]) == LINES
    assert split([b"\r\n \t\n\x0b\x0c\n"]) == []  # whitespace lines are blank, as strip() says


def test_a_long_line_in_many_chunks_comes_out_whole() -> None:
    line = b"x" * 10_000
    assert split([*pieces(line, 3), b"\nend"]) == [(1, line), (2, b"end")]


class Counted(bytes):
    """A piece of body that counts the bytes its ``find`` scans."""

    scanned = 0

    def find(self, sub: Any, start: Any = 0, *args: Any) -> int:
        found = super().find(sub, start, *args)
        Counted.scanned += (len(self) if found < 0 else found + 1) - start
        return found


def test_each_byte_is_scanned_once_however_small_the_pieces() -> None:
    # the review: a 60 MiB line cost 25x a 16 MiB one (the buffer re-split for every chunk)
    Counted.scanned = 0
    body = b"x" * 300_000 + b"\n" + b'{"a": 1}\n' * 1000
    got = split([Counted(piece) for piece in pieces(body, 2)])
    assert len(got) == 1001 and got[0] == (1, b"x" * 300_000)
    assert Counted.scanned == len(body)


def test_a_piece_after_a_long_unfinished_line_costs_its_own_size() -> None:
    # the review: after 32 MiB of an unfinished line, each 2-byte chunk cost 5.4 ms
    splitter = LineSplitter()
    assert list(splitter.feed(b"x" * 8 * 1024 * 1024)) == []
    Counted.scanned = 0
    for _ in range(1000):
        assert list(splitter.feed(Counted(b"yy"))) == []
    assert Counted.scanned == 2000  # the pending 8 MiB are never looked at again
    [(number, line)] = splitter.feed(b"\n")
    assert number == 1 and len(line) == 8 * 1024 * 1024 + 2000


# --- batches off the event loop ---------------------------------------------------------------


class Body:
    """A ``receive`` giving ``chunks``, then what ``end`` says: nothing more (the body ends with
    the last chunk), an exception to raise (the gate's 413, ...) or a message (a disconnect)."""

    def __init__(self, chunks: list[bytes], end: Exception | Message | None = None) -> None:
        self.chunks = list(chunks)
        self.end = end

    async def __call__(self) -> Message:
        await asyncio.sleep(0)
        if not self.chunks:
            if isinstance(self.end, Exception):
                raise self.end
            assert self.end is not None, "receive after the end of the body"
            return self.end
        chunk = self.chunks.pop(0)
        more = bool(self.chunks) or self.end is not None
        return {"type": "http.request", "body": chunk, "more_body": more}


def run_lines(
    body: Body, evaluate: Callable[[int, bytes], None] | None = None
) -> tuple[list[tuple[int, bytes]], set[bool]]:
    """The lines evaluated and, for each, whether it ran on the event loop's thread."""
    seen: list[tuple[int, bytes]] = []
    on_loop: set[bool] = set()

    async def main() -> None:
        loop_thread = threading.get_ident()

        def record(number: int, line: ndjson.Line) -> None:
            seen.append((number, bytes(line)))
            on_loop.add(threading.get_ident() == loop_thread)
            if evaluate is not None:
                evaluate(number, bytes(line))

        await for_each_line(body, record)

    asyncio.run(main())
    return seen, on_loop


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The thread hops of for_each_line (the size of each batch handed over)."""
    sizes: list[int] = []
    hop = ndjson.run_in_threadpool

    async def counted(fn: Any, work: bytearray, last: bool) -> Any:
        sizes.append(len(work))
        return await hop(fn, work, last)

    monkeypatch.setattr(ndjson, "run_in_threadpool", counted)
    return sizes


def test_lines_are_evaluated_off_the_loop_in_batches(hops: list[int]) -> None:
    # the review: 100k tiny lines held the event loop (and /healthz) for 1.2 s
    body = b'{"y_true": [1], "y_pred": [0]}\n' * 20_000
    seen, on_loop = run_lines(Body(pieces(body, 64 * 1024)))
    assert [n for n, _ in seen] == list(range(1, 20_001))
    assert on_loop == {False}  # no line on the event loop's thread
    assert len(hops) <= len(pieces(body, 64 * 1024)) + 1  # a hop per batch, not per line
    assert sum(hops) == len(body) and max(hops) <= MAX_BATCH_BYTES + 64 * 1024


def test_a_small_body_arrived_whole_is_evaluated_on_the_loop(hops: list[int]) -> None:
    seen, on_loop = run_lines(Body([BODY]))
    assert seen == LINES and on_loop == {True} and hops == []
    body = b"{}\n" * (INLINE_BODY_BYTES // 3 + 1)  # past the inline size: a worker thread
    seen, on_loop = run_lines(Body([body]))
    assert len(seen) == len(body) // 3 and on_loop == {False} and len(hops) == 1


def test_an_unfinished_line_in_tiny_chunks_is_no_hop_per_chunk(hops: list[int]) -> None:
    line = b"x" * (3 * MAX_BATCH_BYTES)
    seen, _ = run_lines(Body([*pieces(line, 1024), b"\n"]))
    assert seen == [(1, line)]
    assert len(hops) <= 4  # one per MAX_BATCH_BYTES gathered


@pytest.mark.parametrize("size", [1, 5, 64, 10_000])
def test_every_line_in_order_however_the_body_is_cut(size: int) -> None:
    body = b"".join(b'{"i": %d}\n\n' % i for i in range(2000)) + b'{"last": 1}'
    seen, _ = run_lines(Body(pieces(body, size)))
    expected = [(2 * i + 1, b'{"i": %d}' % i) for i in range(2000)] + [(4001, b'{"last": 1}')]
    assert seen == expected


def test_a_line_error_stops_the_stream() -> None:
    def fail_at_3(number: int, line: bytes) -> None:
        if number == 3:
            raise ValueError("line 3")

    body = Body(pieces(b"{}\n" * 10_000, 100))
    with pytest.raises(ValueError, match="line 3"):
        run_lines(body, fail_at_3)
    assert body.chunks  # the rest of the body was not read


@pytest.mark.parametrize("size", [3, 30, 3000])
def test_a_receive_error_comes_after_the_lines_before_it(size: int) -> None:
    # as line by line: every line that arrived before the gate's 413 (or 408, ...) is evaluated
    # first, and a bad one among them is the answer
    body = b"{}\n" * 1000
    seen: list[int] = []
    with pytest.raises(RuntimeError, match="gate"):
        run_lines(Body(pieces(body, size), RuntimeError("gate")), lambda n, _: seen.append(n))
    assert seen == list(range(1, 1001))

    def fail_at_last(number: int, line: bytes) -> None:
        if number == 1000:
            raise ValueError("line 1000")

    with pytest.raises(ValueError, match="line 1000"):
        run_lines(Body(pieces(body, size), RuntimeError("gate")), fail_at_last)


def test_a_client_gone_is_client_disconnect_and_its_lines_are_dropped() -> None:
    seen: list[int] = []
    gone = threading.Event()
    calls = 0

    async def receive() -> Message:
        nonlocal calls
        calls += 1
        if calls == 1:  # a chunk, then (while the thread works on it) the disconnect
            return {"type": "http.request", "body": b"{}\n" * 30_000, "more_body": True}
        while not seen:
            await asyncio.sleep(0.001)
        gone.set()
        return {"type": "http.disconnect"}

    def evaluate(number: int, line: ndjson.Line) -> None:
        seen.append(number)
        assert gone.wait(10)  # the disconnect arrives while the thread works
        time.sleep(0.001)  # 30 s for every line: the stop comes long before

    async def main() -> None:
        await for_each_line(receive, evaluate)

    with pytest.raises(ClientDisconnect):
        asyncio.run(main())
    assert 1 <= len(seen) < 1000  # the thread stopped early: nobody reads the answer
