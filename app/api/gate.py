"""The request gate: the one pure-ASGI layer that bounds request bodies, inside the API-key check
and outside the routes. For each HTTP request it

1. looks up what the route is (:func:`route_policy`, once): which protocol answers, and whether
   its body is an NDJSON stream;
2. reads the body's headers once (:class:`BodyHeaders`: Content-Length, Transfer-Encoding,
   Content-Encoding, Expect); a Content-Length that is not a number is a 400, a Content-Encoding
   other than gzip or deflate a 415;
3. refuses a body over ``LOSSD_MAX_BODY_BYTES`` with 413, before reading it when Content-Length
   says so, while reading it otherwise, so an oversized body is never buffered whole, and gets
   this final answer rather than a 503 to retry. A stream is exempt from the whole-body limit;
   each of its lines is bounded by it instead;
4. admits the request by the size of its body (:mod:`app.api.accounting`: large-request permits
   and this worker's in-flight bytes), or sheds it with 503 and ``Retry-After``. A body is
   charged what has arrived, its claim growing chunk by chunk (a 503 half-way when the budget is
   spent), not what it declares: one connection declaring 64 MiB and sending a byte holds no
   more than that byte, so the bytes in progress, and docs/memory.md's bound, are those that
   are really in memory (the routes' buffer grows as the body arrives too:
   :func:`app.api.bodies.read_body`). A body declaring more than fits now is refused before it
   is read. A large permit is taken on a large declared length; (6) bounds how long a body that
   does not come can keep it;
5. inflates a compressed body (:mod:`app.api.inflate`) as it arrives, a bounded piece at a time,
   counting and charging the *inflated* bytes (413 past the body limit, 503 past the budget)
   before it inflates more: a decompression bomb stops at the first piece past a limit. The
   routes of both protocols get plain bytes (the request's Content-Encoding and Content-Length
   are taken out of what they see); data that does not inflate, is truncated or has bytes after
   its end is a 400;
6. counts the body bytes once, as they arrive, for all of the above, and ends a body that
   stalls (no data for ``LOSSD_BODY_TIMEOUT_S``) or crawls (under ``LOSSD_BODY_MIN_RATE`` bytes/s
   on average once ``LOSSD_BODY_GRACE_S`` is over: :class:`~app.api.accounting.Pace`) with 408
   and ``Connection: close``, so a permit or bytes are held only by a body that keeps coming.
   A stream is long-lived by design: it has no total deadline, but each gap is bounded and its
   line in progress (what it holds) must arrive at the minimum rate.

When a 503 is decided before the body is read, the body is first read and discarded (up to
``LOSSD_MAX_BODY_BYTES``, at the same pace) so that a client still uploading gets the answer intact
instead of a connection reset; a client that sent ``Expect: 100-continue`` is answered at once, with
``Connection: close``, and sends nothing. Permits and bytes go back when the application returns, on
every path: success, error, timeout, 413 or 503 half-way through a chunked body, client disconnect
(logged as 499). A request still running when the graceful shutdown runs out of time (uvicorn
cancels it) gets a 503 too.

Answers are in the format of the route's protocol (:class:`GateError`): RFC 9457 problem+json,
except on ``/v2``, where the Open Inference Protocol answers ``{"error": "<message>"}`` (400,
413, 415).
The answers every operation shares whatever its protocol, 401, 408 and 503, are problem+json on
``/v2`` too, with the message also in ``error`` (what Triton's clients show), as the OpenAPI
document declares them once for all operations.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.accounting import Admission, AdmissionLimits, LineMeter, LineTooLongError, Pace, Ticket
from app.api.inflate import ENCODINGS, InflateError, Inflater
from app.api.policy import RoutePolicy, policy_of
from app.api.problems import ProblemError

#: Seconds a shed client is asked to wait; a few hundred milliseconds frees most permits.
RETRY_AFTER_S = 1
#: The status a request gets in logs and metrics when its client went away before the body was
#: complete (nginx's convention). Nobody receives it.
CLIENT_CLOSED = 499


# --- Answers ----------------------------------------------------------------------------------


class GateError(ProblemError):
    """An answer given before (or instead of) the route's, in the format of its protocol."""

    def __init__(self, status: int, detail: str, *, policy: RoutePolicy, **kwargs: Any) -> None:
        super().__init__(status, detail, **kwargs)
        self.policy = policy

    def response(self, v2: bool | None = None) -> Response:
        return super().response(self.policy.v2 if v2 is None else v2)


def bad_content_length(policy: RoutePolicy) -> GateError:
    """400: Content-Length is not a number."""
    return GateError(400, "Content-Length is not a number", policy=policy)


