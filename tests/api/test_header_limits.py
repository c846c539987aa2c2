"""The head limits of ``lossd serve``'s protocol (app/api/header_limits.py): the counting as plain
code, then the protocol driven byte by byte over a fake transport (no sockets, no clock: the
deadline's timer is fired by hand). Live sockets: tests/e2e/test_header_limits_live.py."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from app.api import header_limits
from app.api.header_limits import HeaderLimitedProtocol, HeadMeter
from app.settings import Settings

LIMIT = 4096


def test_a_head_is_counted_until_it_is_complete() -> None:
    meter = HeadMeter(100)
    meter.fed(60)
    assert (meter.room(), meter.over) == (40, False)
    meter.fed(40)
    assert meter.over
    meter.head_complete()
    meter.fed(10**9)  # a body: not counted
    assert (meter.open, meter.head_bytes, meter.over) == (False, 0, False)
    meter.message_complete()
    assert (meter.open, meter.room()) == (True, 100)  # the next head starts from nothing


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = False
        self.reading = True

    def write(self, data: Any) -> None:
        self.written += bytes(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


async def ok_app(scope: Any, receive: Any, send: Any) -> None:
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    limits = Settings(max_header_bytes=LIMIT, header_timeout_s=10)
    monkeypatch.setattr(header_limits, "get_settings", lambda: limits)
    yield limits


def connect(loop: asyncio.AbstractEventLoop) -> tuple[HeaderLimitedProtocol, FakeTransport]:
    config = Config(app=ok_app, http=HeaderLimitedProtocol, lifespan="off")
    config.load()
    protocol = HeaderLimitedProtocol(
        config=config, server_state=ServerState(), app_state={}, _loop=loop
    )
    transport = FakeTransport()
    protocol.connection_made(transport)
    return protocol, transport


def request(extra_header: bytes = b"", body: bytes = b"") -> bytes:
    return (
        b"POST /x HTTP/1.1\r\nHost: a\r\n"
        + extra_header
        + b"Content-Length: %d\r\n\r\n" % len(body)
    ) + body


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_a_head_over_the_limit_gets_431_and_the_excess_is_never_parsed(settings: Settings) -> None:
    async def scenario() -> None:
        protocol, transport = connect(asyncio.get_running_loop())
        fed: list[int] = []
        protocol.parser = _Spy(protocol.parser, fed)
        huge = b"X-Big: " + b"a" * (1024 * 1024) + b"\r\n"
        protocol.data_received(request(huge)[: 256 * 1024])  # one read of a big head
        assert transport.written.startswith(b"HTTP/1.1 431 ")
        assert b"LOSSD_MAX_HEADER_BYTES" in transport.written
        assert transport.closed
        assert sum(fed) <= LIMIT  # the rest of the read never reached the parser

    asyncio.run(scenario())


class _Spy:
    """A parser that records how many bytes it is fed."""

    def __init__(self, parser: Any, fed: list[int]) -> None:
        self.parser = parser
        self.fed = fed

    def feed_data(self, data: bytes) -> None:
        self.fed.append(len(data))
        self.parser.feed_data(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.parser, name)


def test_a_head_trickled_in_small_reads_is_refused_at_the_limit(settings: Settings) -> None:
    async def scenario() -> None:
        protocol, transport = connect(asyncio.get_running_loop())
        protocol.data_received(b"GET / HTTP/1.1\r\n")
        for _ in range(LIMIT // 100 + 1):
            protocol.data_received(b"X-A: " + b"a" * 93 + b"\r\n")
            if transport.closed:
                break
        assert transport.written.startswith(b"HTTP/1.1 431 ")

    asyncio.run(scenario())


def test_a_large_body_after_a_small_head_is_not_counted(settings: Settings) -> None:
    async def scenario() -> None:
        protocol, transport = connect(asyncio.get_running_loop())
        body = b" " * (64 * 1024)
        data = request(body=body)
        protocol.data_received(data[:300])  # head and a little body in one read
        protocol.data_received(data[300:])  # the rest of the body, far over the head limit
        await settle()
        assert transport.written.startswith(b"HTTP/1.1 200 "), transport.written[:100]
        assert not transport.closed

    asyncio.run(scenario())


def test_pipelined_requests_in_one_read_are_each_served(settings: Settings) -> None:
    async def scenario() -> None:
        protocol, transport = connect(asyncio.get_running_loop())
        # More bytes in one read than the limit, but each head is small.
        many = request(body=b"x" * 1000) * 10
        assert len(many) > LIMIT
        protocol.data_received(many)
        for _ in range(50):
            await settle()
        assert transport.written.count(b"HTTP/1.1 200 ") == 10
        assert not transport.closed

    asyncio.run(scenario())


def test_an_incomplete_head_is_answered_408_at_its_deadline(settings: Settings) -> None:
    async def scenario() -> None:
        protocol, transport = connect(asyncio.get_running_loop())
        protocol.data_received(b"GET / HTTP/1.1\r\nHost: a\r\nX-Half: ")
        assert protocol.head_timer is not None
        protocol.head_timer._run()  # the deadline
        assert transport.written.startswith(b"HTTP/1.1 408 ")
        assert b"LOSSD_HEADER_TIMEOUT_S" in transport.written
        assert transport.closed

    asyncio.run(scenario())


def test_a_connection_that_sends_nothing_is_closed_at_the_deadline(settings: Settings) -> None:
    async def scenario() -> None:
        protocol, transport = connect(asyncio.get_running_loop())
        assert protocol.head_timer is not None
        protocol.head_timer._run()
        assert (transport.written, transport.closed) == (b"", True)

    asyncio.run(scenario())


def test_a_complete_head_arms_no_deadline_and_keeps_the_connection(settings: Settings) -> None:
    async def scenario() -> None:
        protocol, transport = connect(asyncio.get_running_loop())
        for _ in range(3):
            protocol.data_received(request(body=b"{}"))
            assert protocol.head_timer is None  # the accept's deadline is gone too
            await settle()
        assert transport.written.count(b"HTTP/1.1 200 ") == 3
        assert not transport.closed

    asyncio.run(scenario())
