"""``python -m bench --tiny``: the benchmark harness runs end to end on tiny sizes.

It starts the real servers (lossd and the baselines), drives them with its client and wrk, and
writes a results file. Nothing here asserts a timing: only that every benchmark ran, printed a
verdict per target, and that the results file keeps the load-test section it must not touch.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import decoding, report
from tests.helpers import require_executable

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ["E", "P1", "P2", "T1", "T2", "T3", "T4", "P5", "P6", "S", "C1", "D"]


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
    assert all(v != "SKIP" for v, target in verdicts if target in ("T4", "P6")), summary
    assert all(v != "SKIP" for v, target in verdicts if target in ("T1", "T3")), summary

    text = results.read_text()
    assert kept in text and "# old results" not in text
    assert text.index("## Targets") < text.index(report.LOADTEST_BEGIN)
    for target in TARGETS:
        assert f"| {target} |" in text
    assert "## Machine" in text and "| cores |" in text


# --- T2's decoder lookup (in-process, fast) ---------------------------------------------------


def zeros(body: bytes) -> dict[str, np.ndarray]:
    """A decoder that gets every value wrong."""
    return {name: np.zeros_like(a) for name, a in decoding.baseline(body).items()}


def test_decoder_target_skips_when_the_decoder_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(decoding.DECODER_ENV, "app.api.no_such_module:decode_body")
    [target] = decoding.decoder_section(2_000, 1).targets
    assert target.verdict == "SKIP" and "decoder not available" in target.measured
    monkeypatch.setenv(decoding.DECODER_ENV, "bench.decoding:no_such_function")
    [target] = decoding.decoder_section(2_000, 1).targets
    assert target.verdict == "SKIP" and "no function no_such_function" in target.measured


def test_decoder_target_times_a_decoder_and_checks_its_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(decoding.DECODER_ENV, "bench.decoding:baseline")  # a correct decoder
    section = decoding.decoder_section(2_000, 1)
    [target] = section.targets
    assert (
        target.id == "T2" and target.verdict in ("PASS", "FAIL") and target.measured.endswith("x B")
    )
    assert any(label.startswith("decoder: bench.decoding:baseline") for label, _ in section.figures)
    monkeypatch.setenv(decoding.DECODER_ENV, f"{__name__}:zeros")
    with pytest.raises(AssertionError, match="decoded y_true wrong"):
        decoding.decoder_section(2_000, 1)
