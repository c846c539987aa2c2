"""/v1/losses/{name}/stream through the ASGI app (app/api/routes/stream.py): NDJSON chunks
evaluated one by one and merged; errors name their line. The line splitter and the batches that
carry lines off the event loop: tests/api/test_ndjson.py.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.api.routes import stream
from tests.helpers import SEED_PRED, SEED_TRUE, assert_problem, ndjson

NDJSON = {"content-type": "application/x-ndjson"}


def test_stream_merges_chunks_like_one_request(client: TestClient) -> None:
    body = ndjson(
        {"y_true": [SEED_TRUE[0]], "y_pred": [SEED_PRED[0]]},
        {"y_true": [SEED_TRUE[1]], "y_pred": [SEED_PRED[1]]},
    )
    r = client.post(
        "/v1/losses/mse/stream", content=body, headers=NDJSON, params={"per_sample": "true"}
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["per_sample"] == [0.6666667, 0.33333334]
    assert out["chunks"] == 2 and out["count"] == 2
    assert out["mean"] == pytest.approx(0.5)
    plain = client.post("/v1/losses/mse/stream", content=body, headers=NDJSON).json()
    assert plain["per_sample"] is None and plain["mean"] == pytest.approx(0.5)


def test_stream_options_from_query(client: TestClient) -> None:
    # BCE from logits 0 -> log(2) whatever the label.
    body = ndjson({"y_true": [[1.0, 0.0]], "y_pred": [[0.0, 0.0]]})
    out = client.post(
        "/v1/losses/bce/stream",
        content=body,
        headers=NDJSON,
        params={"options": json.dumps({"from_logits": True})},
    ).json()
    assert out["mean"] == pytest.approx(math.log(2), rel=1e-6)


def test_stream_bad_line_names_its_number(client: TestClient, body_path: str) -> None:
    body = ndjson({"y_true": [[0, 1]], "y_pred": [[1, 1]]}) + b"\n" + b'{"y_true": [[0, 1]]\n'
    problem = assert_problem(
        client.post("/v1/losses/mse/stream", content=body, headers=NDJSON), 400, "/line/3"
    )
    assert problem["detail"].startswith("line 3:")
    body = ndjson({"y_true": [[0, 1]], "y_pred": [[1, 1]]}, {"y_true": [[0, 1]], "y_pred": [[1]]})
    problem = assert_problem(
        client.post("/v1/losses/mse/stream", content=body, headers=NDJSON), 422, "/line/2/y_pred"
    )
    assert problem["detail"].startswith("line 2:")


def test_stream_needs_ndjson_and_a_chunk(client: TestClient) -> None:
    assert_problem(
        client.post(
            "/v1/losses/mse/stream", content=b"{}", headers={"content-type": "application/json"}
        ),
        415,
    )
    assert_problem(client.post("/v1/losses/mse/stream", content=b"\n\n", headers=NDJSON), 422)


def test_stream_line_limit(make_client: Callable[..., TestClient]) -> None:
    c = make_client(max_body_bytes=1024)
    long_line = ndjson({"y_true": [[0.0] * 200], "y_pred": [[1.0] * 200]})
    assert_problem(c.post("/v1/losses/mse/stream", content=long_line, headers=NDJSON), 413)


def test_stream_query_option_error_names_the_query_not_a_line(client: TestClient) -> None:
    body = ndjson({"y_true": [[0.0]], "y_pred": [[1.0]]})
    r = client.post(
        "/v1/losses/mse/stream",
        content=body,
        headers=NDJSON,
        params={"options": json.dumps({"delta": 1})},
    )
    problem = assert_problem(r, 422, "/query/options/delta")
    assert not problem["detail"].startswith("line")


def test_stream_lines_are_evaluated_off_the_event_loop(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the review: ~38 us of event-loop CPU per line, 100k tiny lines stalled /healthz by 1.2 s
    on_loop: list[bool] = []
    add_chunk = stream._add_chunk

    def recorded(*args: Any) -> None:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:  # a worker thread runs no event loop
            on_loop.append(False)
        add_chunk(*args)

    monkeypatch.setattr(stream, "_add_chunk", recorded)
    line = {"y_true": [[0.0, 1.0]], "y_pred": [[1.0, 1.0]]}
    body = ndjson(*[line] * 500)  # 25 KB of tiny lines
    r = client.post("/v1/losses/mse/stream", content=body, headers=NDJSON)
    assert r.status_code == 200 and r.json()["chunks"] == 500
    assert on_loop == [False] * 500


def test_stream_per_sample_over_the_response_limit_is_a_clear_422(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(max_response_bytes=4096)
    body = ndjson(*[{"y_true": [[0.0]] * 100, "y_pred": [[1.0]] * 100}] * 20)
    url = "/v1/losses/mse/stream"
    problem = assert_problem(
        client.post(url, content=body, headers=NDJSON, params={"per_sample": "true"}), 422
    )
    assert problem["type"] == "urn:lossd:problem:response-too-large"
    assert "per_sample=false" in problem["detail"]
    assert client.post(url, content=body, headers=NDJSON).json()["count"] == 2000
