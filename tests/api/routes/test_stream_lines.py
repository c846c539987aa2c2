"""app/api/routes/stream.py's NDJSON line splitter, fed chunk by chunk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from app.api.routes.stream import lines


class Chunks:
    """A stand-in for a request whose body arrives in the given chunks."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def stream(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


def split(chunks: list[bytes]) -> list[tuple[int, bytes]]:
    async def collect() -> list[tuple[int, bytes]]:
        return [item async for item in lines(Chunks(chunks))]  # type: ignore[arg-type]

    return asyncio.run(collect())


def test_lines_across_chunks_keep_their_numbers() -> None:
    body = b'{"a": 1}\n\n{"b": 22}\n   \n{"c": 333}'
    expected = [(1, b'{"a": 1}'), (3, b'{"b": 22}'), (5, b'{"c": 333}')]
    for size in (1, 2, 3, 7, len(body)):
        chunks = [body[i : i + size] for i in range(0, len(body), size)]
        assert split(chunks) == expected, size


def test_a_long_line_in_many_chunks_comes_out_whole() -> None:
    line = b"x" * 10_000
    chunks = [line[i : i + 3] for i in range(0, len(line), 3)] + [b"\nend"]
    assert split(chunks) == [(1, line), (2, b"end")]
