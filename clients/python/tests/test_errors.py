"""Errors (live lossd for each status) and retries (httpx.MockTransport: exact control over what
the server answers and how often it is asked)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from lossd_client import (
    AsyncClient,
    Client,
    InvalidInputError,
    LossdConnectionError,
    LossdError,
    OverloadedError,
    TooLargeError,
    Transport,
    UnauthorizedError,
    UnknownLossError,
)

from .conftest import SEED_PRED, SEED_TRUE, TRANSPORTS

SEED_ANSWER = {
    "loss": "mean_squared_error", "per_sample": [0.6666667, 0.33333334], "shape": [2],
    "mean": 0.5, "sum": 1.0, "count": 2, "value": 0.5, "reduction": "sum_over_batch_size",
    "dtype": "float32", "non_finite": 0,
}  # fmt: skip


@pytest.mark.parametrize("transport", ["json", "binary"])
def test_unknown_loss(url: str, transport: Transport) -> None:
    with Client(url) as lossd, pytest.raises(UnknownLossError) as caught:
        lossd.evaluate("msee", SEED_TRUE, SEED_PRED, transport=transport)
    assert caught.value.status == 404 and "msee" in caught.value.detail
    if transport == "json":
        assert caught.value.title == "Unknown loss" and "mse" in caught.value.suggestions
        assert caught.value.errors[0].pointer == "/path/name"


@pytest.mark.parametrize("transport", ["json", "binary"])
def test_invalid_input(url: str, transport: Transport) -> None:
    with Client(url) as lossd, pytest.raises(InvalidInputError) as caught:
        lossd.evaluate("mse", [[0, 1]], [[1, 1, 1]], transport=transport)
    error = caught.value
    assert error.status == (422 if transport == "json" else 400)
    assert "shape" in error.detail and isinstance(error, LossdError)


def test_invalid_option_names_its_pointer(url: str) -> None:
    with Client(url) as lossd, pytest.raises(InvalidInputError) as caught:
        lossd.evaluate("huber", SEED_TRUE, SEED_PRED, options={"delta": -1})
    assert caught.value.errors[0].pointer == "/options/delta"
    assert caught.value.type == "urn:lossd:problem:invalid-option"


def test_loss_catalogue_unknown(url: str) -> None:
    with Client(url) as lossd, pytest.raises(UnknownLossError):
        lossd.loss("no_such_loss")


def test_too_large(start_server: Callable[..., str]) -> None:
    url = start_server(env={"LOSSD_MAX_BODY_BYTES": "4096"})
    big = np.ones((100, 100), dtype=np.float32)
    for transport in TRANSPORTS:
        with Client(url) as lossd, pytest.raises(TooLargeError) as caught:
            lossd.evaluate("mse", big, big, transport=transport)
        assert caught.value.status == 413


def test_unauthorized_then_authorized(start_server: Callable[..., str]) -> None:
    url = start_server(env={"LOSSD_API_KEYS": "k1,k2"})
    with Client(url) as anonymous, pytest.raises(UnauthorizedError) as caught:
        anonymous.evaluate("mse", SEED_TRUE, SEED_PRED)
    assert caught.value.status == 401
    with Client(url, api_key="wrong") as wrong, pytest.raises(UnauthorizedError):
        wrong.evaluate("mse", np.ones((300, 300)), np.ones((300, 300)))  # binary too
    with Client(url, api_key="k2") as lossd:
        assert lossd.evaluate("mse", SEED_TRUE, SEED_PRED).mean == 0.5


def test_a_dead_server_is_a_connection_error_after_the_retries() -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with Client(f"http://127.0.0.1:{port}", retries=2, backoff=0.01) as lossd:
        start = time.monotonic()
        with pytest.raises(LossdConnectionError) as caught:
            lossd.evaluate("mse", SEED_TRUE, SEED_PRED)
    assert caught.value.status is None and "3 attempts" in caught.value.detail
    assert time.monotonic() - start < 5


# -- retries, with a scripted server ----------------------------------------------------------


class Script:
    """A MockTransport handler answering from a list of (status, headers) or exceptions, then
    the seed's answer; records every request body."""

    def __init__(self, *answers: tuple[int, dict[str, str]] | Exception) -> None:
        self.answers = list(answers)
        self.bodies: list[bytes] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(request.read())
        if self.answers:
            answer = self.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            status, headers = answer
            problem = {"type": "about:blank", "title": "Overloaded", "status": status,
                       "detail": "the worker is full"}  # fmt: skip
            return httpx.Response(status, headers=headers, json=problem)
        if request.url.path == "/v1/batch":
            return httpx.Response(200, json={"results": []})
        if request.url.path.endswith("/stream"):
            return httpx.Response(200, json={**SEED_ANSWER, "chunks": 2, "per_sample": None})
        return httpx.Response(200, json=SEED_ANSWER)


def scripted(script: Script, **kwargs: Any) -> Client:
    return Client("http://lossd.test", transport=httpx.MockTransport(script), **kwargs)


def test_503_and_429_are_retried_after_retry_after() -> None:
    script = Script((503, {"retry-after": "0.2"}), (429, {"retry-after": "0.1"}))
    with scripted(script, retries=2) as lossd:
        start = time.monotonic()
        assert lossd.evaluate("mse", SEED_TRUE, SEED_PRED).mean == 0.5
        elapsed = time.monotonic() - start
    assert len(script.bodies) == 3 and len(set(script.bodies)) == 1  # the same body each time
    assert 0.3 <= elapsed < 2


def test_retry_after_is_capped() -> None:
    script = Script((503, {"retry-after": "3600"}))
    with scripted(script, max_retry_wait=0.05) as lossd:
        start = time.monotonic()
        assert lossd.evaluate("mse", SEED_TRUE, SEED_PRED).mean == 0.5
    assert time.monotonic() - start < 1


