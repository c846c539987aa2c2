"""The v1 API over real sockets: httpx against a uvicorn process (``live_server``).

Every endpoint, the seed example, batch, NDJSON streams sent chunked, the body limit on a server
started with a small ``LOSSD_MAX_BODY_BYTES``, and the bad-input corpus (tests/corpus.py, also
sent in-process by tests/api/routes/test_losses.py), each answered with its exact status and an
``application/problem+json`` body. No request may get a 5xx, and the server must still be
healthy at the end.

Expected numbers are the seed document's (printed by Keras) or derived by hand here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.corpus import CASES, BadInput
from tests.e2e.raw_client import raw_request
from tests.helpers import (
    NDJSON,
    PROBLEM,
    SEED_MSE,
    SEED_PRED,
    SEED_TRUE,
    assert_problem,
    assert_problem_body,
    ndjson,
)

pytestmark = pytest.mark.e2e

SMALL_LIMIT = 2048  # LOSSD_MAX_BODY_BYTES of the second server (the setting's minimum is 1024)
JSON_HEADERS = {"content-type": "application/json"}
NDJSON_HEADERS = {"content-type": NDJSON}
GOOD = {"y_true": SEED_TRUE, "y_pred": SEED_PRED}

#: Every response any client of this module got: checked for 5xx at the end.
SEEN: list[tuple[str, str, int]] = []


def _record(response: httpx.Response) -> None:
    SEEN.append((response.request.method, str(response.request.url), response.status_code))
    assert response.status_code < 500, f"server error on {response.request.url}"


def _client(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=30.0, event_hooks={"response": [_record]})


@pytest.fixture(scope="module")
def client(live_server: str) -> Iterator[httpx.Client]:
    with _client(live_server) as c:
        yield c


@pytest.fixture(scope="module")
def small_url(start_server: Callable[..., str]) -> str:
    """A second server whose body limit is SMALL_LIMIT bytes."""
    return start_server(env={"LOSSD_MAX_BODY_BYTES": str(SMALL_LIMIT)})


@pytest.fixture(scope="module")
def small(small_url: str) -> Iterator[httpx.Client]:
    with _client(small_url) as c:
        yield c


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    """``data`` in pieces of ``size`` bytes: httpx sends a generator with Transfer-Encoding:
    chunked and no Content-Length."""
    for i in range(0, len(data), size):
        yield data[i : i + size]


# --- health, docs, contract ------------------------------------------------------------------


def test_health_and_readiness(client: httpx.Client) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready"}


def test_docs_are_served_locally(client: httpx.Client) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "/docs/assets/swagger-ui-bundle.js" in page.text
    asset = client.get("/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.content) > 10_000


def test_openapi_lists_the_v1_paths(client: httpx.Client) -> None:
    r = client.get("/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    paths = r.json()["paths"]
    for path in (
        "/v1/losses",
        "/v1/losses/{name}",
        "/v1/losses/{name}/stream",
        "/v1/batch",
        "/healthz",
        "/readyz",
    ):
        assert path in paths, path


# --- catalogue -------------------------------------------------------------------------------


def test_catalogue(client: httpx.Client) -> None:
    r = client.get("/v1/losses")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    losses = r.json()["losses"]
    names = [e["name"] for e in losses]
    assert len(names) == len(set(names)) == 34  # 19 Keras losses, 15 torch
    assert {"mean_squared_error", "huber", "sparse_categorical_crossentropy", "tversky"} <= set(
        names
    )
    huber = next(e for e in losses if e["name"] == "huber")
    delta = next(o for o in huber["options"] if o["name"] == "delta")
    assert delta["type"] == "number" and delta["default"] == 1.0


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("mse", "mean_squared_error"),
        ("MSE", "mean_squared_error"),
        ("MeanSquaredError", "mean_squared_error"),
        ("loss_mean_squared_error", "mean_squared_error"),
        ("huber_loss", "huber"),
        ("BCE", "binary_crossentropy"),
        ("kullback_leibler_divergence", "kl_divergence"),
    ],
)
def test_catalogue_entry_under_any_alias(client: httpx.Client, alias: str, canonical: str) -> None:
    r = client.get(f"/v1/losses/{alias}")
    assert r.status_code == 200
    assert r.json()["name"] == canonical


def test_every_listed_loss_has_its_own_entry(client: httpx.Client) -> None:
    for entry in client.get("/v1/losses").json()["losses"]:
        one = client.get(f"/v1/losses/{entry['name']}")
        assert one.status_code == 200 and one.json() == entry


# --- evaluate --------------------------------------------------------------------------------


def test_seed_example(client: httpx.Client) -> None:
    r = client.post("/v1/losses/mse", json=GOOD)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {
        "loss",
        "per_sample",
        "shape",
        "mean",
        "sum",
        "count",
        "value",
        "reduction",
        "dtype",
        "non_finite",
    }
    assert body["per_sample"] == SEED_MSE
    assert body["loss"] == "mean_squared_error"
    assert body["shape"] == [2] and body["count"] == 2
    assert body["mean"] == pytest.approx(0.5) and body["sum"] == pytest.approx(1.0)
    assert body["value"] == pytest.approx(0.5)
    assert body["reduction"] == "sum_over_batch_size" and body["dtype"] == "float32"
    assert body["non_finite"] == 0


def test_options_weights_reduction_dtype(client: httpx.Client) -> None:
    # huber delta 0.5: |e| = 0.25 -> 0.5 * 0.0625 = 0.03125; |e| = 2 -> 0.5 * 2 - 0.125 = 0.875
    body = {
        "y_true": [[0.0], [0.0]],
        "y_pred": [[0.25], [2.0]],
        "sample_weight": [2.0, 1.0],
        "options": {"delta": 0.5},
        "reduction": "sum",
        "dtype": "float64",
    }
    out = client.post("/v1/losses/Huber", json=body).json()
    assert out["loss"] == "huber" and out["dtype"] == "float64" and out["reduction"] == "sum"
    assert out["per_sample"] == pytest.approx([0.0625, 0.875], rel=1e-12)
    assert out["value"] == pytest.approx(0.9375, rel=1e-12)


def test_sparse_labels(client: httpx.Client) -> None:
    out = client.post(
        "/v1/losses/sparse_categorical_crossentropy",
        json={"y_true": [0, 1], "y_pred": [[0.8, 0.2], [0.5, 0.5]]},
    ).json()
    assert out["per_sample"] == pytest.approx([-math.log(0.8), math.log(2)], rel=1e-6)


# --- batch -----------------------------------------------------------------------------------


def test_batch(client: httpx.Client) -> None:
    items = [
        {
            "id": "seed",
            "loss": ["mse", {"name": "huber", "options": {"delta": 2.0}}],
            "y_true": SEED_TRUE,
            "y_pred": SEED_PRED,
        },
        {"id": "unknown", "loss": "no_such_loss", "y_true": [[0]], "y_pred": [[1]]},
        {"id": "ragged", "loss": "mse", "y_true": [[0, 1], [1]], "y_pred": [[1, 1], [1, 1]]},
        {"loss": "mae", "y_true": SEED_TRUE, "y_pred": SEED_PRED},
    ]
    r = client.post("/v1/batch", json={"items": items})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["id"] for x in results] == ["seed", "unknown", "ragged", None]
    assert [x["status"] for x in results] == [200, 404, 422, 200]
    seed = results[0]
    assert seed["error"] is None
    assert [x["loss"] for x in seed["results"]] == ["mean_squared_error", "huber"]
    assert seed["results"][0]["per_sample"] == SEED_MSE
    # huber delta 2, every |error| <= 1: 0.5 e^2 averaged: (0.5 + 0 + 0.5) / 3 and 0.5 / 3
    assert seed["results"][1]["per_sample"] == pytest.approx([1 / 3, 1 / 6], rel=1e-6)
    for failed, pointer in ((results[1], "/items/1/loss"), (results[2], "/items/2/y_true/1")):
        assert failed["results"] is None
        assert_problem_body(failed["error"], failed["status"], pointer)
    assert "suggestions" in results[1]["error"]
    # mae of 0/1 values equals mse: |e| = e^2
    assert results[3]["results"][0]["per_sample"] == SEED_MSE


def test_batch_envelope_errors(client: httpx.Client) -> None:
    assert_problem(client.post("/v1/batch", json={"items": None}), 422, "/items")
    assert_problem(client.post("/v1/batch", json=[]), 422)
    r = client.post("/v1/batch", content=b'{"items": [', headers=JSON_HEADERS)
    assert_problem(r, 400)
    r = client.post("/v1/batch", content=b'{"items": []}', headers={"content-type": "text/plain"})
    assert_problem(r, 415, "/header/content-type")


# --- stream ----------------------------------------------------------------------------------


def test_stream_sent_chunked(client: httpx.Client) -> None:
    body = ndjson(
        {"y_true": [SEED_TRUE[0]], "y_pred": [SEED_PRED[0]]},
        {"y_true": [SEED_TRUE[1]], "y_pred": [SEED_PRED[1]]},
    )
    r = client.post(
        "/v1/losses/mse/stream",
        content=chunked(body, 7),  # pieces that split lines and JSON tokens
        headers=NDJSON_HEADERS,
        params={"per_sample": "true"},
    )
    assert "content-length" not in r.request.headers
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["per_sample"] == SEED_MSE and out["shape"] == [2]
    assert out["chunks"] == 2 and out["count"] == 2
    assert out["mean"] == pytest.approx(0.5) and out["sum"] == pytest.approx(1.0)
    assert out["loss"] == "mean_squared_error"


def test_stream_options_and_reduction_from_query(client: httpx.Client) -> None:
    # binary cross-entropy of a logit 0 is log 2 whatever the label; reduction sum over 2 chunks
    body = ndjson({"y_true": [[1.0, 0.0]], "y_pred": [[0.0, 0.0]]}) * 2
    r = client.post(
        "/v1/losses/bce/stream",
        content=body,
        headers=NDJSON_HEADERS,
        params={"options": json.dumps({"from_logits": True}), "reduction": "sum"},
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["value"] == pytest.approx(2 * math.log(2), rel=1e-6)
    assert out["per_sample"] is None


def test_stream_errors(client: httpx.Client) -> None:
    ok = ndjson({"y_true": [[0, 1]], "y_pred": [[1, 1]]})
    bad = ok + b'{"y_true": [[0, 1]], "y_pred": [[1]]}\n'
    problem = assert_problem(
        client.post("/v1/losses/mse/stream", content=bad, headers=NDJSON_HEADERS),
        422,
        "/line/2/y_pred",
    )
    assert problem["detail"].startswith("line 2")
    truncated = ok + b'{"y_true": [[0, 1]'
    assert_problem(
        client.post("/v1/losses/mse/stream", content=truncated, headers=NDJSON_HEADERS),
        400,
        "/line/2",
    )
    assert_problem(
        client.post("/v1/losses/mse/stream", content=ok, headers=JSON_HEADERS),
        415,
        "/header/content-type",
    )
    assert_problem(client.post("/v1/losses/mse/stream", content=b"\n", headers=NDJSON_HEADERS), 422)
    assert_problem(
        client.post(
            "/v1/losses/mse/stream", content=ok, headers=NDJSON_HEADERS, params={"options": "[]"}
        ),
        422,
        "/query/options",
    )
    assert_problem(client.post("/v1/losses/nope/stream", content=ok, headers=NDJSON_HEADERS), 404)


def test_stream_body_over_the_limit_is_fine(small: httpx.Client) -> None:
    # 100 short lines, far more than SMALL_LIMIT bytes in all: the stream bounds each line, not
    # the body. Rows alternate between the seed's two samples (2/3 and 1/3).
    lines = [{"y_true": [SEED_TRUE[i % 2]], "y_pred": [SEED_PRED[i % 2]]} for i in range(100)]
    body = ndjson(*lines)
    assert len(body) > 2 * SMALL_LIMIT
    for content in (body, chunked(body, 1000)):  # with and without Content-Length
        r = small.post(
            "/v1/losses/mse/stream",
            content=content,
            headers=NDJSON_HEADERS,
            params={"per_sample": "true"},
        )
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["chunks"] == 100 and out["count"] == 100
        assert out["per_sample"] == SEED_MSE * 50
        assert out["mean"] == pytest.approx(0.5, rel=1e-6)
        assert out["sum"] == pytest.approx(50.0, rel=1e-6)


def test_stream_line_over_the_limit(small: httpx.Client) -> None:
    long_line = ndjson({"y_true": [[0.0] * 600], "y_pred": [[1.0] * 600]})
    assert len(long_line) > SMALL_LIMIT
    for content in (long_line, chunked(long_line, 512)):
        r = small.post("/v1/losses/mse/stream", content=content, headers=NDJSON_HEADERS)
        assert_problem(r, 413, "/line/1")


# --- the body limit --------------------------------------------------------------------------


def test_body_limit_with_content_length(small: httpx.Client) -> None:
    big = json.dumps({"y_true": [[0.0] * 500], "y_pred": [[1.0] * 500]}).encode()
    assert len(big) > SMALL_LIMIT
    for path in ("/v1/losses/mse", "/v1/batch"):
        r = small.post(path, content=big, headers=JSON_HEADERS)
        assert "content-length" in r.request.headers
        body = assert_problem(r, 413)
        assert str(SMALL_LIMIT) in body["detail"]


def test_body_limit_chunked(small: httpx.Client) -> None:
    big = json.dumps({"y_true": [[0.0] * 500], "y_pred": [[1.0] * 500]}).encode()
    r = small.post("/v1/losses/mse", content=chunked(big, 512), headers=JSON_HEADERS)
    assert "content-length" not in r.request.headers
    assert_problem(r, 413)


def test_under_the_limit_still_works_on_the_small_server(small: httpx.Client) -> None:
    r = small.post(
        "/v1/losses/mse", content=chunked(json.dumps(GOOD).encode(), 10), headers=JSON_HEADERS
    )
    assert r.status_code == 200 and r.json()["per_sample"] == SEED_MSE


def test_huge_declared_content_length_without_a_body(live_server: str) -> None:
    # 10**12 bytes announced, none sent: refused from the header alone, at once.
    for path in ("/v1/losses/mse", "/v1/batch"):
        request = (
            f"POST {path} HTTP/1.1\r\nHost: lossd\r\nContent-Type: application/json\r\n"
            f"Content-Length: {10**12}\r\nConnection: close\r\n\r\n"
        ).encode()
        status, headers, body = raw_request(live_server, request)
        assert status == 413, body
        assert headers["content-type"].startswith(PROBLEM)
        assert_problem_body(json.loads(body), 413)


# --- the bad-input corpus --------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_bad_input_corpus(client: httpx.Client, case: BadInput) -> None:
    response = client.post("/v1/losses/mse", content=case.content, headers=case.headers)
    assert_problem(response, case.status, case.pointer)


def _deep(levels: int) -> str:
    return "[" * levels + "1" + "]" * levels


@pytest.mark.parametrize(
    "item",
    [
        '{"loss": "mse", "y_true": %s, "y_pred": [[1]]}',
        '{"loss": "mse", "y_true": [[1]], "y_pred": [[1]], "sample_weight": %s}',
        '{"loss": "huber", "options": {"delta": %s}, "y_true": [[1]], "y_pred": [[1]]}',
        '{"loss": "bce", "options": {"from_logits": %s}, "y_true": [[1]], "y_pred": [[1]]}',
        '{"loss": [{"name": "dice", "options": {"axis": %s}}], "y_true": [[1]], "y_pred": [[1]]}',
    ],
    ids=["y_true", "sample_weight", "number option", "bool option", "loss ref option"],
)
def test_batch_deeply_nested_values(client: httpx.Client, item: str) -> None:
    # 1000 levels: deeper than the single endpoint's parser allows (so 400 there, as here), and
    # deep enough to exhaust Python's recursion in the tensor and option checks: once a 500.
    body = ('{"items": [' + item % _deep(1000) + "]}").encode()
    assert_problem(client.post("/v1/batch", content=body, headers=JSON_HEADERS), 400)
    # nested, but within the parser's limit: the item fails alone
    body = ('{"items": [' + item % _deep(100) + "]}").encode()
    r = client.post("/v1/batch", content=body, headers=JSON_HEADERS)
    assert r.status_code == 200, r.text
    (result,) = r.json()["results"]
    assert result["status"] == 422
    assert_problem_body(result["error"], 422)


def test_stream_deeply_nested_options(client: httpx.Client) -> None:
    # json.loads raised RecursionError here: a 500
    line = ndjson({"y_true": [[1]], "y_pred": [[1]]})
    for options in (_deep(3000), '{"a":' * 2000 + "1" + "}" * 2000):
        r = client.post(
            "/v1/losses/huber/stream",
            content=line,
            headers=NDJSON_HEADERS,
            params={"options": options},
        )
        assert_problem(r, 422, "/query/options")


def test_unknown_loss(client: httpx.Client) -> None:
    body = assert_problem(client.post("/v1/losses/mean_sqared_error", json=GOOD), 404)
    assert "mean_squared_error" in body["suggestions"]
    body = assert_problem(client.get("/v1/losses/msee"), 404, "/path/name")
    assert "mse" in body["suggestions"]


def test_unknown_option_names_the_accepted_ones(client: httpx.Client) -> None:
    body = assert_problem(
        client.post("/v1/losses/huber", json={**GOOD, "options": {"delta": 1.0, "beta": 2}}),
        422,
        "/options/beta",
    )
    assert "delta" in body["detail"]


def test_option_out_of_range(client: httpx.Client) -> None:
    assert_problem(
        client.post("/v1/losses/huber", json={**GOOD, "options": {"delta": -1}}),
        422,
        "/options/delta",
    )


@pytest.mark.parametrize(("label", "shown"), [(3, "label 3"), (-1, "label -1"), (0.5, "0.5")])
def test_sparse_label_out_of_range(client: httpx.Client, label: float, shown: str) -> None:
    r = client.post(
        "/v1/losses/sparse_categorical_crossentropy",
        json={"y_true": [0, label], "y_pred": [[0.5, 0.5], [0.1, 0.9]]},
    )
    body = assert_problem(r, 422, "/y_true/1")
    assert shown in body["detail"]


def test_unknown_route_and_wrong_method(client: httpx.Client) -> None:
    assert_problem(client.get("/v1/nothing"), 404)
    assert_problem(client.get("/v3/losses"), 404)
    assert_problem(client.delete("/v1/losses/mse"), 405)
    assert_problem(client.get("/v1/batch"), 405)
    assert_problem(client.put("/v1/losses/mse/stream"), 405)


# --- afterwards ------------------------------------------------------------------------------


def test_still_healthy_and_no_5xx(client: httpx.Client, live_server: str) -> None:
    """Runs last in this module: everything above left the server answering correctly."""
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    assert client.post("/v1/losses/mse", json=GOOD).json()["per_sample"] == SEED_MSE
    errors = [seen for seen in SEEN if seen[2] >= 500]
    assert not errors, errors


def test_small_server_still_healthy(small: httpx.Client) -> None:
    assert small.get("/healthz").json() == {"status": "ok"}
    assert small.post("/v1/losses/mse", json=GOOD).json()["per_sample"] == SEED_MSE
