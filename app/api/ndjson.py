"""NDJSON bodies: lines split in linear time and evaluated in a worker thread, a batch at a time.

Parsing and evaluating a line costs tens of microseconds of CPU even for a tiny one; done on the
event loop, 100k lines stall every other request of the worker (its health probes included) for
seconds. So the event loop only receives the body and hands what has arrived to one worker thread
as a batch: one thread hop per batch, not per line. While a batch is evaluated, the next one
accumulates (up to :data:`MAX_BATCH_BYTES`, then the body waits), so the batches grow with the
load and a stream is never more than one batch ahead of its evaluation. A slow client's lines are
evaluated as soon as they arrive, so a bad line is answered while the client is still sending, as
before. A body small enough to have arrived whole (:data:`INLINE_BODY_BYTES`) is evaluated on the
event loop, where a thread hop would cost more than the lines.

Lines are evaluated in order, each exactly once, and what a receive raises (the gate's 413, 408
or 503) is raised only after every line that arrived before it has been evaluated, so the answer
is the one line-by-line evaluation gives, however the body was chunked. A client that went away
gets nothing, so its lines are not evaluated further: the batch in the thread stops at its next
line (as it does when a line fails or the request is cancelled).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable, Iterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive

Line = bytes | bytearray
#: Bytes that may wait for the worker thread while it evaluates the batch before them.
MAX_BATCH_BYTES = 1024 * 1024
#: A whole body up to this size is evaluated on the event loop (a few dozen lines at most).
INLINE_BODY_BYTES = 4 * 1024


class LineSplitter:
    """The numbered non-blank lines of a body fed in pieces (lines are numbered from 1, blank
    ones counted). Linear in the body: each byte is searched for a newline once, and a line
    split between pieces is collected in one growing buffer (amortized O(1) per byte, however
    small the pieces) and handed on as it is, not joined again."""

    __slots__ = ("number", "pending")

    def __init__(self) -> None:
        self.pending = bytearray()  # the unfinished line
        self.number = 0  # of the last finished line

    def feed(self, data: Line) -> Iterator[tuple[int, Line]]:
        """The lines that ``data`` finishes; its unfinished end is kept for the next piece."""
        with memoryview(data) as view:
            start = 0
            while (newline := data.find(b"\n", start)) >= 0:
                self.number += 1
                if self.pending:
                    self.pending += view[start:newline]
                    line: Line = self.pending
                    self.pending = bytearray()
                else:
                    line = data[start:newline]
                if not _blank(line):
                    yield self.number, line
                start = newline + 1
            if start < len(data):
                self.pending += view[start:]

    def finish(self) -> Iterator[tuple[int, Line]]:
        """The last line, when the body does not end with a newline."""
        line, self.pending = self.pending, bytearray()
        if not _blank(line):
            yield self.number + 1, line


def _blank(line: Line) -> bool:
    return not line or line.isspace()  # as line.strip() == b"", without copying the line


async def for_each_line(receive: Receive, evaluate: Callable[[int, Line], None]) -> None:
    """Call ``evaluate(number, line)`` for each non-blank line of the body ``receive`` gives, in
    order, in batches in a worker thread (see the module's doc). Raises what ``evaluate`` raises
    (the rest of the body is then left unread), else what ``receive`` raised (a client that went
    away: :class:`ClientDisconnect`)."""
    splitter = LineSplitter()
    stop = threading.Event()  # set when nobody will read the answer: the thread stops early

    def run(work: bytearray, last: bool) -> None:
        lines = splitter.feed(work)
        if last:
            lines = itertools.chain(lines, splitter.finish())
        for number, line in lines:
            if stop.is_set():
                return
            evaluate(number, line)

    batch = bytearray()  # arrived, not handed to the thread yet
    lines_in_batch = False  # whether batch finishes a line
    complete = False  # the whole body has arrived
    failure: Exception | None = None  # what receiving raised, raised after the batches
    handed_any = handed_last = False
    running: asyncio.Future[None] | None = None  # the batch in the worker thread
    receiving: asyncio.Future[Message] | None = None  # a receive racing it
    try:
        while True:
            if running is None and not handed_last:
                ended = complete or failure is not None
                if lines_in_batch or ended or len(batch) >= MAX_BATCH_BYTES:
                    work, batch, lines_in_batch = batch, bytearray(), False
                    handed_last = ended
                    if complete and not handed_any and len(work) <= INLINE_BODY_BYTES:
                        run(work, True)  # a small body that arrived whole: no thread hop
                    elif work or complete:
                        running = asyncio.ensure_future(run_in_threadpool(run, work, complete))
                    handed_any = True
            if running is None and handed_last:
                break
            message = None
            if running is None:  # nothing to race: no task either
                try:
                    message = await (receive() if receiving is None else receiving)
                except Exception as exc:
                    failure = exc
                receiving = None
            else:  # receive while the thread works, unless the batch is full: the body waits
                more = not complete and failure is None and len(batch) < MAX_BATCH_BYTES
                if receiving is None and more:
                    receiving = asyncio.ensure_future(receive())
                waiting: set[asyncio.Future[Any]] = {running}
                if receiving is not None:
                    waiting.add(receiving)
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if running.done():
                    finished, running = running, None
                    finished.result()  # a line's problem
                if receiving is not None and receiving.done():
                    arrived, receiving = receiving, None
                    try:
                        message = arrived.result()
                    except Exception as exc:
                        failure = exc
            if message is None:
                continue
            if message["type"] == "http.disconnect":
                failure = ClientDisconnect()
                stop.set()  # the client is gone: what it sent is not evaluated any further
                batch = bytearray()
            else:
                chunk = message.get("body", b"")
                batch += chunk
                lines_in_batch = lines_in_batch or b"\n" in chunk
                complete = not message.get("more_body", False)
    except BaseException:
        stop.set()  # a line's problem, or the request cancelled: the rest is not evaluated
        raise
    finally:
        await _settle(receiving, running)
    if failure is not None:
        raise failure


async def _settle(
    receiving: asyncio.Future[Message] | None, running: asyncio.Future[None] | None
) -> None:
    """After an error: stop the receive in flight and let the thread finish its batch (a thread
    cannot be stopped, and it writes to state its caller owns); their errors are dropped."""
    if receiving is not None:
        receiving.cancel()
    if running is not None:
        await asyncio.wait({running})
    for future in (receiving, running):
        if future is not None and future.done() and not future.cancelled():
            future.exception()  # retrieved: no "exception was never retrieved" warning
