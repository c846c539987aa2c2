"""JSON tensors decoded straight into NumPy buffers, with no Python object per number.

A JSON body is split once into its *envelope* (everything but the tensors, small, validated by
Pydantic as before) and the *text* of each tensor, found by its path (``y_true``,
``items/3/y_pred``, ``inputs/0/data``). A tensor's text is decoded by :func:`decode_tensor`:

1. **Structure.** Deleting every number character and all whitespace leaves the tensor's
   *skeleton* of brackets and commas; a rectangular tensor of shape ``(2, 3)`` has exactly the
   skeleton ``[[,,],[,,]]``. The shape is read off the skeleton's first rows and the whole
   skeleton compared with the one that shape must have, so ``[[1,[2]],[3,4]]`` (which a
   flattening parser reads as four numbers), ragged rows and mixed depths are all refused.
   A *matrix with long rows* (rank 2, a first row of at least ``LONG_ROW_BYTES``), where
   building the skeleton would cost a fifth of the decoding, is checked row by row instead:
   its ``[`` are counted with memchr-fast searches (one per row), and as each block is parsed
   every row must be a list of the first row's length; a list nested in a row would add a
   ``[`` that no row accounts for, so the count would not match.
2. **Numbers.** The text is cut into blocks of about ``BLOCK_BYTES`` between elements of its
   outer list, and each block, wrapped in brackets, parsed by simdjson (strict JSON numbers,
   SIMD-fast) and flattened into one array of the requested dtype, block by block. Memory: the
   output array plus one block.

Anything the fast path cannot prove valid (strings, booleans, null, NaN, numbers beyond a double,
an empty tensor, malformed text) returns ``None``; the caller then decodes that one tensor the
slow, exact way (Python lists and :func:`app.losses.tensors.to_array`), whose errors say what is
wrong and where. So the fast path only ever accepts, and every error stays as it was.

Measured on two 1000x1000 float32 tensors (38.5 MB): ``bench`` target T2.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydantic_core
import simdjson

from app.losses import MAX_RANK

#: Bytes of tensor text parsed at a time: small enough to stay in cache, large enough that the
#: per-block Python cost (a few microseconds) is noise.
BLOCK_BYTES = 256 * 1024
#: Bodies from this size on have their tensors cut out and decoded straight into arrays. Below
#: it, Pydantic's parser on the whole body is faster (measured in-process: 30 vs 120 us for a
#: 4x3 pair, 180 vs 290 us for 32x10, 2.8 vs 1.8 ms for 100x100) and the memory is small.
SPLIT_BODY_BYTES = 64 * 1024
#: A matrix whose first row's text is at least this long is checked row by row rather than by
#: its skeleton (see the module's doc): a few Python operations per row cost less than the
#: skeleton's per-byte work from rows of a few hundred numbers on.
LONG_ROW_BYTES = 4096
#: Envelope tokens scanned before giving up on the fast path: a normal envelope has tens; an
#: envelope of millions of tokens is parsed by Pydantic directly rather than by a Python loop.
MAX_ENVELOPE_TOKENS = 1 << 16

_NUMBER_AND_SPACE = b"0123456789+-.eE \t\r\n"
_BLANK_BRACKETS = bytes.maketrans(b"[]", b"  ")
_SPACE = re.compile(rb"[ \t\r\n]*")
#: One envelope token: a string, a structural character, or a bare scalar (number, literal).
_TOKEN = re.compile(rb'[ \t\r\n]*(?:("(?:[^"\\]|\\.)*")|([\[\]{}:,])|([^ \t\r\n\[\]{}:,"]+))')

Path = tuple[str | int, ...]
Array = np.ndarray[Any, Any]


def decode_tensor(text: TensorText, dtype: Any) -> Array | None:
    """The rectangular tensor of numbers ``text`` holds, as an array of ``dtype``; None when the
    fast path cannot prove ``text`` is one (see the module's doc)."""
    rows = _matrix_rows(text)
    if rows is not None:
        count, width = rows
        out = np.empty(count * width, dtype=dtype)
        filled = _parse_numbers(text, out, 2, rows=rows)
        return out.reshape(rows) if filled == out.size else None
    body = text.body
    skeleton = b",".join(
        body[a:b].translate(None, _NUMBER_AND_SPACE) for a, b in _cuts(body, text.start, text.end)
    )
    shape = _shape_of(skeleton)
    if shape is None or len(shape) > MAX_RANK or skeleton != _skeleton(shape):
        return None  # (past MAX_RANK: no array holds it; the slow path says so)
    del skeleton
    out = np.empty(math.prod(shape), dtype=dtype)
    if out.size == 0:
        return None  # an empty tensor: the slow path words the error
    filled = _parse_numbers(text, out, len(shape))
    return out.reshape(shape) if filled == out.size else None


def _matrix_rows(text: TensorText) -> tuple[int, int] | None:
    """For the text of a matrix whose first row is long: (its number of ``[`` after the outer
    one, the first row's number of values), which are its shape if it is rectangular (checked
    as it is parsed). None for any other text, left to the skeleton check."""
    body, end = text.body, text.end
    outer = body.find(b"[", text.start, end)
    first = body.find(b"[", outer + 1, end)
    if outer < 0 or first < 0 or body[outer + 1 : first].strip():
        return None  # not a list of lists
    close = body.find(b"]", first, end)
    if close - first < LONG_ROW_BYTES or body.find(b"[", first + 1, close) >= 0:
        return None  # short rows, or rank 3 and more
    if end - outer > BLOCK_BYTES and body.find(b"],", close, end) < 0:
        return None  # spaced rows: cut into blocks only once their brackets are blanked
    width = body.count(b",", first, close) + 1
    # Every row holds `width` values of at least a byte, commas and brackets: this many rows
    # at most fit in the text, which bounds the count below even for text made of brackets.
    most = (end - outer) // (2 * width + 1) + 1
    count, found = 0, first
    while found >= 0:
        count += 1
        if count > most:
            return None
        found = body.find(b"[", found + 1, end)
    return count, width


def _cuts(
    body: bytes | bytearray, start: int, end: int, separator: bytes = b","
) -> Iterator[tuple[int, int]]:
    """``body[start:end]`` in spans of about ``BLOCK_BYTES``, each ending just before the comma
    that ends an occurrence of ``separator`` (the comma itself belongs to no span), so each span
    is scanned while it is in cache and no number is ever cut."""
    while True:
        cut = body.find(separator, start + BLOCK_BYTES, end) if end - start > BLOCK_BYTES else -1
        if cut < 0:
            yield start, end
            return
        comma = cut + len(separator) - 1
        yield start, comma
        start = comma + 1


class ReparseBody(Exception):  # noqa: N818 - a signal, not an error
    """A tensor's text turned out not to be JSON on its own: the body must be parsed whole
    (whose error, malformed JSON, is then the one the client gets)."""


def parse_text(text: TensorText) -> Any:
    """A tensor's text parsed the ordinary way (Python lists), for a declined tensor's exact
    error; :class:`ReparseBody` when the text is not JSON on its own."""
    try:
        return pydantic_core.from_json(text.tobytes(), allow_inf_nan=False)
    except ValueError:
        raise ReparseBody from None


@dataclass(frozen=True, slots=True)
class TensorText:
    """Where a tensor's text lies in a body: ``body[start:end]``, not copied."""

    body: bytes | bytearray
    start: int
    end: int

    @classmethod
    def of(cls, text: bytes) -> TensorText:
        """All of ``text``."""
        return cls(text, 0, len(text))

    def tobytes(self) -> bytes:
        """The whole text (for the slow path)."""
        return bytes(self.body[self.start : self.end])


def _shape_of(skeleton: bytes) -> tuple[int, ...] | None:
    """The shape a rectangular tensor with this skeleton has, read off its first rows.

    The first list at depth ``d`` ends at the first run of ``rank - d + 1`` closing brackets;
    its length gives how many elements of the level below it holds.
    """
    rank = len(skeleton) - len(skeleton.lstrip(b"["))
    if rank == 0:
        return None
    shape: list[int] = []
    inner = 0  # skeleton length of one element of the current level (0: a number)
    for depth in range(rank, 0, -1):
        start = depth - 1  # where the first list at this depth opens
        run = skeleton.find(b"]" * (rank - depth + 1), start)
        if run < 0:
            return None
        close = run + rank - depth  # the last bracket of the run closes it
        # A list of n elements of skeleton length `inner` spans n * (inner + 1) + 1 bytes.
        n, rest = divmod(close - start, inner + 1)
        if rest or n < 1:
            return None
        shape.insert(0, n)
        inner = 2 + n * inner + (n - 1)
    return tuple(shape)


def _skeleton(shape: tuple[int, ...]) -> bytes:
    """The brackets and commas of a rectangular tensor of ``shape``."""
    level = b""
    for n in reversed(shape):
        level = b"[" + b",".join([level] * n) + b"]" if level else b"[" + b"," * (n - 1) + b"]"
    return level


def _parse_numbers(
    text: TensorText, out: Array, rank: int, rows: tuple[int, int] | None = None
) -> int:
    """Parse the numbers of ``text``, a rectangular tensor of ``rank`` (its skeleton checked),
    into ``out`` block by block; how many were parsed (-1 when a block is not a valid list of
    numbers, or would overflow ``out``). With ``rows`` (a matrix's row count and width, from
    :func:`_matrix_rows`, its skeleton unchecked), each row of each block must be a list of
    that width and the rows must number exactly that count (-1 otherwise).

    Blocks are cut between the elements of the outer list, after the run of ``rank - 1``
    closing brackets that ends one, so each block wrapped in brackets is JSON as it is. Where
    the text has spaces between its brackets, that run is not found: the brackets are blanked
    instead (leaving a flat list of numbers, which any comma may cut).
    """
    body = text.body
    first = body.find(b"[", text.start, text.end) + 1  # inside the outer brackets
    last = body.rfind(b"]", text.start, text.end)
    separator = b"]" * (rank - 1) + b","
    blank = rank > 1 and last - first > BLOCK_BYTES and body.find(separator, first, last) < 0
    if blank and rows is not None:
        return -1  # blanking would hide the rows' brackets; the skeleton check words it
    seen = 0
    view = memoryview(body)
    parser = simdjson.Parser()
    filled = 0
    for a, b in _cuts(body, first, last, b"," if blank else separator):
        block = bytearray(b - a + 2)
        block[0], block[-1] = ord("["), ord("]")
        block[1:-1] = view[a:b].tobytes().translate(_BLANK_BRACKETS) if blank else view[a:b]
        try:
            document = parser.parse(block)
            assert isinstance(document, simdjson.Array)  # the block is wrapped in brackets
            if rows is not None:
                seen += len(document)
                width = rows[1]
                if not all(
                    isinstance(row, simdjson.Array) and len(row) == width for row in document
                ):
                    return -1
            values = np.frombuffer(document.as_buffer(of_type="d"), dtype=np.float64)
            del document  # the parser is reused for the next block only once this is gone
        except (ValueError, TypeError, RuntimeError):  # not numbers, or not within a double
            return -1
        if filled + values.size > out.size:
            return -1
        with np.errstate(over="ignore"):  # past float32's range: inf, refused by the caller
            out[filled : filled + values.size] = values
        filled += values.size
    return filled if rows is None or seen == rows[0] else -1


def _tensor_end(body: bytes | bytearray, start: int) -> int:
    """Where the tensor text starting at ``start`` ends: after the last ``]`` before the next
    string, object or object end (a tensor holds none). Only a proposal: the text is checked
    when decoded. Each search is memchr-fast; the enclosing object's ``}`` bounds the others."""
    limit = body.find(b"}", start)
    if limit < 0:
        return -1
    for stop in (b'"', b"{"):
        found = body.find(stop, start, limit)
        limit = limit if found < 0 else found
    return body.rfind(b"]", start, limit) + 1


def split_tensors(body: bytes | bytearray, is_tensor: Callable[[Path], bool]) -> SplitBody | None:
    """:func:`split_body` for a body of at least ``SPLIT_BODY_BYTES``; None for a smaller one."""
    return split_body(body, is_tensor) if len(body) >= SPLIT_BODY_BYTES else None


@dataclass(frozen=True)
class SplitBody:
    """A JSON body split into its envelope (tensors replaced by ``[]``) and each tensor's text."""

    envelope: bytes
    tensors: dict[Path, TensorText]

    def under(self, *prefix: str | int) -> dict[str | int, TensorText]:
        """The tensors below ``prefix``, keyed by the rest of their path's last part."""
        n = len(prefix)
        return {path[n]: text for path, text in self.tensors.items() if path[:n] == prefix}


def split_body(body: bytes | bytearray, is_tensor: Callable[[Path], bool]) -> SplitBody | None:
    """Cut the text of every array whose path ``is_tensor`` out of ``body``.

    A light tokenizer walks the envelope (strings are skipped whole, so a key inside a string is
    never mistaken for one) and jumps over each tensor with a few memchr-fast searches. Returns
    None when the body is not an object this walk can follow (malformed, or an envelope of more
    than ``MAX_ENVELOPE_TOKENS`` tokens): the caller parses it the ordinary way, whose errors
    are the ones clients get. The result is only a proposal until the envelope parses as JSON
    and each tensor text decodes, which together prove the body was valid JSON.
    """
    pieces: list[bytes | bytearray] = []
    tensors: dict[Path, TensorText] = {}
    stack: list[list[Any]] = []  # per open container: [is_object, key or index, expecting_key]
    copied = pos = 0
    leading = _SPACE.match(body)
    if leading is None or body[leading.end() : leading.end() + 1] != b"{":
        return None  # not an object
    for _ in range(MAX_ENVELOPE_TOKENS):
        match = _TOKEN.match(body, pos)
        if match is None:
            return None
        string, punct, _ = match.groups()
        token_start, pos = match.start(match.lastindex or 0), match.end()
        if punct == b"[" and stack and not stack[-1][2]:
            path = tuple(frame[1] for frame in stack)
            if is_tensor(path):
                end = _tensor_end(body, token_start)
                if end <= token_start:
                    return None
                pieces += [body[copied:token_start], b"[]"]
                tensors[path] = TensorText(body, token_start, end)
                copied = pos = end
                continue
        if punct in (b"{", b"["):
            stack.append([punct == b"{", 0, punct == b"{"])
        elif punct in (b"}", b"]"):
            if not stack:
                return None
            stack.pop()
            if not stack:
                trailing = _SPACE.match(body, pos)
                if trailing is None or trailing.end() != len(body):
                    return None
                pieces.append(body[copied:])
                return SplitBody(b"".join(pieces), tensors)
        elif punct == b",":
            if not stack:
                return None
            frame = stack[-1]
            if frame[0]:
                frame[2] = True  # a key comes next
            else:
                frame[1] += 1
        elif punct == b":":
            if not stack or not stack[-1][0]:
                return None
        elif string is not None and stack and stack[-1][2]:
            try:
                stack[-1][1] = string[1:-1].decode() if b"\\" not in string else None
            except UnicodeDecodeError:
                return None
            stack[-1][2] = False
        elif not stack:
            return None  # a top-level scalar: not an envelope
    return None


def decode_body(body: bytes | bytearray, dtype: Any = np.float32) -> dict[str, Array]:
    """Every top-level array of the JSON object ``body`` decoded as a tensor of ``dtype``, by
    key (what the decoder alone costs: ``bench`` target T2). Raises ValueError for a body or
    tensor the fast path declines."""
    split = split_body(body, lambda path: len(path) == 1)
    if split is None:
        raise ValueError("not a JSON object the fast path can split")
    arrays: dict[str, Array] = {}
    for key, text in split.under().items():
        array = decode_tensor(text, dtype)
        if array is None:
            raise ValueError(f"{key}: not a rectangular tensor of numbers")
        arrays[str(key)] = array
    return arrays