def body_too_large(policy: RoutePolicy, limit: int) -> GateError:
    """413: the body is over the limit."""
    return GateError(
        413,
        f"request body is larger than the limit of {limit} bytes (LOSSD_MAX_BODY_BYTES)",
        slug="body-too-large",
        policy=policy,
    )


def line_too_long(policy: RoutePolicy, error: LineTooLongError) -> GateError:
    """413: a line of a stream is over the limit."""
    return GateError(
        413,
        f"line {error.line} is longer than the limit of {error.limit} bytes (LOSSD_MAX_BODY_BYTES)",
        slug="line-too-long",
        errors=[(f"/line/{error.line}", "line over the size limit")],
        policy=policy,
    )


def overloaded(policy: RoutePolicy, reason: str, *, close: bool = False) -> GateError:
    """503: a limit of this worker is reached; the client should retry after ``Retry-After``."""
    headers = {"Retry-After": str(RETRY_AFTER_S)}
    if close:
        headers["Connection"] = "close"
    return GateError(
        503,
        f"{reason}; retry after {RETRY_AFTER_S} s",
        slug="overloaded",
        headers=headers,
        policy=policy,
    )


def shutting_down(policy: RoutePolicy) -> GateError:
    """503: the graceful shutdown's time (LOSSD_GRACEFUL_TIMEOUT_S) ran out before this request
    was answered; another replica, or this one restarted, will take the retry."""
    return GateError(
        503,
        f"the server is shutting down; retry after {RETRY_AFTER_S} s",
        slug="shutting-down",
        headers={"Retry-After": str(RETRY_AFTER_S), "Connection": "close"},
        policy=policy,
    )


def body_timeout(policy: RoutePolicy, timeout_s: float) -> GateError:
    """408: the body stalled. The connection is closed: the rest of the body may still come."""
    return GateError(
        408,
        f"no request body data arrived for {timeout_s:g} s (LOSSD_BODY_TIMEOUT_S)",
        slug="body-timeout",
        headers={"Connection": "close"},
        policy=policy,
    )


def body_too_slow(policy: RoutePolicy, limits: AdmissionLimits) -> GateError:
    """408: the body arrives too slowly to be worth its hold. The connection is closed."""
    return GateError(
        408,
        f"the request body arrived at under {limits.body_min_rate} bytes/s on average after its "
        f"first {limits.body_grace_s:g} s (LOSSD_BODY_MIN_RATE)",
        slug="body-too-slow",
        headers={"Connection": "close"},
        policy=policy,
    )


def unsupported_encoding(policy: RoutePolicy, encoding: bytes) -> GateError:
    """415: a Content-Encoding lossd does not inflate."""
    name = encoding.decode("latin-1")
    return GateError(
        415,
        f"unsupported Content-Encoding {name!r}; use gzip, deflate or none",
        slug="unsupported-content-encoding",
        errors=[("/header/content-encoding", "expected gzip, deflate or identity")],
        policy=policy,
    )


def not_inflatable(policy: RoutePolicy, error: InflateError) -> GateError:
    """400: a compressed body that does not inflate."""
    return GateError(400, str(error), slug="malformed-content-encoding", policy=policy)


def client_closed(policy: RoutePolicy) -> GateError:
    """499: nobody reads it; it tells the logs and metrics what happened."""
    return GateError(
        CLIENT_CLOSED,
        "the client closed the connection before its body was complete",
        slug="client-closed-request",
        policy=policy,
    )


async def answer_early(
    problem: ProblemError,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    expect_continue: bool,
    drain_bytes: int,
    timeout_s: float,
    pace: Pace | None = None,
) -> None:
    """Answer ``problem`` before the application has read the body, without resetting a client
    that is still uploading it: read and discard the body first (at most ``drain_bytes``, each
    chunk within ``timeout_s``, and in ``pace`` when given), unless the client waits for
    ``100 Continue``, and close the connection when the body was not drained."""
    drained = not expect_continue and await drain(receive, drain_bytes, timeout_s, pace)
    if not drained:
        problem.headers["Connection"] = "close"
    await problem.response()(scope, receive, send)


async def drain(receive: Receive, limit: int, timeout_s: float, pace: Pace | None = None) -> bool:
    """Read and discard the request body; whether all of it was read (not past ``limit``, no
    stall, no disconnect, and in ``pace`` when given: a crawling body is not waited for)."""
    seen = 0
    loop = asyncio.get_running_loop()
    while True:
        when = loop.time() + timeout_s if pace is None else pace.deadline(loop.time())[0]
        try:
            async with asyncio.timeout_at(when):  # no task per chunk, unlike wait_for
                message = await receive()
        except TimeoutError:
            return False
        if message["type"] != "http.request":
            return False
        size = len(message.get("body", b""))
        seen += size
        if pace is not None:
            pace.arrived(size)
        if not message.get("more_body", False):
            return True
        if seen > limit:
            return False


