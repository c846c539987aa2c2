"""``make bench`` (``python -m bench``): every benchmark, its figures, ratios and PASS/FAIL.

    python -m bench            # the full run (3 minutes on 2 busy cores); writes RESULTS.md
    python -m bench --quick    # fewer repeats, a 200 MiB stream, sweep to 1e6 (2 minutes)
    make bench BENCH_ARGS=--quick
    python -m bench --only json small --results /tmp/RESULTS.md

The engine against Keras's NumPy backend (``bench/engine_vs_keras.py``) and the derivatives
against the loss value (``bench/derivatives.py``) run first, in-process, then the other
benchmarks (``bench/http_bench.py``), each starting its own servers. ``bench/README.md`` says
what each target (E, P1, T1, P2, T2, T3, T4, P5, P6, S, C1, D) measures. The exit status is 0
whatever the verdicts (targets are measured, not asserted); it is 1 only when a benchmark fails
to run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

os.environ.setdefault("KERAS_BACKEND", "numpy")

from app.runtime import keep_freed_memory
from bench import http_bench, report

if TYPE_CHECKING:  # imported when run: it imports Keras
    from bench import engine_vs_keras

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller repeats and sizes")
    size.add_argument("--tiny", action="store_true", help="tiny sizes: proves the harness runs")
    parser.add_argument(
        "--only",
        nargs="*",
        choices=["engine", *http_bench.BENCHMARKS, "derivatives"],
        help="benchmarks to run (default: all)",
    )
    parser.add_argument(
        "--results",
        type=Path,
        help="where to write the results (default: bench/RESULTS.md after a full run; "
        "--quick, --tiny and --only runs write only when given this)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    cfg = (
        http_bench.Config.tiny()
        if args.tiny
        else http_bench.Config.quick()
        if args.quick
        else http_bench.Config.full()
    )
    mode = "--tiny" if args.tiny else "--quick" if args.quick else ""
    info = report.machine()
    for label, value in info:
        print(f"{label}: {value}")

    started = time.monotonic()
    sections: list[report.Section] = []
    broken = []
    if not args.only or "engine" in args.only:
        sections.append(engine_section(args.quick, args.tiny))  # calls keep_freed_memory()
    keep_freed_memory()  # glibc's malloc as a lossd worker runs it (app/runtime.py)
    # In-process like E, so before the HTTP benchmarks fill this process's heap with their
    # bodies (390 MB of JSON for the sweep): after them, the same engine calls measured up to
    # 1.8x slower, the derivatives' many fresh buffers most.
    if not args.only or "derivatives" in args.only:
        section = derivatives_section(args.quick, args.tiny)
        section.print()
        sections.append(section)
    for name, bench in http_bench.BENCHMARKS.items():
        if args.only and name not in args.only:
            continue
        try:
            section = bench(cfg)
        except Exception:
            traceback.print_exc()
            broken.append(name)
            continue
        section.print()
        sections.append(section)
    report.summary(sections)
    elapsed = time.monotonic() - started
    print(
        f"\n{len(sections)} benchmarks in {elapsed:.0f} s"
        + (f"; broken: {broken}" if broken else "")
    )
    results = args.results or (None if args.quick or args.tiny or args.only else RESULTS)
    if results is not None and not args.no_write:
        command = " ".join(
            ["python -m bench", mode, *(["--only", *args.only] if args.only else [])]
        )
        info.append(("duration of the run", f"{elapsed:.0f} s"))
        # Other work on the machine moves every figure; the load average says how much there was.
        info.append(("load average at the end", " / ".join(f"{x:.2f}" for x in os.getloadavg())))
        report.write(results, report.markdown(sections, info, command.replace("  ", " ").strip()))
        print(f"wrote {results}")
    return 1 if broken else 0


def engine_section(quick: bool, tiny: bool) -> report.Section:
    """The engine vs Keras micro-benchmark as one section (its own tables are printed as it
    runs), twice: first with glibc's default malloc settings for both sides, the condition the
    issue's figures were taken in and target E's; then, as a figure without a target, with
    lossd's (``keep_freed_memory``, as a worker runs) for both, which spares Keras its page
    faults too. Call it before anything else tunes malloc in this process."""
    from bench import engine_vs_keras

    argv = (
        ["--size", "100", "--repeats", "1", "--only", "mean_squared_error"]
        if tiny
        else (["--repeats", "3"] if quick else [])
    )
    print("\n-- glibc's default malloc settings for both")
    rows = engine_vs_keras.main(argv)
    keep_freed_memory()
    print("\n-- lossd's malloc settings (app/runtime.py) for both")
    tuned = {row.name: row for row in engine_vs_keras.main(argv)}
    side = 100 if tiny else 1000
    section = report.Section(
        f"Engine vs Keras 3 (NumPy backend), {side}x{side} float32, in-process"
    )
    section.figures = [
        (
            row.name,
            f"Keras {row.keras * 1e3:.2f} ms, lossd {row.ours * 1e3:.2f} ms, {row.ratio:.2f}x; "
            f"both on lossd's malloc settings: Keras {tuned[row.name].keras * 1e3:.2f} ms, "
            f"lossd {tuned[row.name].ours * 1e3:.2f} ms, {tuned[row.name].ratio:.2f}x",
        )
        for row in rows
    ]
    goal = engine_vs_keras.GOAL
    measured, slow = _slowest(rows, goal)
    what = "engine vs Keras, every loss (glibc's defaults for both)"
    section.targets.append(report.Target("E", what, measured, f"<= {goal}x", not slow))
    section.notes.append(
        f"without a target, lossd's malloc settings for both: {_slowest(tuned.values(), goal)[0]}; "
        "the losses bound by NumPy's float32 log (cross-entropies, poisson, kl_divergence) come "
        "near 0.5x there: lossd takes no more logarithms than the formula needs"
    )
    return section


def _slowest(rows: Iterable[engine_vs_keras.Row], goal: float) -> tuple[str, list[str]]:
    """The slowest ratio, said for a report, and the losses over ``goal``."""
    rows = list(rows)
    slow = [row.name for row in rows if row.ratio > goal]
    worst = max((row.ratio for row in rows), default=float("inf"))
    return f"slowest {worst:.2f}x Keras's time" + (f" ({', '.join(slow)})" if slow else ""), slow


def derivatives_section(quick: bool, tiny: bool) -> report.Section:
    """The gradient and Hessian diagonal against the loss value (``bench/derivatives.py``), in
    this process, as one section with target D."""
    from bench import derivatives

    size = 100 if tiny else 1000
    argv = ["--size", str(size), "--repeats", "1" if tiny else "5" if quick else "9"]
    rows = derivatives.run(argv)
    section = report.Section(
        f"Gradient and Hessian diagonal vs the value, {size}x{size} float32, in-process"
    )
    section.figures = [
        (
            row.name,
            f"value {row.value * 1e3:.2f} ms, with derivatives {row.with_derivatives * 1e3:.2f} "
            f"ms, extra {row.ratio:.2f}x",
        )
        for row in rows
    ]
    goal = derivatives.GOAL
    slow = [f"{row.name} {row.ratio:.2f}x" for row in rows if not row.passed]
    worst = max((row.ratio for row in rows), default=float("inf"))
    measured = f"largest extra {worst:.2f}x the value's time" + (
        f" ({', '.join(slow)})" if slow else ""
    )
    section.targets.append(
        report.Target(
            "D", "gradient + Hessian diagonal, every loss", measured, f"<= {goal:g}x", not slow
        )
    )
    return section


if __name__ == "__main__":
    sys.exit(main())
