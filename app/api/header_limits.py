"""The HTTP/1.1 protocol ``lossd serve`` runs: uvicorn's httptools protocol with a bound on request
heads (request line and headers), which uvicorn's httptools protocol does not have.

- **Size** (``LOSSD_MAX_HEADER_BYTES``): httptools keeps a head's bytes until it is complete, and
  joins them at a cost that grows with the square of their size (64 MiB of one header: 3.4 s of
  CPU and 64 MB of RSS). So the bytes of a head are counted *before* the parser sees them; past
  the limit the connection gets ``431 Request Header Fields Too Large`` and is closed, the
  excess never parsed. Bytes are fed while a head is open at most up to the limit at a time;
  a chunk that ends a head and goes on into a body (or a pipelined request) is fed as it is, so
  a head is refused after at most the limit plus one read (256 KiB) of bytes, in bounded CPU.
- **Time** (``LOSSD_HEADER_TIMEOUT_S``): a connection must complete each request head within this
  time of its first byte (a new connection: of being accepted). Otherwise it gets a 408 (or, if
  it sent nothing, is closed quietly, as uvicorn closes an idle keep-alive connection); a
  response still being written is finished first. uvicorn's ``timeout_keep_alive`` covers the
  idle time between requests only.

The common case costs nothing extra: a head that arrives in one read is counted with one
addition and never arms a timer. h11, uvicorn's other parser, has a size limit but answers 400
and parses more slowly; this keeps httptools' speed. :func:`app.cli.uvicorn_options` passes this
class to uvicorn by its import string (workers are spawned processes).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.api.problems import title
from app.settings import get_settings

#: The import string uvicorn's ``http`` option takes.
PROTOCOL = "app.api.header_limits:HeaderLimitedProtocol"


def _answer(status: int, reason: str, slug: str, detail: str) -> bytes:
    """A complete problem+json response that closes the connection. It carries the Open Inference
    Protocol's ``error`` member too, as the gate's 408 and 503 do: the path may not be known."""
    body = orjson.dumps(
        {
            "type": f"urn:lossd:problem:{slug}",
            "title": title(slug),
            "status": status,
            "detail": detail,
            "errors": [],
            "error": detail,
        }
    )
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/problem+json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class HeadMeter:
    """The bytes of the request head in progress on one connection (plain code, no I/O).

    :meth:`room` says how many of the next bytes may be fed to the parser while a head is open;
    the protocol calls :meth:`fed` before feeding them, :meth:`head_complete` and
    :meth:`message_complete` from the parser's callbacks."""

    __slots__ = ("head_bytes", "limit", "open")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = True  # the next bytes belong to a request head
        self.head_bytes = 0

    def room(self) -> int:
        """How many more bytes may be fed before the head is over the limit (when it is open)."""
        return self.limit - self.head_bytes

    def fed(self, size: int) -> None:
        """``size`` bytes go to the parser now."""
        if self.open:
            self.head_bytes += size

    def head_complete(self) -> None:
        """The parser has the whole head: what follows is a body."""
        self.open = False
        self.head_bytes = 0

    def message_complete(self) -> None:
        """The request, body included, is complete: what follows is the next head."""
        self.open = True

    @property
    def over(self) -> bool:
        """The open head has used its limit and is still not complete."""
        return self.open and self.head_bytes >= self.limit


class HeaderLimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing request heads over a size (431) or a time (408)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self.head = HeadMeter(settings.max_header_bytes)
        self.header_timeout_s = settings.header_timeout_s
        self.head_timer: asyncio.TimerHandle | None = None
        self.head_started = False  # bytes of the open head have arrived
        self.refused = False  # a head was refused: the rest of the connection is not read

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()  # a new connection must send a head in time too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        head = self.head
        while head.open:
            room = head.room()
            if room <= 0:
                self._refuse(431)
                return
            self.head_started = True
            if len(data) <= room:  # the common case: all of it may be head
                head.fed(len(data))
                super().data_received(data)
                break
            head.fed(room)
            super().data_received(data[:room])
            data = data[room:]
            if self.transport.is_closing():  # the parser refused it (400)
                return
        else:
            super().data_received(data)  # a body, and maybe the start of a pipelined head
        if head.open and self.head_started and self.head_timer is None:
            self._arm_head_timer()  # a head still incomplete after a read: it has a deadline

    def on_headers_complete(self) -> None:
        self.head.head_complete()
        self.head_started = False
        self._disarm_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.head.message_complete()

    def _arm_head_timer(self) -> None:
        self.head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if self.transport.is_closing() or not self.head.open:
            return
        if self.head_started:
            self._refuse(408)
        elif self.cycle is None:  # a new connection that sent nothing: closed without a word
            self.transport.close()

    def _refuse(self, status: int) -> None:
        """Answer a head over its limit (431) or its deadline (408), and close; when a response
        to an earlier request is still being written, read nothing more and close after it."""
        self._disarm_head_timer()
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False
            self.refused = True
            self.flow.pause_reading()
            return
        self.transport.write(_REFUSALS[status])
        self.transport.close()


_REFUSALS = {
    431: _answer(
        431,
        "Request Header Fields Too Large",
        "header-too-large",
        "the request line and headers are larger than the limit (LOSSD_MAX_HEADER_BYTES)",
    ),
    408: _answer(
        408,
        "Request Timeout",
        "header-timeout",
        "the request line and headers did not arrive in time (LOSSD_HEADER_TIMEOUT_S)",
    ),
}