def test_retry_after_as_an_http_date() -> None:
    from email.utils import formatdate

    script = Script((503, {"retry-after": formatdate(time.time() + 5, usegmt=True)}))
    with scripted(script, max_retry_wait=0.3) as lossd:
        start = time.monotonic()
        lossd.evaluate("mse", SEED_TRUE, SEED_PRED)
    assert 0.25 < time.monotonic() - start < 1.5  # 4-5 s away, capped at 0.3 s


def test_overloaded_after_the_last_retry() -> None:
    script = Script(*[(503, {"retry-after": "0"})] * 4)
    with scripted(script, retries=3) as lossd, pytest.raises(OverloadedError) as caught:
        lossd.evaluate("mse", SEED_TRUE, SEED_PRED)
    assert caught.value.status == 503 and len(script.bodies) == 4
    script = Script((429, {"retry-after": "0"}))
    with scripted(script, retries=0) as lossd, pytest.raises(OverloadedError) as caught:
        lossd.evaluate("mse", SEED_TRUE, SEED_PRED)
    assert caught.value.status == 429 and len(script.bodies) == 1


def test_connection_errors_are_retried() -> None:
    script = Script(httpx.ConnectError("refused"), httpx.ReadError("reset"))
    with scripted(script, retries=2, backoff=0.01) as lossd:
        assert lossd.evaluate("mse", SEED_TRUE, SEED_PRED).mean == 0.5
    assert len(script.bodies) == 3


def test_other_errors_are_not_retried() -> None:
    script = Script((422, {}), (422, {}))
    with scripted(script, retries=3) as lossd, pytest.raises(InvalidInputError):
        lossd.evaluate("mse", SEED_TRUE, SEED_PRED)
    assert len(script.bodies) == 1


def test_a_binary_request_is_replayed_whole() -> None:
    script = Script((503, {"retry-after": "0"}))
    with scripted(script, retries=1) as lossd:
        big = np.arange(100_000, dtype=np.float32).reshape(1000, 100)
        with pytest.raises(Exception):  # noqa: B017 (the scripted answer is /v1's, not /v2's)
            lossd.evaluate("mse", big, big, transport="binary")
    assert len(script.bodies) == 2 and script.bodies[0] == script.bodies[1]
    assert len(script.bodies[0]) > 2 * big.nbytes


def test_a_stream_is_retried_only_when_its_chunks_can_be_replayed() -> None:
    chunks = [(SEED_TRUE[:1], SEED_PRED[:1]), (SEED_TRUE[1:], SEED_PRED[1:])]
    script = Script((503, {"retry-after": "0"}))
    with scripted(script, retries=2) as lossd:
        assert lossd.stream("mse", chunks).chunks == 2
    assert len(script.bodies) == 2 and script.bodies[0] == script.bodies[1]
    assert script.bodies[0].count(b"\n") == 2
    first = json.loads(script.bodies[0].splitlines()[0])
    assert first == {"y_true": [[0, 1, 1]], "y_pred": [[1, 1, 0]]}

    def once() -> Iterator[tuple[list[list[int]], list[list[int]]]]:
        yield from chunks

    script = Script((503, {"retry-after": "0"}))
    with scripted(script, retries=2) as lossd, pytest.raises(OverloadedError):
        lossd.stream("mse", once())
    assert len(script.bodies) == 1


def test_derivative_fields_are_sent_only_when_asked() -> None:
    script = Script()
    with scripted(script) as lossd:
        lossd.evaluate("mse", SEED_TRUE, SEED_PRED)
        lossd.evaluate("mse", SEED_TRUE, SEED_PRED, gradient=True)
        lossd.evaluate("mse", SEED_TRUE, SEED_PRED, hessian_diagonal=True)
        lossd.batch([{"loss": "mse", "y_true": [[0]], "y_pred": [[1]], "gradient": False}])
    plain, gradient, hessian, batch = (json.loads(b) for b in script.bodies)
    assert "gradient" not in plain and "hessian_diagonal" not in plain
    assert gradient["gradient"] is True and "hessian_diagonal" not in gradient
    assert hessian["hessian_diagonal"] is True and "gradient" not in hessian
    assert "gradient" not in batch["items"][0]


def test_derivatives_in_an_answer_are_shaped_like_y_pred() -> None:
    answer = {**SEED_ANSWER, "y_pred_shape": [2, 3], "gradient": [1, 2, 3, 4, None, 6],
              "hessian_diagonal": [0.5] * 6}  # fmt: skip
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=answer))
    with Client("http://lossd.test", transport=transport) as lossd:
        result = lossd.evaluate("mse", SEED_TRUE, SEED_PRED, gradient=True, hessian_diagonal=True)
    assert result.gradient is not None and result.hessian_diagonal is not None
    assert result.gradient.shape == result.hessian_diagonal.shape == (2, 3)
    assert np.isnan(result.gradient[1, 1]) and result.gradient[1, 2] == 6


def test_async_retries() -> None:
    script = Script((503, {"retry-after": "0.05"}), httpx.ConnectError("refused"))

    async def run() -> float | None:
        transport = httpx.MockTransport(script)
        async with AsyncClient("http://lossd.test", transport=transport, backoff=0.01) as lossd:
            return (await lossd.evaluate("mse", SEED_TRUE, SEED_PRED)).mean

    assert asyncio.run(run()) == 0.5 and len(script.bodies) == 3


def test_error_string_and_fields() -> None:
    error = LossdError(422, "Invalid input", "y_pred: row 1 has 3 values, expected 2")
    assert str(error) == "422 Invalid input: y_pred: row 1 has 3 values, expected 2"
    assert (error.status, error.errors) == (422, ())