# --- The gate ---------------------------------------------------------------------------------


@dataclass(slots=True)
class BodyHeaders:
    """What a request's headers say about its body."""

    length: int | None  # Content-Length, when given and a number
    invalid_length: bool  # Content-Length given but not a number
    chunked: bool
    encoding: bytes | None  # a Content-Encoding other than identity, lower-case
    expect_continue: bool

    @classmethod
    def read(cls, raw: Iterable[tuple[bytes, bytes]]) -> BodyHeaders:
        """Read ``raw``, a scope's headers (lower-case names)."""
        headers = dict(raw)
        length = headers.get(b"content-length")
        valid = length is None or length.isdigit()
        encoding = headers.get(b"content-encoding", b"").strip().lower()
        return cls(
            length=int(length) if length is not None and valid else None,
            invalid_length=not valid,
            chunked=b"chunked" in headers.get(b"transfer-encoding", b"").lower(),
            encoding=None if encoding in (b"", b"identity") else encoding,
            expect_continue=b"100-continue" in headers.get(b"expect", b"").lower(),
        )

    @property
    def empty(self) -> bool:
        """No body: no length and not chunked (HTTP/1.1), or a length of 0."""
        return (self.length is None and not self.chunked) or self.length == 0


def _bodiless(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """No Transfer-Encoding and no Content-Length but ``0``: no body (``BodyHeaders.empty``,
    nothing invalid to refuse). One pass over the headers, nothing built."""
    for name, value in headers:
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return False
    return True


class RequestGate:
    """Body limit, admission and body timeout for every HTTP request (see the module's doc)."""

    def __init__(self, app: ASGIApp, admission: Admission) -> None:
        self.app = app
        self.admission = admission

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # A request without a body (a GET, a probe) has nothing to count, admit or time out:
        # it goes straight to the application, whose own awaitable is returned, so this layer
        # adds neither a coroutine of its own nor a lookup of the route's policy to it.
        if scope["type"] != "http" or _bodiless(scope["headers"]):
            return self.app(scope, receive, send)
        return self._gate(scope, receive, send)

    async def _gate(self, scope: Scope, receive: Receive, send: Send) -> None:
        policy = policy_of(scope)
        head = BodyHeaders.read(scope["headers"])
        if head.invalid_length:
            await bad_content_length(policy).response()(scope, receive, send)
            return
        if head.empty:
            await self.app(scope, receive, send)  # nothing to count, admit or time out
            return
        limits = self.admission.limits
        if head.encoding is not None and head.encoding not in ENCODINGS:
            await unsupported_encoding(policy, head.encoding).response()(scope, receive, send)
            return
        declared = None if policy.streaming else head.length  # a stream is judged by its lines
        if declared is not None and declared > limits.max_body_bytes:
            await body_too_large(policy, limits.max_body_bytes).response()(scope, receive, send)
            return
        compressed = head.encoding is not None
        ticket = self.admission.ticket()
        try:
            if declared is not None:  # decided before the body is read
                large = compressed or declared > limits.large_body_bytes
                # What is declared is only checked (it may never come); a permit is taken now.
                refusal = ticket.check(0 if compressed else declared, large)
                if refusal is None:
                    if large:
                        ticket.claim(0, large)
                else:
                    await answer_early(
                        overloaded(policy, refusal),
                        scope,
                        receive,
                        send,
                        expect_continue=head.expect_continue,
                        drain_bytes=limits.max_body_bytes,
                        timeout_s=limits.body_timeout_s,
                        pace=Pace(limits, asyncio.get_running_loop().time()),
                    )
                    return
            body = _Body(ticket, receive, policy, head.encoding)
            if compressed:  # the routes see the inflated body, of a length not known yet
                scope = dict(scope)
                scope["headers"] = [
                    (name, value)
                    for name, value in scope["headers"]
                    if name not in (b"content-encoding", b"content-length")
                ]
            await self._call_app(scope, body, send)
        finally:
            ticket.release()

    async def _call_app(self, scope: Scope, body: _Body, send: Send) -> None:
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, body.receive, watched_send)
        except GateError as problem:
            if not started:  # raised by receive() where no exception handler answered it
                await problem.response()(scope, body.receive, send)
        except ClientDisconnect:
            if not body.disconnected:
                raise
            if not started:
                await client_closed(body.policy).response()(scope, body.receive, send)
        except asyncio.CancelledError:
            # uvicorn cancels the requests still running when its graceful shutdown times out:
            # answer a retryable 503 rather than drop the connection (and log a 500).
            if started:
                raise
            await shutting_down(body.policy).response()(scope, body.receive, send)


