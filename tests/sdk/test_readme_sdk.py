"""docs/sdks.md (the README's "SDKs" page): its generator commands are the ones the SDK tests
run (and ``make sdk``), and its Python example runs against a live server with the printed output.
The TypeScript example is compiled with the scenario (``build.compiled_scenario``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.sdk import build

# Bounded on a fresh machine (cold caches: see the time limits in tests/sdk/build.py).
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]
README_URL = "http://127.0.0.1:8000"
SPEC = "openapi/openapi.json"
TS_COMMAND = " ".join(
    ["openapi-generator-cli", *build.TS_GENERATOR_ARGS, "-i", SPEC, "-o", "build/sdk/typescript"]
)
PY_OUT = f"build/sdk/python/{build.PYTHON_PACKAGE}"
PY_COMMAND = " ".join(
    ["openapi-python-client", *build.PY_GENERATOR_ARGS, "--path", SPEC, "--output-path", PY_OUT]
)


def test_readme_and_makefile_generate_as_the_tests_do() -> None:
    (commands,) = build.readme_blocks("sh")
    assert commands.splitlines() == [f".venv/bin/{TS_COMMAND}", f".venv/bin/{PY_COMMAND}"]
    makefile = (build.ROOT / "Makefile").read_text().partition("\nsdk:")[2]
    recipe = [line.strip() for line in makefile.splitlines()[1:3]]
    assert recipe == [f"$(BIN)/{TS_COMMAND}", f"$(BIN)/{PY_COMMAND}"]


def test_readme_python_example(live_server: str) -> None:
    build.python_client()  # the example imports it from build/sdk/python
    (example,) = build.readme_blocks("python")
    assert README_URL in example
    proc = subprocess.run(
        [sys.executable, "-c", example.replace(README_URL, live_server)],
        cwd=build.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    # Hand-derived in tests/sdk/expected.py (WEIGHTED_HUBER); docs/api.md's "Errors" pointer.
    assert proc.stdout.splitlines() == ["[0.375, 0.015625] 0.1953125", "422 /y_pred/1"]
