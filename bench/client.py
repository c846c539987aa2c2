"""The benchmarks' HTTP client: one ``httpx.Client`` (keep-alive, one pool for every server).

Requests to different servers go through the same client, so when a benchmark compares two
servers the client's own cost is the same on both sides. Bodies are sent as prepared bytes (or a
generator of chunks, sent chunked).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import httpx

#: Bodies over this are sent in slices of this size (see the module's doc).
SLICE_BYTES = 1024 * 1024


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
    """Keep-alive HTTP/1.1 connections to the servers on 127.0.0.1 (full URLs)."""

    def __init__(self, timeout_s: float = 600.0) -> None:
        self.http = httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        url: str,
        body: bytes | Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """Send one request (an iterable body goes chunked) and read the whole response.

        A bytes body is sent again once on a new connection if the server closed the idle one
        (uvicorn closes keep-alive connections after 5 s, e.g. while the next body is built).
        """
        try:
            response = self._send(method, url, body, headers)
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
            if body is not None and not isinstance(body, bytes):
                raise
            response = self._send(method, url, body, headers)
        return response.status_code, response.content

    def _send(
        self,
        method: str,
        url: str,
        body: bytes | Iterable[bytes] | None,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        if isinstance(body, bytes) and len(body) > SLICE_BYTES:
            # Content-Length given, httpx sends the slices as one body, not chunked.
            sized = {**(headers or {}), "content-length": str(len(body))}
            return self.http.request(method, url, content=_slices(body), headers=sized)
        return self.http.request(method, url, content=body, headers=headers)

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> tuple[float, bytes]:
        """POST ``body``; (wall seconds, answer), raising on any status but 200."""
        start = time.perf_counter()
        status, answer = self.request("POST", url, body, headers)
        elapsed = time.perf_counter() - start
        if status != 200:
            raise RuntimeError(f"POST {url} answered {status}: {answer[:500]!r}")
        return elapsed, answer

    def time(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        repeats: int,
        warmup: int = 1,
    ) -> Timing:
        """POST ``body`` ``warmup + repeats`` times; the times of the last ``repeats``."""
        samples = []
        answer = b""
        for i in range(warmup + repeats):
            elapsed, answer = self.post(url, body, headers)
            if i >= warmup:
                samples.append(elapsed)
        return Timing(samples, 200, answer)


def _slices(body: bytes) -> Iterator[bytes]:
    view = memoryview(body)
    for start in range(0, len(body), SLICE_BYTES):
        yield view[start : start + SLICE_BYTES]  # type: ignore[misc]
