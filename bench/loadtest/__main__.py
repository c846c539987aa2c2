"""``python -m bench.loadtest``: the long load test; prints its figures and writes them to
bench/RESULTS.md. Exits 1 when an invariant failed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.loadtest.results import summary, write_section
from bench.loadtest.runner import Config, run

RESULTS = Path(__file__).resolve().parents[1] / "RESULTS.md"


def main(argv: list[str] | None = None) -> int:
    """Run, print, record."""
    defaults = Config()
    parser = argparse.ArgumentParser(prog="python -m bench.loadtest", description=__doc__)
    parser.add_argument("--duration", type=int, default=defaults.duration_s, help="seconds")
    parser.add_argument("--connections", type=int, default=defaults.connections)
    parser.add_argument("--big-mib", type=float, default=defaults.big_mib)
    parser.add_argument("--big-every", type=int, default=defaults.big_every)
    parser.add_argument("--rss-bound-mib", type=int, default=defaults.rss_bound_mib)
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args(argv)
    config = Config(
        duration_s=args.duration,
        connections=args.connections,
        big_mib=args.big_mib,
        big_every=args.big_every,
        rss_bound_mib=args.rss_bound_mib,
    )
    report = run(config)
    text = summary(report)
    print(text)
    if not args.no_write:
        write_section(RESULTS, text)
        print(f"written to {RESULTS}")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
