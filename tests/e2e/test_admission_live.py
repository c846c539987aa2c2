"""Load shedding and body timeouts on a real uvicorn process, with real clients.

One server takes a single large request at a time (``LOSSD_MAX_CONCURRENT_LARGE=1``, large = over
1 MiB). A raw socket holds that permit by sending a large request's headers and only part of its
body; meanwhile 20 MiB uploads from httpx and curl must get a complete 503 problem+json with
Retry-After (no connection reset while they are still uploading), small requests still get 200,
and once the held body is finished it is answered correctly. Stalled bodies get 408 and free
their permit; so do clients that vanish half-way and requests that fail.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.e2e.conftest import ServerProcess
from tests.e2e.raw_client import HeldRequest
from tests.helpers import SEED_MSE, SEED_PRED, SEED_TRUE, assert_problem

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(180)]

MiB = 1024 * 1024
SEED = json.dumps({"y_true": SEED_TRUE, "y_pred": SEED_PRED}).encode()
BODY_TIMEOUT_S = 2
ENV = {
    "LOSSD_LARGE_BODY_BYTES": str(MiB),
    "LOSSD_MAX_CONCURRENT_LARGE": "1",
    "LOSSD_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
    "LOSSD_LOG_LEVEL": "warning",
}


def padded(size: int, doc: bytes = SEED) -> bytes:
    """A valid JSON body of ``size`` bytes: ``doc`` and trailing spaces (cheap to parse)."""
    return doc + b" " * (size - len(doc))


@pytest.fixture(scope="module")
def server(start_process: Callable[..., ServerProcess]) -> Iterator[ServerProcess]:
    proc = start_process(env=ENV)
    yield proc
    assert "Traceback" not in proc.output(), proc.output()


def wait_for_permit_release(url: str) -> None:
    """Until a large request is admitted again (a permit is freed when its task ends, which can
    come a moment after the client saw the answer or went away)."""
    deadline = time.monotonic() + 10
    while True:
        response = httpx.post(url + "/v1/losses/mse", content=padded(2 * MiB), headers=JSON)
        if response.status_code != 503 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert response.status_code == 200, response.text
    assert response.json()["per_sample"] == SEED_MSE


JSON = {"content-type": "application/json"}


def assert_shed(response: httpx.Response) -> dict[str, Any]:
    body = assert_problem(response, 503)
    assert response.headers["retry-after"] == "1"
    assert "LOSSD_MAX_CONCURRENT_LARGE" in body["detail"]
    return body


def curl_post(url: str, tmp_path: Path, body: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("the curl binary is not installed")
    out = tmp_path / "answer.json"
    argv = [curl, "-sS", "--max-time", "60", "-o", str(out), "-w", "%{http_code}", *extra]
    argv += ["-H", "content-type: application/json", "--data-binary", f"@{body}", url]
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr  # no reset, no broken pipe
    return int(proc.stdout), json.loads(out.read_bytes())


def test_uploads_past_the_limit_get_an_intact_503(server: ServerProcess, tmp_path: Path) -> None:
    url = server.url
    held = HeldRequest(url, "/v1/losses/mse", padded(3 * MiB))
    held.send(MiB // 2)
    try:
        with held.trickling():  # it holds the only permit all along
            time.sleep(0.3)  # the server has admitted it: it is reading its body
            big = padded(20 * MiB)
            with httpx.Client(base_url=url, timeout=60) as client:
                for _ in range(3):  # one keep-alive connection: it stays usable after each 503
                    assert_shed(client.post("/v1/losses/mse", content=big, headers=JSON))
                assert client.post("/v1/losses/mse", content=SEED, headers=JSON).status_code == 200

                def chunks() -> Iterator[bytes]:
                    for i in range(0, len(big), MiB):
                        yield big[i : i + MiB]

                # chunked: large only once 1 MiB has arrived, shed half-way through the upload
                assert_shed(client.post("/v1/losses/mse", content=chunks(), headers=JSON))
                infer = client.post("/v2/models/mse/infer", content=big, headers=JSON)
                assert assert_shed(infer)["error"]  # what tritonclient shows
            for _ in range(3):  # a new connection each time
                assert_shed(httpx.post(url + "/v1/batch", content=big, headers=JSON, timeout=60))
            path = tmp_path / "big.json"
            path.write_bytes(big)
            for extra in ([], ["-H", "Expect:"], ["-H", "Transfer-Encoding: chunked"]):
                status, problem = curl_post(url + "/v1/losses/mse", tmp_path, path, *extra)
                assert status == 503 and problem["status"] == 503, (extra, problem)
        # the held request was never disturbed
        held.send()
        status, _, body = held.response()
        assert status == 200 and json.loads(body)["per_sample"] == SEED_MSE
    finally:
        held.close()
    wait_for_permit_release(url)


@pytest.mark.parametrize(
    "path", ["/v1/losses/mse", "/v1/losses/mse/stream", "/v2/models/mse/infer"]
)
def test_a_stalled_body_gets_408_and_frees_its_permit(server: ServerProcess, path: str) -> None:
    doc = SEED + b"\n" if path.endswith("/stream") else SEED
    # the stream is charged by its longest line: make the unfinished line long
    held = HeldRequest(server.url, path, b" " * (2 * MiB) + doc, chunked=path.endswith("/stream"))
    started = time.monotonic()
    held.send(int(1.5 * MiB))  # large by now: it holds the only permit, then stalls
    try:
        time.sleep(0.3)
        assert (
            httpx.post(server.url + "/v1/batch", content=padded(2 * MiB), headers=JSON).status_code
            == 503
        )
        status, headers, body = held.response()  # returns once the server closes
    finally:
        held.close()
    waited = time.monotonic() - started
    assert status == 408
    assert headers["connection"] == "close"
    problem = json.loads(body)
    assert problem["status"] == 408 and "LOSSD_BODY_TIMEOUT_S" in problem["detail"]
    if path.startswith("/v2"):
        assert problem["error"] == problem["detail"]
    assert BODY_TIMEOUT_S <= waited < BODY_TIMEOUT_S + 5
    wait_for_permit_release(server.url)


def test_a_client_gone_half_way_frees_its_permit(server: ServerProcess) -> None:
    for path in ("/v1/losses/mse", "/v1/losses/mse/stream"):
        held = HeldRequest(server.url, path, b" " * (3 * MiB) + SEED, chunked=True)
        held.send(int(1.5 * MiB))
        time.sleep(0.3)
        held.close()  # vanishes without finishing its body
        wait_for_permit_release(server.url)


def test_failed_large_requests_free_their_permit(server: ServerProcess) -> None:
    bad = padded(2 * MiB, json.dumps({"y_true": [[0, 1]], "y_pred": [[1]]}).encode())
    for _ in range(3):
        response = httpx.post(server.url + "/v1/losses/mse", content=bad, headers=JSON)
        assert_problem(response, 422)
    malformed = b"{" + b" " * (2 * MiB)
    assert_problem(httpx.post(server.url + "/v1/losses/mse", content=malformed, headers=JSON), 400)
    wait_for_permit_release(server.url)


def test_a_slow_but_steady_body_is_not_cut(server: ServerProcess) -> None:
    held = HeldRequest(server.url, "/v1/losses/mse/stream", (SEED + b"\n") * 4, chunked=True)
    try:
        for _ in range(4):  # 3 s in all, longer than the timeout, each gap shorter
            held.send(len(SEED) + 1)
            time.sleep(0.75)
        held.send()
        status, _, body = held.response()
    finally:
        held.close()
    assert status == 200, body
    assert json.loads(body)["count"] == 8


def readme_evaluate() -> Callable[..., dict[str, Any]]:
    """The retrying ``evaluate`` function of docs/api.md's "What to retry", as written there."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    start = text.index("**What to retry.**")
    code = text[text.index("```python\n", start) + len("```python\n") :]
    code = code[: code.index("```")]
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/api.md", "exec"), namespace)
    function: Callable[..., dict[str, Any]] = namespace["evaluate"]
    return function


def test_the_readme_retry_loop_gets_through_shedding(server: ServerProcess) -> None:
    evaluate = readme_evaluate()
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 2, (1000, 300))
    y_pred = rng.integers(0, 2, (1000, 300))
    body = {"y_true": y_true.tolist(), "y_pred": y_pred.tolist()}
    assert len(json.dumps(body)) > MiB  # large: shed while the permit is held
    held = HeldRequest(server.url, "/v1/losses/mse", padded(3 * MiB))
    held.send(MiB // 2)
    try:
        with held.trickling():
            time.sleep(0.3)
            with httpx.Client(base_url=server.url, timeout=60) as client:
                assert client.post("/v1/losses/mse", json=body).status_code == 503
                finisher = threading.Timer(1.5, held.send)  # the permit frees in 1.5 s
                finisher.start()
                result = evaluate(client, "mse", body)
        finisher.join()
        assert held.response()[0] == 200
    finally:
        held.close()
    expected = np.mean((y_true - y_pred) ** 2, axis=-1)
    np.testing.assert_allclose(result["per_sample"], expected, rtol=1e-6)
