"""Targets with PASS/FAIL, the printed summary, and ``bench/RESULTS.md``.

``RESULTS.md`` is rewritten on every full run; the section between ``<!-- loadtest:begin -->`` and
``<!-- loadtest:end -->`` belongs to the load test and is carried over unchanged.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LOADTEST_BEGIN = "<!-- loadtest:begin -->"
LOADTEST_END = "<!-- loadtest:end -->"


@dataclass
class Target:
    """One goal of the issue and how this run did against it."""

    id: str
    what: str
    measured: str
    goal: str
    passed: bool | None  # None: not measured (a tool missing), reported as SKIP
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return "SKIP" if self.passed is None else "PASS" if self.passed else "FAIL"


@dataclass
class Section:
    """A benchmark's figures (label, value) and its targets."""

    title: str
    figures: list[tuple[str, str]] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def print(self) -> None:
        print(f"\n== {self.title}")
        width = max((len(label) for label, _ in self.figures), default=0)
        for label, value in self.figures:
            print(f"  {label:<{width}}  {value}")
        for t in self.targets:
            print(f"  {t.verdict:4}  {t.id} {t.what}: {t.measured} (goal {t.goal})")
            for note in t.notes:
                print(f"        {note}")
        for note in self.notes:
            print(f"  note: {note}")


def machine() -> list[tuple[str, str]]:
    """What the figures were measured on."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "unknown"
    return [
        ("date", datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("CPU", cpu),
        ("cores", str(os.cpu_count())),
        ("load average at the start (1/5/15 min)", load),
        ("Python", sys.version.split()[0]),
        ("NumPy", np.__version__),
        ("OS", platform.platform()),
    ]


def summary(sections: list[Section]) -> list[Target]:
    """Print every target once more, in one list, and return them."""
    targets = [t for s in sections for t in s.targets]
    print("\n== Targets")
    for t in targets:
        print(f"  {t.verdict:4}  {t.id:3} {t.what}: {t.measured} (goal {t.goal})")
    return targets


def markdown(sections: list[Section], info: list[tuple[str, str]], command: str) -> str:
    """RESULTS.md without the load-test section."""
    out = [
        "# Benchmark results",
        "",
        f"Measured by `{command}`; every figure and ratio below comes from that one run.",
        "Servers ran on 127.0.0.1 as users start them (`lossd serve`, default settings but the",
        "port unless a section says otherwise); times are medians of wall-clock request times.",
        "Ratios are what to compare across machines; a load average near or above the number of",
        "cores means other work shared the CPU and every figure is noisy.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in info],
        "",
        "## Targets",
        "",
        "| | target | measured | goal | |",
        "|---|---|---|---|---|",
        *[
            f"| {t.id} | {t.what} | {t.measured} | {t.goal} | **{t.verdict}** |"
            for s in sections
            for t in s.targets
        ],
        "",
    ]
    for s in sections:
        out += [f"## {s.title}", ""]
        if s.figures:
            out += ["| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in s.figures], ""]
        for t in s.targets:
            out += [f"- {t.id} {t.verdict}: {note}" for note in t.notes]
        out += [f"- {note}" for note in s.notes]
        if s.notes or any(t.notes for t in s.targets):
            out.append("")
    return "\n".join(out)


def write(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, keeping the load-test section of the file already there."""
    kept = f"{LOADTEST_BEGIN}\n{LOADTEST_END}"
    if path.exists():
        found = re.search(
            re.escape(LOADTEST_BEGIN) + r".*?" + re.escape(LOADTEST_END), path.read_text(), re.S
        )
        if found:
            kept = found.group(0)
    path.write_text(f"{text.rstrip()}\n\n{kept}\n")
