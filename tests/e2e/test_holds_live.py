"""What a slow or oversized client may hold, on a real ``lossd serve`` over raw sockets: request
heads bounded in size (431) and time (408 or a quiet close) by lossd's httptools protocol, while
keep-alive and pipelined requests go on as before; bodies charged what has arrived, and cut
when they crawl under the minimum rate (408)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.conftest import ServerProcess, lossd_serve_argv
from tests.e2e.raw_client import HeldRequest, parse_response
from tests.helpers import SEED_MSE, SEED_PRED, SEED_TRUE

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(120)]

MiB = 1024 * 1024
SEED = json.dumps({"y_true": SEED_TRUE, "y_pred": SEED_PRED}).encode()
HEADER_TIMEOUT_S = 1
ENV = {
    "LOSSD_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
    "LOSSD_BODY_GRACE_S": "1",
    "LOSSD_BODY_MIN_RATE": "2000",
    "LOSSD_LOG_LEVEL": "warning",
}


@pytest.fixture(scope="module")
def server(start_process: Any) -> Iterator[ServerProcess]:
    proc: ServerProcess = start_process(env=ENV, argv=lossd_serve_argv)
    yield proc
    assert "Traceback" not in proc.output(), proc.output()


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=15)


def post(body: bytes = SEED, close: bool = False) -> bytes:
    connection = "Connection: close\r\n" if close else ""
    return (
        b"POST /v1/losses/mse HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + connection.encode()
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body
    )


def read_responses(sock: socket.socket, count: int) -> list[tuple[int, dict[str, str], bytes]]:
    """``count`` responses with Content-Length from ``sock``, leaving it open."""
    data = b""
    responses = []
    while len(responses) < count:
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, rest = data.partition(b"\r\n\r\n")
        status, headers, _ = parse_response(head + b"\r\n\r\n")
        length = int(headers["content-length"])
        while len(rest) < length:
            rest += sock.recv(65536)
        responses.append((status, headers, rest[:length]))
        data = rest[length:]
    return responses


def read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def test_a_header_over_the_limit_gets_431(server: ServerProcess) -> None:
    with connect(server.url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (80 * 1024))
        status, headers, body = parse_response(read_until_closed(sock))
    assert status == 431
    assert headers["connection"] == "close"
    assert "LOSSD_MAX_HEADER_BYTES" in json.loads(body)["detail"]


def test_a_huge_header_is_refused_without_reading_it_all(server: ServerProcess) -> None:
    """32 MiB of header got a 200 and cost seconds of CPU: the connection is now refused after
    the limit, before the client can even send it all."""
    refused = False
    with connect(server.url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        try:
            for _ in range(32 * 16):
                sock.sendall(b"a" * (64 * 1024))
        except (BrokenPipeError, ConnectionResetError):
            refused = True
        if not refused:
            data = read_until_closed(sock)
            refused = not data or parse_response(data)[0] == 431
    assert refused
    assert httpx.get(server.url + "/healthz").status_code == 200


def test_a_head_that_stops_half_way_gets_408_and_is_closed(server: ServerProcess) -> None:
    with connect(server.url) as sock:
        sock.sendall(b"POST /v1/losses/mse HTTP/1.1\r\nHost: x\r\nContent-Ty")
        status, headers, body = parse_response(read_until_closed(sock))
    assert status == 408
    assert headers["connection"] == "close"
    assert "LOSSD_HEADER_TIMEOUT_S" in json.loads(body)["detail"]


def test_a_connection_that_sends_nothing_is_closed(server: ServerProcess) -> None:
    with connect(server.url) as sock:
        assert read_until_closed(sock) == b""


def test_keep_alive_requests_are_unaffected(server: ServerProcess) -> None:
    """Idle time between requests is uvicorn's keep-alive (5 s), not the head's deadline; a
    head sent in pieces within its deadline is served."""
    with connect(server.url) as sock:
        for _ in range(3):
            sock.sendall(post())
            [(status, _, body)] = read_responses(sock, 1)
            assert status == 200 and json.loads(body)["per_sample"] == SEED_MSE
            time.sleep(HEADER_TIMEOUT_S + 0.5)
        request = post()
        sock.sendall(request[:20])
        time.sleep(HEADER_TIMEOUT_S / 3)
        sock.sendall(request[20:])
        [(status, _, _)] = read_responses(sock, 1)
        assert status == 200


def test_pipelined_requests_are_each_answered(server: ServerProcess) -> None:
    with connect(server.url) as sock:
        sock.sendall(post() * 20)  # more head bytes in one read than any one head
        responses = read_responses(sock, 20)
    assert [status for status, _, _ in responses] == [200] * 20
    assert all(json.loads(body)["per_sample"] == SEED_MSE for _, _, body in responses)


def test_a_declared_length_holds_no_budget(server: ServerProcess) -> None:
    """A connection declaring 64 MiB and sending one byte held the whole in-flight budget, so
    every other body over 64 KiB was shed."""
    held = HeldRequest(server.url, "/v1/losses/mse", b" " * (64 * MiB))
    held.send(1)
    try:
        time.sleep(0.2)
        body = SEED + b" " * (2 * MiB)
        big = httpx.post(
            server.url + "/v1/losses/mse",
            content=body,
            headers={"content-type": "application/json"},
        )
        assert big.status_code == 200, big.text
    finally:
        held.close()


def test_a_crawling_body_gets_408(server: ServerProcess) -> None:
    """Each byte well inside LOSSD_BODY_TIMEOUT_S, but on average under the minimum rate."""
    held = HeldRequest(server.url, "/v1/losses/mse", SEED + b" " * 100_000)
    try:
        held.send(10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.2)
            try:
                held.send(1)
            except OSError:
                break  # the server answered and closed
        status, headers, body = held.response()
    finally:
        held.close()
    assert status == 408
    assert headers["connection"] == "close"
    assert "LOSSD_BODY_MIN_RATE" in json.loads(body)["detail"]
