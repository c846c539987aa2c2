"""Micro-benchmark: the gradient and Hessian diagonal of each loss against the loss value alone.

Each loss of the catalogue, Keras's and torch's, runs on 1M float32 elements (1000 x 1000,
default options and reduction: ``sum_over_batch_size``, torch's ``mean``) through the engine's
own entry point, ``app.losses.evaluate_tensors``, on tensors already checked (as the HTTP layer
hands them over): once for the value alone, once with ``gradient=True, hessian_diagonal=True``.
Rounds interleave the two (``bench.timing``), each call right after an untimed warm-up of its
own, so a burst of other work slows both alike. The extra cost of the derivatives is
``with - value`` in each round; the ratio is the median over the rounds of
``(with - value) / value``. Target (issue 13): ratio <= 2 for every loss.

    .venv/bin/python -m bench.derivatives [--repeats N] [--size N] [--only NAME ...]
        [--glibc-default]
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.losses import CATALOGUE, LossSpec, Tensors, evaluate_tensors
from app.runtime import keep_freed_memory
from bench.payloads import loss_inputs
from bench.timing import interleaved, timed

#: The target: the derivatives' extra time over the value's own engine time, per loss.
GOAL = 2.0


def make_tensors(spec: LossSpec, n: int, rng: np.random.Generator) -> Tensors:
    """:func:`bench.payloads.loss_inputs` as checked tensors."""
    return Tensors(*loss_inputs(spec, n, rng))


def measure(spec: LossSpec, tensors: Tensors, repeats: int) -> tuple[float, float, float]:
    """(value seconds, with-derivatives seconds, median per-round extra ratio)."""

    def value() -> None:
        evaluate_tensors(spec, tensors)

    def derivatives() -> None:
        evaluate_tensors(spec, tensors, gradient=True, hessian_diagonal=True)

    times = interleaved(
        {"value": timed(value, warm=True), "with": timed(derivatives, warm=True)},
        repeats,
        rotate=True,
    )
    ratios = [(w - v) / v for v, w in zip(times["value"], times["with"], strict=True)]
    return (
        statistics.median(times["value"]),
        statistics.median(times["with"]),
        statistics.median(ratios),
    )


@dataclass(frozen=True)
class Row:
    """One loss's figures: median seconds of the value alone and with both derivatives, and the
    median per-round ratio of the extra time to the value's."""

    name: str
    value: float
    with_derivatives: float
    ratio: float

    @property
    def passed(self) -> bool:
        return self.ratio <= GOAL


def run(argv: Sequence[str] | None = None) -> list[Row]:
    """Measure every loss (or ``--only`` some), printing a table as it goes; the rows."""
    parser = argparse.ArgumentParser(prog="python -m bench.derivatives", description=__doc__)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--only", nargs="*", help="loss names (default: every loss)")
    parser.add_argument(
        "--glibc-default",
        action="store_true",
        help="leave glibc's malloc thresholds alone (the server fixes them at start-up: "
        "app.runtime.keep_freed_memory); to measure what that changes",
    )
    args = parser.parse_args(argv)
    if not args.glibc_default:
        keep_freed_memory()  # as a lossd worker runs
    rng = np.random.default_rng(0)
    specs = [s for s in CATALOGUE if not args.only or s.name in args.only]
    print(f"derivatives vs value, {args.size}x{args.size} float32, {args.repeats} rounds")
    print(f"{'loss':40} {'value ms':>9} {'with ms':>9} {'extra/value':>12}  target <= {GOAL:g}")
    rows = []
    for spec in specs:
        row = Row(spec.name, *measure(spec, make_tensors(spec, args.size, rng), args.repeats))
        rows.append(row)
        verdict = "PASS" if row.passed else "FAIL"
        print(
            f"{spec.name:40} {row.value * 1e3:9.2f} {row.with_derivatives * 1e3:9.2f} "
            f"{row.ratio:12.2f}  {verdict}"
        )
    print(f"{sum(row.passed for row in rows)}/{len(rows)} PASS")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    run(argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
