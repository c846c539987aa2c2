"""Graceful shutdown of ``lossd serve``: SIGTERM while requests are in flight.

Requests whose connections were open before the signal keep sending their bodies after it and
get complete, correct answers; new connections are refused (or at least left unanswered, see
:func:`new_requests_go_unanswered`); the process exits 0. A client stuck past
``LOSSD_GRACEFUL_TIMEOUT_S`` cannot hold the shutdown back.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from collections.abc import Callable

import numpy as np
import pytest

from tests.e2e.conftest import ServerProcess, lossd_serve_argv
from tests.e2e.raw_client import HeldRequest
from tests.helpers import SEED_MSE, SEED_PRED, SEED_TRUE

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(180)]

SEED = json.dumps({"y_true": SEED_TRUE, "y_pred": SEED_PRED}).encode()


def new_requests_go_unanswered(port: int, refused: bool, within_s: float = 5.0) -> bool:
    """Whether a new request to ``port`` is refused (``refused``) or at least left unanswered,
    within ``within_s`` seconds. Either is fine for a client: a connection nobody accepts is reset
    when the process exits, a retryable error like a refusal."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                answered = bool(sock.recv(1024))
        except ConnectionRefusedError:
            return True
        except (TimeoutError, ConnectionResetError):
            answered = False
        if not answered and not refused:
            return True
        time.sleep(0.05)
    return False


def big_evaluation() -> tuple[bytes, float]:
    """A 1000 x 500 float evaluation (a few MB of JSON, a noticeable time to parse) and its MSE."""
    rng = np.random.default_rng(6)
    y_true = rng.random((1000, 500)).round(4)
    y_pred = rng.random((1000, 500)).round(4)
    body = json.dumps({"y_true": y_true.tolist(), "y_pred": y_pred.tolist()}).encode()
    mean = float(np.mean((y_true.astype(np.float32) - y_pred.astype(np.float32)) ** 2))
    return body, mean


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_lets_requests_in_flight_finish(
    start_process: Callable[..., ServerProcess], workers: int
) -> None:
    server = start_process(
        env={"LOSSD_WORKERS": str(workers), "LOSSD_GRACEFUL_TIMEOUT_S": "30"},
        argv=lossd_serve_argv,
    )
    big, big_mean = big_evaluation()
    stream = HeldRequest(server.url, "/v1/losses/mse/stream", (SEED + b"\n") * 5, chunked=True)
    evaluate = HeldRequest(server.url, "/v1/losses/mse", SEED)
    large = HeldRequest(server.url, "/v1/losses/mse", big)
    stream.send(len(SEED) + 1)
    evaluate.send(10)
    large.send(len(big) - 1)
    time.sleep(0.5)  # every request has been accepted and is being read

    server.process.send_signal(signal.SIGTERM)
    assert new_requests_go_unanswered(server.port, refused=workers == 1), "still serving"

    for _ in range(4):  # the stream goes on for 2 s after the signal
        time.sleep(0.5)
        stream.send(len(SEED) + 1)
    stream.send()
    evaluate.send()
    large.send()
    answers = {
        name: held.response()
        for name, held in [("stream", stream), ("evaluate", evaluate), ("large", large)]
    }

    status, _, body = answers["stream"]
    assert status == 200, body
    result = json.loads(body)
    assert result["count"] == 10 and result["mean"] == pytest.approx(float(np.mean(SEED_MSE)))
    status, _, body = answers["evaluate"]
    assert status == 200 and json.loads(body)["per_sample"] == SEED_MSE, body
    status, _, body = answers["large"]
    assert status == 200, body
    result = json.loads(body)
    assert result["count"] == 1000 and result["mean"] == pytest.approx(big_mean, rel=1e-5)

    assert server.process.wait(timeout=30) == 0, server.output()
    output = server.output()
    assert "Traceback" not in output, output


def test_a_stuck_client_cannot_hold_the_shutdown(
    start_process: Callable[..., ServerProcess],
) -> None:
    """Past LOSSD_GRACEFUL_TIMEOUT_S uvicorn cancels what still runs; the stuck request gets a
    retryable 503 rather than a dropped connection, and the process still exits 0."""
    server = start_process(
        env={"LOSSD_GRACEFUL_TIMEOUT_S": "1", "LOSSD_BODY_TIMEOUT_S": "60"},
        argv=lossd_serve_argv,
    )
    stuck = HeldRequest(server.url, "/v1/losses/mse", SEED)
    stuck.send(5)  # and nothing more
    time.sleep(0.3)
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    try:
        assert server.process.wait(timeout=20) == 0, server.output()
        status, headers, body = stuck.response()
    finally:
        stuck.close()
    assert time.monotonic() - started < 10
    assert status == 503 and headers["retry-after"] == "1", body
    assert json.loads(body)["type"] == "urn:lossd:problem:shutting-down"
    assert "Traceback" not in server.output(), server.output()
