"""Process concerns (app/runtime.py): exit signals, malloc arenas, and that the process-level
modules stay free of the web framework."""

from __future__ import annotations

import asyncio
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.main import create_app
from app.runtime import huge_page_environment, keep_freed_memory, limit_malloc_arenas
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_an_exit_signal_turns_readiness_off_at_once() -> None:
    """uvicorn runs the lifespan's shutdown only after the last connection closed; readiness must
    fail from the signal on, so load balancers stop sending while requests drain."""
    app = create_app(Settings())
    seen: list[str] = []
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    # stands for uvicorn's handler, which on_exit_signal must still call
    signal.signal(signal.SIGTERM, lambda signum, frame: seen.append("uvicorn"))

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://lossd") as client,
        ):
            assert (await client.get("/readyz")).status_code == 200
            signal.raise_signal(signal.SIGTERM)
            await asyncio.sleep(0)
            assert seen == ["uvicorn"]
            for path in ("/readyz", "/v2/health/ready"):
                response = await client.get(path)
                assert response.status_code == 503, path
            assert (await client.get("/healthz")).status_code == 200  # alive, not ready

    try:
        asyncio.run(asyncio.wait_for(scenario(), 30))
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def test_malloc_arenas_are_capped_unless_the_environment_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False  # the operator's choice stands
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    glibc = sys.platform == "linux" and platform.libc_ver()[0] == "glibc"
    assert limit_malloc_arenas() is glibc


@pytest.mark.parametrize("variable", ["MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"])
def test_malloc_thresholds_are_fixed_unless_the_environment_says(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.setenv(variable, "131072")
    assert keep_freed_memory() is False  # the operator's choice stands
    monkeypatch.delenv(variable)
    glibc = sys.platform == "linux" and platform.libc_ver()[0] == "glibc"
    assert keep_freed_memory() is glibc


def test_freed_temporaries_stay_mapped_for_the_next_computation() -> None:
    # What the thresholds are for: after a computation frees eight 4 MB temporaries at once,
    # the next one finds their pages mapped. Minor page faults of the second run, counted by
    # the kernel for this process, stay far below one per 4 KiB page of 32 MB (8192).
    import resource

    import numpy as np

    if not keep_freed_memory():
        pytest.skip("glibc's mallopt is not available, or the environment sets the thresholds")

    def temporaries() -> None:
        buffers = [np.ones(1_000_000, dtype=np.float32) for _ in range(8)]
        del buffers

    temporaries()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    temporaries()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < 2048, faults


WEB = ("fastapi", "starlette", "uvicorn")


def test_process_modules_import_no_web_framework() -> None:
    """The CLI, the supervisor and the runtime need the web framework only to serve; the byte
    accounting and the /v2 codec and model adapter are plain code. Checked in a fresh
    interpreter, since this one has imported the app."""
    modules = [
        "app.cli",
        "app.supervisor",
        "app.runtime",
        "app.api.accounting",
        "app.api.v2.types",
        "app.api.v2.codec",
        "app.api.v2.model",
    ]
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(WEB)!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_huge_pages_are_asked_for_unless_the_environment_says() -> None:
    glibc = sys.platform == "linux" and platform.libc_ver()[0] == "glibc"
    environ = huge_page_environment({"PATH": "/bin"})
    if not glibc:
        assert environ is None
        return
    assert environ == {"PATH": "/bin", "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}
    # any GLIBC_TUNABLES, even empty, is the operator's (and a restarted process's): no restart
    assert huge_page_environment({"GLIBC_TUNABLES": ""}) is None


def test_lossd_serve_restarts_itself_once_with_huge_pages(tmp_path: Path) -> None:
    """A real ``lossd serve``: its process (the same PID) ends up with the tunable set."""
    if huge_page_environment({}) is None:
        pytest.skip("not Linux with glibc")
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        env={**env, "LOSSD_LOG_LEVEL": "warning"},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
        assert b"GLIBC_TUNABLES=glibc.malloc.hugetlb=1" in environ
    finally:
        proc.terminate()
        proc.wait(timeout=15)
