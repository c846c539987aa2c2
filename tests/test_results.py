"""app/results.py: the one serializer, and the bound on the size of what it writes."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from app import results
from app.results import AnswerTooLargeError, dumps, least_size


def test_the_least_size_is_a_lower_bound_of_every_answer() -> None:
    rng = np.random.default_rng(0)
    for data in [
        {"per_sample": np.zeros(1000, np.float32), "mean": np.float32(0)},
        {"per_sample": rng.standard_normal(1000).astype(np.float32)},
        {"results": [{"results": [{"per_sample": np.full(7, np.nan)}]}] * 50},
        {"data": np.zeros(300, np.int64), "shape": [300]},
        {"per_sample": np.zeros((0,), np.float32)},
    ]:
        assert least_size(data) <= len(orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY))
    # the numbers count: 1000 float32 zeros are "0.0," each at least
    assert least_size({"per_sample": np.zeros(1000, np.float32)}) >= 3999


def test_an_answer_over_the_limit_is_refused_before_it_is_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    written: list[object] = []
    write = results.orjson.dumps
    monkeypatch.setattr(results, "_write", lambda data: written.append(data) or write(data))
    big = {"per_sample": np.zeros(1_000_000, np.float32)}
    with pytest.raises(AnswerTooLargeError) as exc:
        dumps(big, limit=1_000_000)
    assert written == []  # refused from its numbers alone: never built
    assert exc.value.limit == 1_000_000 and exc.value.size >= 3_999_999 and exc.value.at_least


def test_an_answer_is_measured_when_its_numbers_alone_fit() -> None:
    data = {"per_sample": np.full(100, 0.123456789, np.float64)}  # ~20 bytes a number
    size = len(dumps(data))
    assert dumps(data, limit=size) == dumps(data)
    with pytest.raises(AnswerTooLargeError) as exc:
        dumps(data, limit=size - 1)
    assert exc.value.size == size and not exc.value.at_least
