"""Timing helpers shared by the benchmarks.

On a small, shared machine a comparison is fair only when both sides are measured side by side:
:func:`interleaved` runs one sample of each contender per round, so a burst of other work slows
one round of each rather than all the samples of one; :func:`paired_ratio` takes the median of
the per-round ratios.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall time of ``fn`` over ``repeats`` calls after one warm-up call (allocations,
    lazy imports), seconds."""
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def interleaved_samples(
    fns: dict[str, Callable[[], Any]],
    repeats: int,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """Times of each of ``fns`` by ``clock`` (the wall clock unless given), seconds, one per
    round over ``repeats`` rounds that time every contender in turn, each timed call right after
    an untimed one of the same function.

    On a busy machine a burst of other work then slows the contenders of that round alike, so
    per-round ratios stay steady when the times do not. The untimed call before each timed one
    gives every contender the same warm caches (otherwise whichever runs right after another's
    large temporaries reads its inputs back from memory); the order also rotates each round."""
    names = list(fns)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            fn = fns[name]
            fn()
            start = clock()
            fn()
            samples[name].append(clock() - start)
    return samples


def timed(fn: Callable[[], Any]) -> Callable[[], float]:
    """``fn`` made to return its own wall time, seconds."""

    def run() -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    return run


def interleaved(
    contenders: Mapping[str, Callable[[], float]],
    rounds: int,
    *,
    at_most: Mapping[str, int] | None = None,
    warmup: int = 1,
) -> dict[str, list[float]]:
    """``warmup + rounds`` rounds, each calling every contender once, in order; each call returns
    the figure it measured (seconds, requests/s, ...). Returns the figures of the last ``rounds``
    by contender; ``at_most`` caps the rounds of slow contenders (they run in the first ones)."""
    caps = at_most or {}
    figures: dict[str, list[float]] = {name: [] for name in contenders}
    for i in range(warmup + rounds):
        for name, fn in contenders.items():
            if i - warmup >= caps.get(name, rounds):
                continue
            figure = fn()
            if i >= warmup:
                figures[name].append(figure)
    return figures


def paired_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """The median of the ratios of figures measured in the same round."""
    return statistics.median(a / b for a, b in zip(numerators, denominators, strict=True))
