"""A minimal HTTP/1.1 client for timing: one keep-alive connection, bodies sent as prepared bytes.

``http.client`` adds little of its own to a request, so the time measured is the server's (plus
loopback), the same for lossd and the baselines.
"""

from __future__ import annotations

import http.client
import statistics
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass
class Timing:
    """Wall-clock times of repeated requests, in seconds."""

    samples: list[float]
    status: int
    body: bytes

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


class Client:
    """Keep-alive connection to ``127.0.0.1:port``."""

    def __init__(self, port: int, timeout_s: float = 600.0) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)

    def close(self) -> None:
        self.conn.close()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """Send one request (an iterable body goes chunked) and read the whole response.

        A bytes body is sent again once on a new connection if the server had closed the idle
        one (uvicorn closes keep-alive connections after 5 s, e.g. while the next body is built).
        """
        chunked = body is not None and not isinstance(body, bytes)
        try:
            return self._send(method, path, body, headers, chunked)
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            if chunked:
                raise
            self.conn.close()
            return self._send(method, path, body, headers, chunked)

    def _send(
        self,
        method: str,
        path: str,
        body: bytes | Iterable[bytes] | None,
        headers: Mapping[str, str] | None,
        chunked: bool,
    ) -> tuple[int, bytes]:
        self.conn.request(
            method, path, body=body, headers=dict(headers or {}), encode_chunked=chunked
        )
        response = self.conn.getresponse()
        return response.status, response.read()

    def time(
        self,
        path: str,
        body: bytes,
        headers: Mapping[str, str],
        repeats: int,
        warmup: int = 1,
    ) -> Timing:
        """POST ``body`` ``warmup + repeats`` times; the times of the last ``repeats``."""
        samples = []
        status, answer = 0, b""
        for i in range(warmup + repeats):
            start = time.perf_counter()
            status, answer = self.request("POST", path, body, headers)
            elapsed = time.perf_counter() - start
            if status != 200:
                raise RuntimeError(f"POST {path} answered {status}: {answer[:500]!r}")
            if i >= warmup:
                samples.append(elapsed)
        return Timing(samples, status, answer)
