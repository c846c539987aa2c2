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


def timed(
    fn: Callable[[], Any], clock: Callable[[], float] = time.perf_counter, *, warm: bool = False
) -> Callable[[], float]:
    """``fn`` made to return its own time by ``clock`` (the wall clock unless given), seconds.

    ``warm``: each timed call right after an untimed one of the same function, so every
    contender starts with the same warm caches (otherwise whichever runs right after another's
    large temporaries reads its inputs back from memory)."""

    def run() -> float:
        if warm:
            fn()
        start = clock()
        fn()
        return clock() - start

    return run


def interleaved(
    contenders: Mapping[str, Callable[[], float]],
    rounds: int,
    *,
    at_most: Mapping[str, int] | None = None,
    warmup: int = 1,
    rotate: bool = False,
) -> dict[str, list[float]]:
    """``warmup + rounds`` rounds, each calling every contender once, in order (``rotate``: the
    order shifts by one each round); each call returns the figure it measured (seconds,
    requests/s, ...). Returns the figures of the last ``rounds`` by contender; ``at_most`` caps
    the rounds of slow contenders (they run in the first ones)."""
    caps = at_most or {}
    figures: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for i in range(warmup + rounds):
        shift = i % len(names) if rotate else 0
        for name in names[shift:] + names[:shift]:
            fn = contenders[name]
            if i - warmup >= caps.get(name, rounds):
                continue
            figure = fn()
            if i >= warmup:
                figures[name].append(figure)
    return figures


def paired_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """The median of the ratios of figures measured in the same round."""
    return statistics.median(a / b for a, b in zip(numerators, denominators, strict=True))
