"""Request bodies sent with ``Content-Encoding: gzip`` or ``deflate``, inflated as they arrive, in
pieces of bounded size (plain code, no ASGI).

The request gate (:mod:`app.api.gate`) is the only caller: it feeds each compressed chunk in,
takes the inflated bytes out a piece at a time and counts each piece against the body limit and
the in-flight budget *before* asking for the next. So a decompression bomb is stopped after at
most one piece past a limit (a 64 KiB read of deflate can inflate to 64 MiB: never at once),
and the routes of both protocols receive plain bytes.
"""

from __future__ import annotations

import zlib

#: Most inflated bytes produced at once: small enough that a limit is checked often and the event
#: loop is not held long (about 0.3 ms of zlib), large enough that the per-piece overhead is noise.
PIECE_BYTES = 256 * 1024
#: The encodings lossd inflates, by their ``Content-Encoding`` token, with zlib's ``wbits``:
#: 31 is gzip framing, 15 zlib framing, which is what HTTP calls "deflate" (RFC 9110, 8.4.1.2).
ENCODINGS = {b"gzip": 31, b"x-gzip": 31, b"deflate": 15}


class InflateError(Exception):
    """The body is not valid data of its encoding (a 400)."""


class Inflater:
    """One body's decompressor: :meth:`feed` a chunk, then :meth:`next` until not
    :attr:`pending`; :meth:`finish` once the body is over."""

    __slots__ = ("full", "name", "piece_bytes", "tail", "zlib")

    def __init__(self, encoding: bytes, piece_bytes: int = PIECE_BYTES) -> None:
        self.name = encoding.decode("latin-1")
        self.zlib = zlib.decompressobj(wbits=ENCODINGS[encoding])
        self.piece_bytes = piece_bytes
        self.tail = b""  # compressed bytes fed but not inflated yet
        self.full = False  # the last piece was full: zlib may hold more output

    @property
    def pending(self) -> bool:
        """More inflated bytes may come from what was fed (call :meth:`next`)."""
        return not self.zlib.eof and (bool(self.tail) or self.full)

    def feed(self, data: bytes) -> None:
        """Queue ``data``, the next compressed bytes of the body."""
        if data and self.zlib.eof:
            raise self._trailing()
        self.tail = self.tail + data if self.tail else data

    def next(self) -> bytes:
        """At most ``piece_bytes`` inflated bytes of what was fed (maybe none)."""
        try:
            piece = self.zlib.decompress(self.tail, self.piece_bytes)
        except zlib.error as exc:
            raise InflateError(f"request body is not valid {self.name} data: {exc}") from None
        self.tail = self.zlib.unconsumed_tail
        self.full = len(piece) == self.piece_bytes
        if self.zlib.unused_data:
            raise self._trailing()
        return piece

    def finish(self) -> None:
        """The body is over: it must have ended exactly where the compressed data ends."""
        if not self.zlib.eof:
            raise InflateError(f"request body is truncated {self.name} data")

    def _trailing(self) -> InflateError:
        return InflateError(f"request body has bytes after the end of its {self.name} data")