class _Body:
    """The ``receive`` of one admitted request: counts the body as it arrives (inflated, when it
    is compressed), refuses it past the limit (413), charges it and sheds it when admission's
    limits are reached half-way (503), times out a stalled or crawling body (408)."""

    def __init__(
        self, ticket: Ticket, receive: Receive, policy: RoutePolicy, encoding: bytes | None
    ) -> None:
        limits = ticket.admission.limits
        self.ticket = ticket
        self.limits = limits
        self.inner = receive
        self.policy = policy
        self.inflater = None if encoding is None else Inflater(encoding)
        self.lines = LineMeter(limits.max_body_bytes) if policy.streaming else None
        self.loop = asyncio.get_running_loop()
        # A stream's rate applies to its line in progress, once one is (Pace.follow_line).
        self.pace = Pace(limits, None if policy.streaming else self.loop.time())
        self.received = 0  # bytes given to the application (inflated)
        self.more = True  # the client has more to send
        self.complete = False
        self.disconnected = False
        self.returned_at: float | None = None  # when receive last gave the application a chunk

    async def receive(self) -> Message:
        # The time the application took before asking again (a stream's batch being evaluated)
        # is not the client's: its bytes wait in the socket meanwhile.
        if self.returned_at is not None:
            self.pace.exclude(self.loop.time() - self.returned_at)
        try:
            return await self._receive()
        finally:
            self.returned_at = self.loop.time()

    async def _receive(self) -> Message:
        if self.complete:  # after the body, e.g. waiting for a disconnect: no timeout
            message = await self.inner()
            self.disconnected = self.disconnected or message["type"] == "http.disconnect"
            return message
        inflater = self.inflater
        if inflater is not None and inflater.pending:  # more of a chunk already received
            await asyncio.sleep(0)  # others run between the pieces of one chunk
            return await self._inflate(inflater, b"")
        when, paced = self.pace.deadline(self.loop.time())
        try:
            # asyncio.timeout_at, not wait_for: wait_for wraps every chunk in a new task, a
            # cost each small request paid for nothing.
            async with asyncio.timeout_at(when):
                message = await self.inner()
        except TimeoutError:
            if paced:
                raise body_too_slow(self.policy, self.limits) from None
            raise body_timeout(self.policy, self.limits.body_timeout_s) from None
        if message["type"] == "http.disconnect":
            self.disconnected = True
            return message
        chunk: bytes = message.get("body", b"")
        self.more = bool(message.get("more_body", False))
        if self.lines is None:
            self.pace.arrived(len(chunk))  # the wire's bytes (the charge: what they inflate to)
        if inflater is not None:
            return await self._inflate(inflater, chunk)
        await self._admit(chunk, self.more)
        return message

    async def _inflate(self, inflater: Inflater, chunk: bytes) -> Message:
        """The next inflated piece of the body (from ``chunk``, just received, or from the last
        chunk's rest), counted and charged, as a message for the application."""
        try:
            inflater.feed(chunk)
            piece = inflater.next()
            more = self.more or inflater.pending
            if not more:
                inflater.finish()
        except InflateError as exc:
            problem = not_inflatable(self.policy, exc)
            if not await self._refuse_rest():
                problem.headers["Connection"] = "close"
            raise problem from None
        await self._admit(piece, more)
        return {"type": "http.request", "body": piece, "more_body": more}

    async def _admit(self, chunk: bytes, more: bool) -> None:
        """Count ``chunk``, the next bytes the application gets, against the limits; raise the
        answer when they are passed."""
        limits = self.limits
        self.received += len(chunk)
        if self.lines is not None:
            finished = self.lines.lines
            try:
                charge = self.lines.feed(chunk)
            except LineTooLongError as exc:
                raise line_too_long(self.policy, exc) from None
            large = charge > limits.large_body_bytes
            ended = self.lines.lines > finished
            self.pace.follow_line(self.loop.time(), self.lines.current, ended)
        elif self.received > limits.max_body_bytes:
            raise body_too_large(self.policy, limits.max_body_bytes)
        else:
            charge = self.received
            large = self.inflater is not None or charge > limits.large_body_bytes
        self.complete = not more
        refusal = self.ticket.claim(charge, large)
        if refusal is not None:
            drained = await self._refuse_rest()
            raise overloaded(self.policy, refusal, close=not drained)

    async def _refuse_rest(self) -> bool:
        """The body is refused half-way: read and discard what the client still sends, so that
        it reads the answer; whether all of it was read (else the connection is closed)."""
        drained = not self.more or await drain(
            self.inner, self.limits.max_body_bytes, self.limits.body_timeout_s, self.pace
        )
        self.more = False
        self.complete = True
        return drained
