"""The load test's figures as text, and their section of bench/RESULTS.md."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

from bench.loadtest.runner import Report
from bench.report import LOADTEST_BEGIN as BEGIN
from bench.report import LOADTEST_END as END


def summary(report: Report) -> str:
    """The figures of one run as a Markdown section (also what is printed)."""
    c, w = report.config, report.wrk
    seconds = w["duration_us"] / 1e6
    statuses = report.statuses
    by_class = {f"{k}xx": sum(n for s, n in statuses.items() if s // 100 == k) for k in (2, 4, 5)}
    issued = w["issued"]
    latency = w["latency_us"]
    lines = [
        "## Load test (`make loadtest`)",
        "",
        f"wrk, {c.duration_s} s, {c.connections} connections, {c.threads} threads, against "
        f"`lossd serve --workers {c.workers}` on loopback ({platform.machine()}, "
        f"{_cpus()} CPUs), {time.strftime('%Y-%m-%d')}. Mixed traffic (bench/loadtest/mixed.lua):"
        f" small evaluations, batches, v2 and NDJSON requests, bad inputs expecting 4xx, and "
        f"{c.big_mib:g} MiB bodies (one per {c.big_every} requests of a thread).",
        "",
        "| figure | value |",
        "|---|---|",
        f"| requests answered | {w['requests']} ({w['requests'] / seconds:.0f}/s) |",
        f"| by class | 2xx {by_class['2xx']}, 4xx {by_class['4xx']}, 5xx {by_class['5xx']} "
        f"(503 shed: {statuses[503]}) |",
        f"| by status | {', '.join(f'{s}: {n}' for s, n in sorted(statuses.items()))} |",
        f"| big bodies sent | {issued.get('big', 0)} |",
        f"| socket errors (connect/read/write/timeout) | {report.socket_errors} |",
        f"| latency mean / p50 / p99 / max | {latency['mean'] / 1000:.1f} / "
        f"{latency['p50'] / 1000:.1f} / {latency['p99'] / 1000:.1f} / "
        f"{latency['max'] / 1000:.1f} ms |",
        f"| server peak RSS (VmHWM, {report.processes} processes) | "
        f"{report.peak_rss_mib:.0f} MiB (bound {c.rss_bound_mib} MiB) |",
        f"| answers checked by hand-derived values | {sum(report.samples.values())} "
        f"(+{report.shed_samples} shed with 503) |",
        f"| result | {'PASS' if not report.failures else 'FAIL'} |",
    ]
    lines += [f"- {failure}" for failure in report.failures]
    return "\n".join(lines) + "\n"


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


def write_section(path: Path, text: str) -> None:
    """Put ``text`` between the loadtest markers of ``path``, leaving the rest of the file as it
    is; add the markers at the end when absent (and the file when missing)."""
    current = path.read_text() if path.exists() else ""
    block = f"{BEGIN}\n{text}{END}"
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        updated = head + block + tail
    else:
        separator = (
            ""
            if not current or current.endswith("\n\n")
            else "\n"
            if current.endswith("\n")
            else "\n\n"
        )
        updated = current + separator + block + "\n"
    path.write_text(updated)
