"""The v1 API through the real ``curl`` binary, as a shell user would call it."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import PROBLEM, SEED_MSE, SEED_PRED, SEED_TRUE, assert_problem_body

CURL = shutil.which("curl")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(CURL is None, reason="the curl binary is not installed"),
]


@dataclass
class CurlResult:
    status: int
    content_type: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def curl(tmp_path: Path, url: str, *args: str) -> CurlResult:
    """Run ``curl -sS`` on ``url``: the body goes to a file, status and content type to stdout."""
    out = tmp_path / "body"
    proc = subprocess.run(
        [
            CURL or "curl",
            "-sS",
            "--max-time",
            "30",
            "-o",
            str(out),
            "-w",
            "%{http_code}\n%{content_type}",
            *args,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    status, content_type = proc.stdout.split("\n", 1)
    return CurlResult(int(status), content_type, out.read_bytes())


def test_evaluate_seed_example(tmp_path: Path, live_server: str) -> None:
    r = curl(
        tmp_path,
        f"{live_server}/v1/losses/mse",
        "-H",
        "content-type: application/json",
        "-d",
        json.dumps({"y_true": SEED_TRUE, "y_pred": SEED_PRED}),
    )
    assert r.status == 200, r.body
    assert r.content_type.startswith("application/json")
    body = r.json()
    assert body["per_sample"] == SEED_MSE
    assert body["loss"] == "mean_squared_error" and body["count"] == 2
    assert body["mean"] == pytest.approx(0.5) and body["sum"] == pytest.approx(1.0)


def test_catalogue(tmp_path: Path, live_server: str) -> None:
    r = curl(tmp_path, f"{live_server}/v1/losses")
    assert r.status == 200 and r.content_type.startswith("application/json")
    assert len(r.json()["losses"]) == 34  # 19 Keras losses, 15 torch
    r = curl(tmp_path, f"{live_server}/v1/losses/LogCosh")
    assert r.status == 200 and r.json()["name"] == "log_cosh"


def test_unknown_loss_is_a_404_problem(tmp_path: Path, live_server: str) -> None:
    r = curl(tmp_path, f"{live_server}/v1/losses/mean_sqared_error")
    assert r.status == 404
    assert r.content_type.startswith(PROBLEM)
    body = r.json()
    assert_problem_body(body, 404, "/path/name")
    assert "mean_squared_error" in body["suggestions"]


def test_ragged_tensor_is_a_422_problem(tmp_path: Path, live_server: str) -> None:
    r = curl(
        tmp_path,
        f"{live_server}/v1/losses/mse",
        "-H",
        "content-type: application/json",
        "-d",
        '{"y_true": [[0, 1], [1, 0]], "y_pred": [[1, 1], [0, 1, 1]]}',
    )
    assert r.status == 422
    assert r.content_type.startswith(PROBLEM)
    assert_problem_body(r.json(), 422, "/y_pred/1")


def test_form_post_is_a_415_problem(tmp_path: Path, live_server: str) -> None:
    # curl -d without a content type sends application/x-www-form-urlencoded
    r = curl(tmp_path, f"{live_server}/v1/losses/mse", "-d", '{"y_true": [[0]], "y_pred": [[1]]}')
    assert r.status == 415 and r.content_type.startswith(PROBLEM)
    assert_problem_body(r.json(), 415, "/header/content-type")


def test_ndjson_stream_from_a_file(tmp_path: Path, live_server: str) -> None:
    lines = tmp_path / "chunks.ndjson"
    lines.write_text(
        "".join(
            json.dumps({"y_true": [t], "y_pred": [p]}) + "\n"
            for t, p in zip(SEED_TRUE, SEED_PRED, strict=True)
        )
    )
    r = curl(
        tmp_path,
        f"{live_server}/v1/losses/mse/stream?per_sample=true",
        "-H",
        "content-type: application/x-ndjson",
        "--data-binary",
        f"@{lines}",
    )
    assert r.status == 200, r.body
    body = r.json()
    assert body["per_sample"] == SEED_MSE
    assert body["chunks"] == 2 and body["count"] == 2
    assert body["mean"] == pytest.approx(0.5)


def test_ndjson_stream_chunked_from_stdin(tmp_path: Path, live_server: str) -> None:
    # "-T -" uploads stdin with Transfer-Encoding: chunked (no Content-Length); -X POST keeps
    # the method.
    data = "".join(
        json.dumps({"y_true": [t], "y_pred": [p]}) + "\n"
        for t, p in zip(SEED_TRUE, SEED_PRED, strict=True)
    )
    proc = subprocess.run(
        [
            CURL or "curl",
            "-sS",
            "--max-time",
            "30",
            "-X",
            "POST",
            "-H",
            "content-type: application/x-ndjson",
            "-T",
            "-",
            "-w",
            "\n%{http_code}",
            f"{live_server}/v1/losses/mse/stream?per_sample=true",
        ],
        input=data,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    body, status = proc.stdout.rsplit("\n", 1)
    assert status == "200", body
    assert json.loads(body)["per_sample"] == SEED_MSE
