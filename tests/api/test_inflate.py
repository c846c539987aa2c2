"""The inflater (app/api/inflate.py) as plain code: pieces of bounded size whatever the ratio,
the body's end checked exactly."""

from __future__ import annotations

import gzip
import zlib

import pytest

from app.api.inflate import ENCODINGS, InflateError, Inflater


def inflate_all(inflater: Inflater, chunks: list[bytes]) -> list[bytes]:
    pieces = []
    for chunk in chunks:
        inflater.feed(chunk)
        pieces.append(inflater.next())
        while inflater.pending:
            pieces.append(inflater.next())
    inflater.finish()
    return pieces


@pytest.mark.parametrize("encoding", [b"gzip", b"deflate"])
@pytest.mark.parametrize("chunk", [1, 7, 1000, 10**6])
def test_pieces_are_bounded_and_add_up(encoding: bytes, chunk: int) -> None:
    raw = b"0.5, " * 50_000 + bytes(range(256)) * 100
    body = gzip.compress(raw) if encoding == b"gzip" else zlib.compress(raw)
    chunks = [body[i : i + chunk] for i in range(0, len(body), chunk)]
    pieces = inflate_all(Inflater(encoding, piece_bytes=4096), chunks)
    assert max(map(len, pieces)) <= 4096
    assert b"".join(pieces) == raw


def test_a_bomb_comes_out_one_piece_at_a_time() -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))
    inflater = Inflater(b"gzip", piece_bytes=65536)
    inflater.feed(bomb)
    assert len(inflater.next()) == 65536 and inflater.pending  # the rest waits to be asked for


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"plain": "json"}', "not valid gzip data"),
        (gzip.compress(b"{}")[:-3], "truncated gzip data"),
        (gzip.compress(b"{}") + b"x", "after the end of its gzip data"),
        (gzip.compress(b"{}") * 2, "after the end of its gzip data"),
    ],
)
def test_bodies_that_do_not_inflate_exactly_are_refused(body: bytes, message: str) -> None:
    with pytest.raises(InflateError, match=message):
        inflate_all(Inflater(b"gzip"), [body])


def test_bytes_after_the_end_in_a_later_chunk_are_refused() -> None:
    inflater = Inflater(b"gzip")
    inflater.feed(gzip.compress(b"{}"))
    assert inflater.next() == b"{}"
    with pytest.raises(InflateError, match="after the end"):
        inflater.feed(b"more")


def test_the_encodings_are_gzip_and_deflate() -> None:
    assert set(ENCODINGS) == {b"gzip", b"x-gzip", b"deflate"}
