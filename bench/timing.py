"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
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
