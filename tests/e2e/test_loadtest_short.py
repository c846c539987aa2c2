"""A short version of the load test (bench/loadtest): 8 s of mixed wrk traffic, 16 connections,
2 MiB big bodies, against ``lossd serve --workers 2``.

Asserts the invariants of the long run, never timings: no 5xx but deliberate 503s (each with
``Retry-After``), no socket errors, each status only from the requests that must get it, every
kind of request answered correctly on a sample (values derived by hand in
bench/loadtest/payloads.py), the server's peak RSS under the bound.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.loadtest.payloads import kinds
from bench.loadtest.results import BEGIN, END, write_section
from bench.loadtest.runner import Config, Report, check_invariants, run
from tests.helpers import require_executable

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(240)]

SHORT = Config(duration_s=8, connections=16, big_mib=2, big_every=200, rss_bound_mib=768)


def test_short_load_test_keeps_every_invariant() -> None:
    require_executable("wrk", "apt-get install wrk")
    report = run(SHORT)
    assert report.failures == []
    statuses = report.statuses
    assert statuses[200] > 0 and statuses[400] > 0 and statuses[422] > 0
    assert not [s for s in statuses if s >= 500 and s != 503]
    assert report.socket_errors == 0
    assert report.wrk["issued"]["big"] > 0
    assert set(report.samples) == {kind.name for kind in kinds(SHORT.big_mib)}
    assert 0 < report.peak_rss_mib <= SHORT.rss_bound_mib


# --- the checks themselves, on made-up wrk figures (no processes) -----------------------------


def _report(statuses: dict[str, int], errors: int = 0) -> Report:
    mix = kinds(0.01)
    report = Report(SHORT)
    report.samples.update({kind.name: 1 for kind in mix})
    report.wrk = {
        "errors": {"connect": 0, "read": errors, "write": 0, "timeout": 0},
        "issued": {"eval": 100, "bad_json": 10, "big": 1},
        "statuses": statuses,
        "no_retry_after": 0,
    }
    check_invariants(report, mix)
    return report


def test_invariants_hold_for_clean_figures() -> None:
    assert _report({"200": 95, "503": 4, "400": 10}).failures == []


@pytest.mark.parametrize(
    ("statuses", "errors", "complaint"),
    [
        ({"200": 100, "400": 10, "500": 1}, 0, "5xx other than 503"),
        ({"200": 101, "400": 10}, 1, "socket errors"),  # one read error
        ({"200": 102, "400": 10}, 0, "status 200"),  # more 200s than good requests sent
        ({"200": 100, "400": 5, "422": 5}, 0, "status 422"),  # a 422 nobody should get
    ],
)
def test_invariants_catch_bad_figures(
    statuses: dict[str, int], errors: int, complaint: str
) -> None:
    failures = _report(statuses, errors).failures
    assert any(complaint in failure for failure in failures), failures


def test_results_section_replaces_only_its_markers(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    write_section(results, "first\n")  # a missing file gets the markers
    assert results.read_text() == f"{BEGIN}\nfirst\n{END}\n"
    results.write_text(f"# Benchmarks\n\nother text\n\n{BEGIN}\nold\n{END}\n\ntail\n")
    write_section(results, "new\n")
    assert results.read_text() == f"# Benchmarks\n\nother text\n\n{BEGIN}\nnew\n{END}\n\ntail\n"
    results.write_text("# Benchmarks\n")
    write_section(results, "x\n")
    assert results.read_text() == f"# Benchmarks\n\n{BEGIN}\nx\n{END}\n"
