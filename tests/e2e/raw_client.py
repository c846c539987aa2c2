"""HTTP/1.1 by hand on a raw socket: a whole request as bytes (:func:`raw_request`), or a client
that lets a test decide when each piece of the body goes out (:class:`HeldRequest`): slow
uploads, stalls, clients that vanish half-way."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit


def raw_request(
    base_url: str, request: bytes, timeout_s: float = 10.0
) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` bytes on a new TCP connection and read the response until the server
    closes it (send ``Connection: close``). Returns (status, lower-cased headers, body)."""
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout_s) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data or not _complete(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return parse_response(data)


def parse_response(data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Split raw HTTP/1.1 response bytes into (status, lower-cased headers, body)."""
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def _complete(data: bytes) -> bool:
    """Whether a response with a Content-Length has all of its body."""
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.decode("latin-1").split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == "content-length":
            return len(body) >= int(value)
    return False


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
