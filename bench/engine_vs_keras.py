"""Micro-benchmark: each loss on 1M float32 elements (1000 x 1000), lossd's engine vs Keras 3.

Both run in this process on the same arrays. Each round times Keras, lossd and lossd's core in
turn (``time.perf_counter``), each right after an untimed warm-up call of its own
(``bench.timing.interleaved``, rotating), so a burst of other work on the machine slows all three
alike. Times are medians over the rounds; a ratio is the median over the rounds of that round's
ratio. Gate: every loss takes at most half of Keras's time, ours / keras <= 0.5 (``GOAL``).
"ours" is the whole ``app.losses.evaluate`` call (validation, finiteness check, loss,
sum_over_batch_size reduction) against the whole Keras ``Loss.__call__``; "core" is the loss
function and reduction alone, for reference.

    KERAS_BACKEND=numpy .venv/bin/python -m bench.engine_vs_keras [--repeats N] [--size N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from typing import NamedTuple

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "numpy")

import keras

from app.losses import LOSSES, LossSpec, evaluate
from app.losses.reduction import reduce
from bench.payloads import loss_inputs
from bench.timing import interleaved, timed

#: The gate: lossd's time over Keras's, per loss.
GOAL = 0.5


def ours_core(spec: LossSpec, y_true: np.ndarray, y_pred: np.ndarray) -> float | None:
    """The engine's work on already-validated arrays: loss function + reduction."""
    kwargs = {o.name: o.default for o in spec.options}
    with np.errstate(all="ignore"):
        values = np.asarray(spec.fn(y_true, y_pred, **kwargs), dtype=y_pred.dtype)
        mask = spec.mask(y_true, kwargs.get("ignore_class")) if spec.mask else None
        return reduce(values, None, mask, "sum_over_batch_size").value


class Row(NamedTuple):
    """One loss: median seconds of Keras and of lossd, and the median per-round ratio."""

    name: str
    keras: float
    ours: float
    ratio: float


def paired_ratio(numerator: list[float], denominator: list[float]) -> float:
    """The median over rounds of the ratio of two contenders' times in the same round."""
    return statistics.median(n / d for n, d in zip(numerator, denominator, strict=True))


def main(argv: list[str] | None = None) -> list[Row]:
    """Run and print the comparison; returns one :class:`Row` per loss."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--size", type=int, default=1000, help="side of the square input")
    parser.add_argument("--only", nargs="*", help="loss names to run (default: all)")
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time with the process's CPU clock instead of the wall clock",
    )
    args = parser.parse_args(argv)
    clock = time.process_time if args.cpu_time else time.perf_counter
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)

    header = f"{'loss':32} {'keras ms':>9} {'ours ms':>9} {'ours/k':>6} {'':4}  "
    header += f"{'core ms':>8} {'core/k':>6}"
    print(
        f"{args.size}x{args.size} float32, medians of {args.repeats} interleaved rounds, "
        f"Keras {keras.__version__} ({keras.backend.backend()} backend)"
    )
    print(header)
    print("-" * len(header))
    failures = []
    rows = []
    for spec in LOSSES:
        if args.only and spec.name not in args.only:
            continue
        y_true, y_pred = loss_inputs(spec, args.size, rng)
        keras_loss = getattr(keras.losses, spec.class_name)()
        with np.errstate(all="ignore"):
            t = interleaved(
                {
                    "keras": timed(lambda: keras_loss(y_true, y_pred), clock, warm=True),  # noqa: B023
                    "ours": timed(lambda: evaluate(spec, y_true, y_pred), clock, warm=True),  # noqa: B023
                    "core": timed(lambda: ours_core(spec, y_true, y_pred), clock, warm=True),  # noqa: B023
                },
                args.repeats,
                warmup=0,
                rotate=True,
            )
        k, ours, core = (statistics.median(t[name]) for name in ("keras", "ours", "core"))
        ratio = paired_ratio(t["ours"], t["keras"])
        rows.append(Row(spec.name, k, ours, ratio))
        verdict = "PASS" if ratio <= GOAL else "FAIL"
        if ratio > GOAL:
            failures.append(spec.name)
        print(
            f"{spec.name:32} {k * 1e3:9.2f} {ours * 1e3:9.2f} {ratio:6.2f} {verdict:4}  "
            f"{core * 1e3:8.2f} {paired_ratio(t['core'], t['keras']):6.2f}"
        )
    print()
    print(
        f"goal: ours/keras <= {GOAL} for every loss;",
        "all PASS" if not failures else f"FAIL: {failures}",
    )
    return rows


if __name__ == "__main__":
    main()
