"""X-Request-ID on every response and one log line per request on stdout (JSON or text)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import math
import random
import re
import select
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.observability.context import new_request_id
from app.observability.logs import (
    RequestLog,
    StdoutHandler,
    configure_logging,
    iso_time,
    uvicorn_log_config,
)
from app.settings import Settings
from tests.e2e.conftest import ServerProcess, lossd_serve_argv
from tests.e2e.raw_client import raw_request
from tests.helpers import SEED

GENERATED = re.compile(r"[0-9a-f]{32}")
FIELDS = {
    "method",
    "path",
    "route",
    "status",
    "loss",
    "elements",
    "duration_ms",
    "request_id",
    "client",
}


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The JSON lines written to stdout since the last call (every one must be JSON)."""
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def request_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [line for line in log_lines(capsys) if line["logger"] == "lossd.access"]


# --- X-Request-ID ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sent",
    ["abc-123", "x" * 128, "0f:1/2;3@4[5]~!", "Request.ID_with-every=visible&char?"],
)
def test_a_sane_client_id_is_echoed(client: TestClient, sent: str) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": sent})
    assert response.headers["x-request-id"] == sent


@pytest.mark.parametrize(
    "sent",
    [b"", b"x" * 129, b"has space", b"tab\there", "caf\u00e9".encode("latin-1"), b"\x7f"],
)
def test_an_insane_client_id_is_replaced(client: TestClient, sent: bytes) -> None:
    response = client.get("/healthz", headers=[(b"X-Request-ID", sent)])
    assert GENERATED.fullmatch(response.headers["x-request-id"])


