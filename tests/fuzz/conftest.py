"""The live server fixtures of the end-to-end tests, and the fuzz run's case count."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.e2e.conftest import live_server, start_process, start_server

__all__ = ["CASES", "OPERATIONS", "live_server", "start_process", "start_server"]

#: Generated cases by kind ("positive", "negative") and by status class ("status 4xx").
CASES: Counter[str] = Counter()
#: Labels ("POST /v1/batch") of the operations that got at least one case.
OPERATIONS: set[str] = set()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print how many cases the fuzz run sent (``-q`` hides per-test output)."""
    if not CASES:
        return
    total = CASES["positive"] + CASES["negative"]
    kinds = ", ".join(f"{k}: {v}" for k, v in sorted(CASES.items()))
    terminalreporter.write_line(f"schemathesis: {total} generated cases ({kinds})")
