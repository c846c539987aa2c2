"""Shared pieces of the v1 end-to-end tests: the seed example, problem checks, a raw socket."""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx

# The seed document's worked example; Keras prints [0.6666667 0.33333334] for its MSE.
SEED_TRUE = [[0, 1, 1], [0, 0, 1]]
SEED_PRED = [[1, 1, 0], [1, 0, 1]]
SEED_MSE = [0.6666667, 0.33333334]
PROBLEM = "application/problem+json"
NDJSON = "application/x-ndjson"


def assert_problem(
    response: httpx.Response, status: int, pointer: str | None = None
) -> dict[str, Any]:
    """``response`` is an RFC 9457 problem with ``status`` (and an error at ``pointer``)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert_problem_body(body, status, pointer)
    return body


def assert_problem_body(body: dict[str, Any], status: int, pointer: str | None = None) -> None:
    """``body`` has every RFC 9457 member lossd promises, with ``status``."""
    assert {"type", "title", "status", "detail", "errors"} <= set(body), body
    assert body["status"] == status, body
    assert isinstance(body["type"], str) and body["type"], body
    assert isinstance(body["title"], str) and body["title"], body
    assert isinstance(body["detail"], str) and body["detail"], body
    assert isinstance(body["errors"], list), body
    for error in body["errors"]:
        assert set(error) == {"pointer", "detail"}, error
    if pointer is not None:
        assert pointer in [e["pointer"] for e in body["errors"]], body


def ndjson(*lines: dict[str, Any]) -> bytes:
    """NDJSON: one JSON object per line."""
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


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
