"""app/api/routes/stream.py's NDJSON line splitter, fed chunk by chunk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.api.problems import ProblemError
from app.api.routes.stream import lines


class Chunks:
    """A stand-in for a request whose body arrives in the given chunks."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def stream(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


def split(chunks: list[bytes], max_line: int = 1000) -> list[tuple[int, bytes]]:
    async def collect() -> list[tuple[int, bytes]]:
        return [item async for item in lines(Chunks(chunks), max_line)]  # type: ignore[arg-type]

    return asyncio.run(collect())


def test_lines_across_chunks_keep_their_numbers() -> None:
    body = b'{"a": 1}\n\n{"b": 22}\n   \n{"c": 333}'
    expected = [(1, b'{"a": 1}'), (3, b'{"b": 22}'), (5, b'{"c": 333}')]
    for size in (1, 2, 3, 7, len(body)):
        chunks = [body[i : i + size] for i in range(0, len(body), size)]
        assert split(chunks) == expected, size


def test_a_line_is_refused_as_soon_as_it_passes_the_limit() -> None:
    seen: list[Any] = []

    async def collect() -> None:
        async for item in lines(Chunks([b"ok\n", b"x" * 6, b"x" * 6, b"never"]), 10):  # type: ignore[arg-type]
            seen.append(item)

    with pytest.raises(ProblemError) as info:
        asyncio.run(collect())
    assert info.value.status == 413
    assert info.value.errors == [("/line/2", "line over the size limit")]
    assert seen == [(1, b"ok")]
