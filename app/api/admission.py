"""Load shedding and body timeouts, as pure ASGI middleware (no body is buffered here).

Each worker process admits a request before the application reads its body:

- **large requests** (a body over ``LOSSD_LARGE_BODY_BYTES``, known from Content-Length, or counted
  while a chunked body arrives; a compressed body always counts as large) need one of
  ``LOSSD_MAX_CONCURRENT_LARGE`` permits;
- **in-flight bytes**: the bodies of the requests in progress may hold at most
  ``LOSSD_MAX_INFLIGHT_BYTES``, except that a request finding no other one holding bytes is
  always taken (so any body up to ``LOSSD_MAX_BODY_BYTES`` can run, on its own). A request is
  charged its Content-Length (or the bytes received so far), a compressed body ``INFLATION``
  times that (up to ``LOSSD_MAX_BODY_BYTES``, the most it may inflate to), an NDJSON stream its
  longest line, which is what it holds in memory. Bodies of at most ``small_body_bytes`` (64 KiB)
  are not charged: the routes decode them one at a time on the event loop (``/v2`` on the thread
  pool, 40 at most), so they cannot add up, and a large body is not kept out by the trickle of
  small requests beside it.

Past a limit the answer is 503 problem+json with ``Retry-After``, never a 500. When the decision
comes before the body is read, the body is first read and discarded (up to ``LOSSD_MAX_BODY_BYTES``)
so that a client still uploading gets the 503 intact instead of a connection reset; a client that
sent ``Expect: 100-continue`` is answered at once, with ``Connection: close``, and sends nothing.

A body that stalls (no data for ``LOSSD_BODY_TIMEOUT_S``) ends with 408 problem+json and
``Connection: close``. Permits and bytes go back when the application returns, on every path:
success, error, timeout, 503 half-way through a chunked body, client disconnect. A request still
running when the graceful shutdown runs out of time (uvicorn cancels it) gets a 503 too.

Decoding multiplies memory (a JSON body is parsed into Python objects before it becomes NumPy
arrays): peak RSS per worker is about 70 MB + F x max(LOSSD_MAX_INFLIGHT_BYTES,
LOSSD_MAX_BODY_BYTES), with F measured at 2 for binary tensors, 5 for JSON of full-precision
floats, 17-26 for JSON of short numbers and 31 for /v2 JSON ``data`` of one-digit integers; the
README states the bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.bodies import INLINE_BODY_BYTES
from app.api.problems import ProblemError

MiB = 1024 * 1024
#: What a compressed body is charged, per byte: numbers in JSON deflate 2 to 5 times, binary
#: floats hardly at all; more extreme bodies are held back by the large-request permits.
INFLATION = 16
#: Seconds a shed client is asked to wait; a few hundred milliseconds frees most permits.
RETRY_AFTER_S = 1
#: The status a request gets in logs and metrics when its client went away before the body was
#: complete (nginx's convention). Nobody receives it.
CLIENT_CLOSED = 499


def is_v2(path: str) -> bool:
    """Whether ``path`` belongs to the Open Inference Protocol, whose clients read ``error``."""
    return path == "/v2" or path.startswith("/v2/")


class EarlyProblemError(ProblemError):
    """A problem the middleware answers itself (401, 408, 503). On ``/v2`` paths the body also
    carries the protocol's ``error`` member, the message Triton's clients show."""

    def __init__(self, status: int, detail: str, *, path: str, **kwargs: Any) -> None:
        super().__init__(status, detail, **kwargs)
        self.v2 = is_v2(path)

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        if self.v2:
            body["error"] = self.detail
        return body


class OverloadedError(EarlyProblemError):
    """503: a limit of this worker is reached; the client should retry after ``Retry-After``."""

    def __init__(self, detail: str, *, path: str, close: bool = False) -> None:
        headers = {"Retry-After": str(RETRY_AFTER_S)}
        if close:
            headers["Connection"] = "close"
        super().__init__(
            503,
            f"{detail}; retry after {RETRY_AFTER_S} s",
            slug="overloaded",
            path=path,
            headers=headers,
        )


class ShuttingDownError(EarlyProblemError):
    """503: the graceful shutdown's time (LOSSD_GRACEFUL_TIMEOUT_S) ran out before this request
    was answered; another replica, or this one restarted, will take the retry."""

    def __init__(self, *, path: str) -> None:
        super().__init__(
            503,
            f"the server is shutting down; retry after {RETRY_AFTER_S} s",
            slug="shutting-down",
            path=path,
            headers={"Retry-After": str(RETRY_AFTER_S), "Connection": "close"},
        )


class BodyTimeoutError(EarlyProblemError):
    """408: the body stalled. The connection is closed: the rest of the body may still come."""

    def __init__(self, timeout_s: float, *, path: str) -> None:
        super().__init__(
            408,
            f"no request body data arrived for {timeout_s:g} s (LOSSD_BODY_TIMEOUT_S)",
            slug="body-timeout",
            path=path,
            headers={"Connection": "close"},
        )


async def answer_early(
    problem: ProblemError,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    drain_bytes: int,
    timeout_s: float,
) -> None:
    """Answer ``problem`` before the application has read the body, without resetting a client
    that is still uploading it: read and discard the body first (at most ``drain_bytes``, each
    chunk within ``timeout_s``), and close the connection when it could not be drained."""
    headers = dict(scope["headers"])
    drained = b"100-continue" not in headers.get(b"expect", b"").lower() and await drain(
        receive, drain_bytes, timeout_s
    )
    if not drained:
        problem.headers["Connection"] = "close"
    await problem.response()(scope, receive, send)


async def drain(receive: Receive, limit: int, timeout_s: float) -> bool:
    """Read and discard the request body; whether all of it was read (not past ``limit``, no
    stall, no disconnect)."""
    seen = 0
    while True:
        try:
            async with asyncio.timeout(timeout_s):  # no task per chunk, unlike wait_for
                message = await receive()
        except TimeoutError:
            return False
        if message["type"] != "http.request":
            return False
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return True
        if seen > limit:
            return False


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    """The settings admission works with (per worker process)."""

    large_body_bytes: int
    max_concurrent_large: int
    max_inflight_bytes: int
    max_body_bytes: int
    body_timeout_s: float
    #: Bodies up to this size are not charged (decoded one at a time: see the module's doc).
    small_body_bytes: int = INLINE_BODY_BYTES


class Admission:
    """The permits and bytes held by the requests of this process. All of them run on one event
    loop and each change is synchronous, so there is nothing to lock."""

    def __init__(self, limits: AdmissionLimits) -> None:
        self.limits = limits
        self.large = 0  # large requests in progress
        self.inflight_bytes = 0  # bytes charged to the requests in progress

    def ticket(self) -> Ticket:
        """An empty claim for one request."""
        return Ticket(self)


class Ticket:
    """What one request holds: its charged bytes and maybe a large permit."""

    __slots__ = ("admission", "charge", "large")

    def __init__(self, admission: Admission) -> None:
        self.admission = admission
        self.charge = 0
        self.large = False

    def claim(self, charge: int, large: bool) -> str | None:
        """Grow the claim to ``charge`` bytes (and a large permit when ``large``); on refusal, why
        (the claim is then unchanged)."""
        adm, limits = self.admission, self.admission.limits
        if large and not self.large and adm.large >= limits.max_concurrent_large:
            return (
                f"{adm.large} large requests are in progress, the most this worker takes "
                "(LOSSD_MAX_CONCURRENT_LARGE)"
            )
        if charge <= limits.small_body_bytes:
            charge = 0
        extra = charge - self.charge
        others = adm.inflight_bytes - self.charge  # bytes held by other requests
        if extra > 0 and others > 0 and adm.inflight_bytes + extra > limits.max_inflight_bytes:
            return (
                f"request bodies in progress hold {adm.inflight_bytes / MiB:.1f} MiB and this one "
                f"needs {charge / MiB:.1f} MiB of this worker's budget of "
                f"{limits.max_inflight_bytes / MiB:.1f} MiB (LOSSD_MAX_INFLIGHT_BYTES)"
            )
        if large and not self.large:
            self.large = True
            adm.large += 1
        if extra > 0:
            self.charge = charge
            adm.inflight_bytes += extra
        return None

    def release(self) -> None:
        """Give everything back (idempotent)."""
        self.admission.inflight_bytes -= self.charge
        self.admission.large -= self.large
        self.charge = 0
        self.large = False


class LineMeter:
    """The longest line of an NDJSON body seen so far (what a stream holds in memory)."""

    __slots__ = ("current", "longest")

    def __init__(self) -> None:
        self.current = 0  # bytes of the line not finished yet
        self.longest = 0

    def feed(self, chunk: bytes) -> int:
        """Account for ``chunk``; the longest line so far, the unfinished one included."""
        first = chunk.find(b"\n")
        if first < 0:
            self.current += len(chunk)
        else:
            last = chunk.rfind(b"\n")
            longest = self.current + first
            if last - first - 1 > max(self.longest, longest):  # an inner line might be longer
                longest = max(longest, *map(len, chunk[first + 1 : last].split(b"\n")))
            self.longest = max(self.longest, longest)
            self.current = len(chunk) - last - 1
        return max(self.longest, self.current)


def inflated(size: int, limits: AdmissionLimits) -> int:
    """The charge of a compressed body of ``size`` bytes."""
    return min(limits.max_body_bytes, INFLATION * size)


class AdmissionMiddleware:
    """Admit requests by the size of their bodies, shed the rest with 503, time out stalled
    bodies with 408 (see the module's docstring). ``streaming(path)`` tells the NDJSON stream
    endpoints, charged by their longest line rather than by their whole body."""

    def __init__(
        self,
        app: ASGIApp,
        admission: Admission,
        streaming: Callable[[str], bool] = lambda path: False,
    ) -> None:
        self.app = app
        self.admission = admission
        self.streaming = streaming

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limits = self.admission.limits
        headers = dict(scope["headers"])
        length_header = headers.get(b"content-length")
        declared = int(length_header) if length_header and length_header.isdigit() else None
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        if (declared is None and not chunked) or declared == 0:
            await self.app(scope, receive, send)  # no body: nothing to admit or time out
            return
        path: str = scope["path"]
        streaming = self.streaming(path)
        if declared is not None and declared > limits.max_body_bytes and not streaming:
            await self.app(scope, receive, send)  # answered 413 before reading, elsewhere
            return
        compressed = headers.get(b"content-encoding", b"identity").lower() not in (b"", b"identity")
        ticket = self.admission.ticket()
        try:
            if declared is not None and not streaming:
                # Decided before the body is read.
                charge = inflated(declared, limits) if compressed else declared
                refusal = ticket.claim(charge, compressed or declared > limits.large_body_bytes)
                if refusal is not None:
                    await answer_early(
                        OverloadedError(refusal, path=path),
                        scope,
                        receive,
                        send,
                        drain_bytes=limits.max_body_bytes,
                        timeout_s=limits.body_timeout_s,
                    )
                    return
            body = _BodyWatch(ticket, receive, path, compressed, LineMeter() if streaming else None)
            await self._call_app(scope, body, send)
        finally:
            ticket.release()

    async def _call_app(self, scope: Scope, body: _BodyWatch, send: Send) -> None:
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, body.receive, watched_send)
        except EarlyProblemError as problem:
            if not started:  # raised by receive() where no exception handler answered it
                await problem.response()(scope, body.receive, send)
        except ClientDisconnect:
            if not body.disconnected:
                raise
            if not started:  # nobody reads this; it tells the logs and metrics what happened
                closed = ProblemError(
                    CLIENT_CLOSED,
                    "the client closed the connection before its body was complete",
                    slug="client-closed-request",
                )
                await closed.response()(scope, body.receive, send)
        except asyncio.CancelledError:
            # uvicorn cancels the requests still running when its graceful shutdown times out:
            # answer a retryable 503 rather than drop the connection (and log a 500).
            if started:
                raise
            await ShuttingDownError(path=scope["path"]).response()(scope, body.receive, send)


class _BodyWatch:
    """The ``receive`` of one admitted request: charges the body as it arrives, sheds it when a
    limit is reached half-way, times out a stalled body."""

    def __init__(
        self,
        ticket: Ticket,
        receive: Receive,
        path: str,
        compressed: bool,
        lines: LineMeter | None,
    ) -> None:
        self.ticket = ticket
        self.inner = receive
        self.path = path
        self.compressed = compressed
        self.lines = lines
        self.received = 0
        self.complete = False
        self.disconnected = False

    async def receive(self) -> Message:
        if self.complete:  # after the body, e.g. waiting for a disconnect: no timeout
            message = await self.inner()
            self.disconnected = self.disconnected or message["type"] == "http.disconnect"
            return message
        limits = self.ticket.admission.limits
        try:
            # asyncio.timeout, not wait_for: wait_for wraps every chunk in a new task, a cost
            # each small request paid for nothing.
            async with asyncio.timeout(limits.body_timeout_s):
                message = await self.inner()
        except TimeoutError:
            raise BodyTimeoutError(limits.body_timeout_s, path=self.path) from None
        if message["type"] == "http.disconnect":
            self.disconnected = True
            return message
        chunk: bytes = message.get("body", b"")
        more = bool(message.get("more_body", False))
        self.complete = not more
        self.received += len(chunk)
        if self.lines is not None:
            charge = self.lines.feed(chunk)
            large = charge > limits.large_body_bytes
        elif self.compressed:
            charge, large = inflated(self.received, limits), True
        else:
            charge, large = self.received, self.received > limits.large_body_bytes
        refusal = self.ticket.claim(charge, large)
        if refusal is not None:
            drained = not more or await drain(
                self.inner, limits.max_body_bytes, limits.body_timeout_s
            )
            self.complete = True
            raise OverloadedError(refusal, path=self.path, close=not drained)
        return message
