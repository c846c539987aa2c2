"""``python -m bench --tiny``: the benchmark harness runs end to end on tiny sizes.

It starts the real servers (lossd, the naive baseline), drives them with its client and wrk, and
writes a results file. Nothing here asserts a timing: only that every benchmark ran, printed a
verdict per target, and that the results file keeps the load-test section it must not touch.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench import report
from tests.helpers import require_executable

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ["E", "P1", "P2", "P3", "P5", "P6", "S"]


@pytest.mark.e2e
@pytest.mark.slow
def test_bench_harness_runs_in_tiny_mode(tmp_path: Path) -> None:
    require_executable("wrk", "apt-get install wrk")
    results = tmp_path / "RESULTS.md"
    kept = f"{report.LOADTEST_BEGIN}\nload test figures, kept verbatim\n{report.LOADTEST_END}"
    results.write_text(f"# old results\n\n{kept}\n")

    done = subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", "--results", str(results)],
        cwd=ROOT,
        env={**os.environ, "KERAS_BACKEND": "numpy"},
        capture_output=True,
        text=True,
        timeout=280,
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = done.stdout.split("== Targets", 1)[1]
    verdicts = re.findall(r"^\s+(PASS|FAIL|SKIP)\s+(\S+)", summary, re.M)
    assert {target for _, target in verdicts} == set(TARGETS), summary
    # wrk is installed, so the throughput targets were measured, not skipped.
    assert all(v != "SKIP" for v, target in verdicts if target in ("P3", "P6")), summary

    text = results.read_text()
    assert kept in text and "# old results" not in text
    assert text.index("## Targets") < text.index(report.LOADTEST_BEGIN)
    for target in TARGETS:
        assert f"| {target} |" in text
    assert "## Machine" in text and "| cores |" in text
