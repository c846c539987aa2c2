"""A client that sends an HTTP/1.1 request by hand on a raw socket, so a test decides when each
piece of the body goes out: slow uploads, stalls, clients that vanish half-way."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from tests.e2e.helpers import parse_response


class HeldRequest:
    """A request sent by hand on a raw socket: headers now, the body when the test says."""

    def __init__(self, url: str, path: str, body: bytes, *, chunked: bool = False) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
        self.body = body
        self.chunked = chunked
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}"
        content_type = "application/x-ndjson" if path.endswith("/stream") else "application/json"
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {parts.hostname}\r\nContent-Type: {content_type}\r\n"
            f"{framing}\r\nConnection: close\r\n\r\n"
        )
        self.sock.sendall(head.encode())
        self.sent = 0
        self.finished = False
        self.lock = threading.Lock()

    def send(self, size: int | None = None) -> None:
        """Send the next ``size`` bytes of the body (all the rest by default); safe to call from
        several threads, and a no-op once the body is complete."""
        with self.lock:
            if self.finished:
                return
            piece = self.body[self.sent : None if size is None else self.sent + size]
            self.sent += len(piece)
            self.finished = self.sent == len(self.body)
            if self.chunked:
                if piece:
                    self.sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                if self.finished:
                    self.sock.sendall(b"0\r\n\r\n")
            else:
                self.sock.sendall(piece)

    @contextmanager
    def trickling(self) -> Iterator[None]:
        """Meanwhile, send a few bytes every 0.3 s: slow but steady, never timed out."""
        stop = threading.Event()

        def trickle() -> None:
            while not stop.wait(0.3):
                self.send(16)

        thread = threading.Thread(target=trickle, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def response(self) -> tuple[int, dict[str, str], bytes]:
        """Read the whole response (the server closes: ``Connection: close``)."""
        data = b""
        while chunk := self.sock.recv(65536):
            data += chunk
        self.sock.close()
        return parse_response(data)

    def close(self) -> None:
        self.sock.close()