def test_ids_are_generated_per_request(client: TestClient) -> None:
    ids = {client.get("/healthz").headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5 and all(GENERATED.fullmatch(i) for i in ids)


def test_every_kind_of_response_carries_the_id(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_body_bytes=1024)

    def boom() -> None:
        raise RuntimeError("a bug")

    client.app.add_api_route("/boom", boom)  # type: ignore[attr-defined]
    ndjson = {"Content-Type": "application/x-ndjson"}
    responses = {
        "ok": client.post("/v1/losses/mse", json=SEED),
        "stream": client.post("/v1/losses/mse/stream", content=json.dumps(SEED), headers=ndjson),
        "batch": client.post("/v1/batch", json={"items": [{"loss": "mse", **SEED}]}),
        "unknown loss": client.post("/v1/losses/nope", json=SEED),
        "invalid": client.post("/v1/losses/mse", json={"y_true": [[1]], "y_pred": [[1, 2]]}),
        "too large": client.post("/v1/losses/mse", content=b"[" * 2000, headers=ndjson),
        "no route": client.get("/nowhere"),
        "wrong method": client.delete("/v1/losses"),
        "v2 error": client.post("/v2/models/nope/infer", json={}),
        "bug": client.get("/boom"),
        "metrics": client.get("/metrics"),
    }
    statuses = {name: r.status_code for name, r in responses.items()}
    assert statuses == {
        "ok": 200,
        "stream": 200,
        "batch": 200,
        "unknown loss": 404,
        "invalid": 422,
        "too large": 413,
        "no route": 404,
        "wrong method": 405,
        "v2 error": 404,
        "bug": 500,
        "metrics": 200,
    }
    for name, response in responses.items():
        assert GENERATED.fullmatch(response.headers.get("x-request-id", "")), name
        assert response.headers.get_list("x-request-id") == [response.headers["x-request-id"]]


# --- the request log -------------------------------------------------------------------------


@pytest.fixture
def logged(make_client: Callable[..., TestClient]) -> TestClient:
    """A client whose app logs as JSON at level info, whatever the environment says."""
    return make_client(log_level="info", log_format="json")


def test_one_json_line_per_request(logged: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    log_lines(capsys)  # start-up
    response = logged.post("/v1/losses/MSE?x=1", json=SEED, headers={"X-Request-ID": "req-7"})
    logged.get("/v1/losses")
    first, second = request_lines(capsys)
    assert set(first) == {"time", "level", "logger", "message", *FIELDS}
    assert first["time"].endswith("+00:00") and first["level"] == "info"
    duration = first.pop("duration_ms")
    assert isinstance(duration, float) and duration > 0
    assert {k: first[k] for k in FIELDS - {"duration_ms"}} == {
        "method": "POST",
        "path": "/v1/losses/MSE",
        "route": "/v1/losses/{name}",
        "status": 200,
        "loss": "mean_squared_error",
        "elements": 6,
        "request_id": "req-7",
        "client": "testclient",
    }
    assert response.headers["x-request-id"] == "req-7"
    assert (second["path"], second["route"], second["loss"], second["elements"]) == (
        "/v1/losses",
        "/v1/losses",
        None,
        0,
    )
    assert GENERATED.fullmatch(second["request_id"])


def test_batch_and_errors_in_the_log(
    logged: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    log_lines(capsys)
    items = [{"loss": ["mse", "mae"], **SEED}, {"loss": "hinge", **SEED}]
    logged.post("/v1/batch", json={"items": items})
    logged.post("/v1/losses/huber", json={"y_true": [[1]], "y_pred": [[1, 2]]})
    logged.get("/nowhere")
    batch, invalid, unmatched = request_lines(capsys)
    assert (batch["route"], batch["status"], batch["loss"], batch["elements"]) == (
        "/v1/batch",
        200,
        None,
        18,
    )
    assert (invalid["status"], invalid["loss"], invalid["elements"]) == (422, "huber", 0)
    assert (unmatched["path"], unmatched["route"], unmatched["status"]) == ("/nowhere", None, 404)


def test_unhandled_error_logs_its_traceback_with_the_request_id(
    logged: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom() -> None:
        raise RuntimeError("a bug")

    logged.app.add_api_route("/boom", boom)  # type: ignore[attr-defined]
    log_lines(capsys)
    logged.get("/boom", headers={"X-Request-ID": "req-500"})
    error, request = log_lines(capsys)
    assert error["logger"] == "lossd" and error["level"] == "error"
    assert error["request_id"] == "req-500"
    assert "RuntimeError: a bug" in error["exc_info"]
    assert (request["status"], request["request_id"]) == (500, "req-500")


def test_text_format(
    make_client: Callable[..., TestClient], capsys: pytest.CaptureFixture[str]
) -> None:
    client = make_client(log_level="info", log_format="text")
    capsys.readouterr()
    client.get("/v1/losses/mse", headers={"X-Request-ID": "t-1"})
    client.get("/v1/losses/no such loss")
    ok, missing = capsys.readouterr().out.splitlines()
    assert re.fullmatch(
        r"\S+ \S+ INFO lossd\.access: request method=GET path=/v1/losses/mse "
        r"route=/v1/losses/\{name\} status=200 loss=- elements=0 duration_ms=[\d.]+ "
        r"request_id=t-1 client=testclient",
        ok,
    ), ok
    assert 'path="/v1/losses/no such loss"' in missing


def test_log_level_warning_silences_request_lines(
    make_client: Callable[..., TestClient], capsys: pytest.CaptureFixture[str]
) -> None:
    client = make_client(log_level="warning")
    capsys.readouterr()
    client.get("/healthz")
    assert capsys.readouterr().out == ""


def test_uvicorn_access_log_is_off(make_client: Callable[..., TestClient]) -> None:
    # The request log replaces uvicorn's access log, as `uvicorn --no-access-log` would: uvicorn
    # writes access lines only while its logger has handlers (checked per connection).
    access = logging.getLogger("uvicorn.access")
    access.addHandler(logging.StreamHandler())  # as uvicorn's logging configuration does
    make_client()
    assert access.handlers == [] and not access.propagate


def test_log_format_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOSSD_LOG_FORMAT", raising=False)
    assert Settings().log_format == "json"
    monkeypatch.setenv("LOSSD_LOG_FORMAT", "text")
    assert Settings().log_format == "text"
    monkeypatch.setenv("LOSSD_LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="json"):
        Settings()


def test_generated_ids_are_uuid4s() -> None:
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    for value in ids:
        parsed = uuid.UUID(hex=value)
        assert parsed.hex == value and parsed.version == 4 and parsed.variant == uuid.RFC_4122


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_request_lines_are_the_same_through_logging(
    make_client: Callable[..., TestClient],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    log_format: str,
) -> None:
    # The request log hands lines straight to lossd's handler while the loggers are as
    # configure_logging left them; with a filter added it goes through Logger.info. Same lines.
    client = make_client(log_level="info", log_format=log_format)
    access, parent = logging.getLogger("lossd.access"), logging.getLogger("lossd")
    # as lossd serve runs: pytest's capture adds its handlers to every logger, lossd's included
    ours = [h for h in parent.handlers if isinstance(h, StdoutHandler)]
    monkeypatch.setattr(parent, "handlers", ours)

    def lines() -> list[str]:
        client.post("/v1/losses/mse", json=SEED, headers={"X-Request-ID": "same"})
        client.get("/nowhere", headers={"X-Request-ID": "same"})
        out = capsys.readouterr().out.splitlines()
        # time and duration differ between the two runs
        return [re.sub(r"\d[\d:., T-]*\d|\d", "#", line) for line in out]

    capsys.readouterr()
    assert RequestLog()._direct_handler() is not None
    direct = lines()
    access.addFilter(lambda record: True)
    try:
        assert RequestLog()._direct_handler() is None
        through_logging = lines()
    finally:
        access.filters.clear()
    assert len(direct) == 2 and direct == through_logging, (direct, through_logging)


def test_the_lines_of_a_loop_iteration_go_out_in_one_write(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # As lossd serve runs: stdout is the process's own (here pytest's capture stands for it) and
    # lossd's handler is the only one (pytest adds its own to every logger).
    configure_logging("info", "json")
    parent = logging.getLogger("lossd")
    monkeypatch.setattr(
        parent, "handlers", [h for h in parent.handlers if isinstance(h, StdoutHandler)]
    )
    monkeypatch.setattr(sys, "__stdout__", sys.stdout)
    writes: list[str] = []
    write = sys.stdout.write
    monkeypatch.setattr(sys.stdout, "write", lambda text: writes.append(text) or write(text))
    log = RequestLog()
    assert log._direct_handler() is not None

    def fields(request_id: str) -> dict[str, Any]:
        return dict.fromkeys(FIELDS) | {"request_id": request_id}

    async def requests() -> None:
        log.write(fields("a"))
        log.write(fields("b"))
        assert writes == []  # queued until the loop has run what is ready
        await asyncio.sleep(0)
        assert len(writes) == 1  # both lines, one write
        log.write(fields("c"))
        parent.warning("not a request")  # writes the queued line first
        await asyncio.sleep(0)

    asyncio.run(requests())
    lines = log_lines(capsys)
    assert [line.get("request_id") or line["message"] for line in lines] == [
        "a",
        "b",
        "c",
        "not a request",
    ]


def test_queued_lines_go_out_in_writes_a_pipe_keeps_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    # Workers share their stdout: a write to a pipe of up to PIPE_BUF bytes is never interleaved
    # with another process's, so a batch is split at line ends to stay within it.
    handler = StdoutHandler()
    writes: list[str] = []

    class Stdout(io.StringIO):
        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

    monkeypatch.setattr(sys, "stdout", Stdout())
    lines = [f"line {i} " + "x" * 250 for i in range(40)] + ["é" * 300, "y" * 5000]
    for line in lines:
        handler.queue_line(line)
    handler.flush()
    assert "".join(writes).splitlines() == lines
    assert len(writes) > 3
    for text in writes:
        assert len(text.encode()) <= select.PIPE_BUF or text.count("\n") == 1


def test_a_replaced_stdout_gets_each_line_at_once(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # pytest's capture, like any stdout replaced in the process, may be read by another thread
    # (a TestClient's caller) as soon as the response is out.
    configure_logging("info", "json")
    parent = logging.getLogger("lossd")
    ours = [h for h in parent.handlers if isinstance(h, StdoutHandler)]
    monkeypatch.setattr(parent, "handlers", ours)
    log = RequestLog()
    assert log._direct_handler() is not None and sys.stdout is not sys.__stdout__

    async def request() -> None:
        log.write(dict.fromkeys(FIELDS) | {"request_id": "now"})
        assert [line["request_id"] for line in request_lines(capsys)] == ["now"]

    asyncio.run(request())


def test_handlers_added_to_the_request_log_get_every_line(
    make_client: Callable[..., TestClient], capsys: pytest.CaptureFixture[str]
) -> None:
    client = make_client(log_level="info", log_format="json")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    access = logging.getLogger("lossd.access")
    keep = Keep()
    access.addHandler(keep)
    try:
        client.get("/healthz", headers={"X-Request-ID": "kept"})
    finally:
        access.removeHandler(keep)
    [record] = records
    assert record.fields["request_id"] == "kept"  # type: ignore[attr-defined]
    assert record.lineno and record.process  # a full record, made by Logger.info
    assert [line["request_id"] for line in request_lines(capsys)] == ["kept"]  # still on stdout


def test_log_times_are_datetimes_isoformat() -> None:
    second = 1_800_000_000
    fractions = [0.0, 0.0005, 0.0004995, 0.1234565, 0.999, 0.9995, 0.9999994999, 0.9999995]
    created = [second + k + f for k in range(3) for f in fractions]
    created += [math.nextafter(t, direction) for t in created for direction in (0, math.inf)]
    created += [random.uniform(0, 4e9) for _ in range(10_000)]
    for t in created:
        assert iso_time(t) == datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


# --- escaping: a client cannot forge a log line ---------------------------------------------

#: A decoded path that would start a forged line if written raw (no space in it: a value with
#: spaces was always quoted, and escaped with it).
FORGED_PATH = "/v1/losses/x%0d%0aFORGED:INFO:lossd.access:request"
#: Non-printable characters a path may carry once decoded: C0 and C1 controls (NEL is a line
#: break to Python's splitlines), DEL, the Unicode line and paragraph separators, a format char.
NON_PRINTABLE = ["\r", "\n", "\t", "\x1b", "\x7f", "\x85", "\u2028", "\u2029", "\u200b"]


@pytest.mark.parametrize("with_keys", [False, True])
def test_text_lines_escape_a_forged_path(
    make_client: Callable[..., TestClient], capsys: pytest.CaptureFixture[str], with_keys: bool
) -> None:
    keys = {"api_keys": "k-0123456789"} if with_keys else {}
    client = make_client(log_level="info", log_format="text", **keys)
    capsys.readouterr()
    status = client.get(FORGED_PATH).status_code
    assert status == (401 if with_keys else 404)
    [line] = capsys.readouterr().out.splitlines()  # one line, whatever the path holds
    assert "lossd.access: request method=GET" in line
    assert 'path="/v1/losses/x\\r\\nFORGED:INFO:lossd.access:request"' in line


@pytest.mark.parametrize("char", NON_PRINTABLE)
@pytest.mark.parametrize("log_format", ["json", "text"])
def test_every_non_printable_character_is_escaped(
    make_client: Callable[..., TestClient],
    capsys: pytest.CaptureFixture[str],
    log_format: str,
    char: str,
) -> None:
    client = make_client(log_level="info", log_format=log_format)
    capsys.readouterr()
    path = "/v1/losses/a" + char + "b"
    client.get(path.replace(char, "".join(f"%{b:02X}" for b in char.encode())))
    out = capsys.readouterr().out
    assert out.endswith("\n") and out.count("\n") == 1 and out[:-1].isprintable(), repr(out)
    if log_format == "json":
        assert json.loads(out)["path"] == path  # escaped as JSON, read back exactly
    else:
        assert f"path={json.dumps(path)}" in out


def test_text_tracebacks_cannot_start_a_line(
    make_client: Callable[..., TestClient], capsys: pytest.CaptureFixture[str]
) -> None:
    client = make_client(log_level="info", log_format="text")

    def boom() -> None:
        raise RuntimeError("bad\n2026-01-01 00:00:00,000 INFO lossd.access: FORGED\rx\x1b[2J")

    client.app.add_api_route("/boom", boom)  # type: ignore[attr-defined]
    capsys.readouterr()
    client.get("/boom")
    error, *traceback, request = capsys.readouterr().out.splitlines()
    assert "ERROR lossd" in error and "lossd.access: request" in request
    # every line of the traceback is indented: only a record starts at the first column
    assert traceback and all(line.startswith("    ") for line in traceback), traceback
    assert all(line.isprintable() for line in traceback)
    assert any("RuntimeError: bad" in line for line in traceback)
    assert "    2026-01-01 00:00:00,000 INFO lossd.access: FORGED" in traceback
    assert "    x\\u001b[2J" in traceback  # the carriage return broke a line, indented too


@pytest.mark.e2e
def test_a_live_text_log_cannot_be_forged_even_on_a_401() -> None:
    # the review's probe: lossd serve with text logs and keys, the path sent raw on the socket
    server = ServerProcess(
        env={"LOSSD_LOG_FORMAT": "text", "LOSSD_LOG_LEVEL": "info", "LOSSD_API_KEYS": "k-12345"},
        argv=lossd_serve_argv,
        ready_path="/healthz",
    )
    try:
        server.wait_ready()
        request = f"GET {FORGED_PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        status, _, _ = raw_request(server.url, request.encode())
        assert status == 401
        deadline = time.monotonic() + 10
        while "FORGED" not in server.output() and time.monotonic() < deadline:
            time.sleep(0.05)  # the line is written once the response is sent
        output = server.output()
    finally:
        server.stop()
    [line] = [line for line in output.splitlines() if "FORGED" in line]
    assert "lossd.access: request method=GET" in line and "status=401" in line
    assert not any(line.startswith("FORGED") for line in output.splitlines())


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_uvicorns_own_lines_are_escaped_too(log_format: str) -> None:
    # uvicorn logs a 500's traceback itself too ("Exception in ASGI application"), and the
    # exception's message may hold what a client sent: its lines use lossd's formatters
    formatter = uvicorn_log_config(log_format)["formatters"]["default"]
    name = {"json": "JsonFormatter", "text": "TextFormatter"}[log_format]
    assert formatter == {"()": f"app.observability.logs.{name}"}
