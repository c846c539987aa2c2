"""app/api/json_tensors.py: tensors decoded straight from JSON text, envelope split.

The decoder may only accept: whatever it returns must be what a JSON parser and ``np.asarray``
give for the same text (the reference here is the stdlib ``json`` module), and anything that is
not a rectangular tensor of JSON numbers must come back as None.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.api import json_tensors
from app.api.json_tensors import TensorText, decode_tensor, split_body


@pytest.fixture(autouse=True, scope="module", params=["skeleton", "rows"])
def structure_check(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test here runs twice: with the default paths, and with every matrix checked row
    by row (``LONG_ROW_BYTES`` at 1), which by default only matrices with long rows take."""
    with pytest.MonkeyPatch.context() as patch:
        if request.param == "rows":
            patch.setattr(json_tensors, "LONG_ROW_BYTES", 1)
        yield request.param


def decode(text: str | bytes, dtype: Any = np.float64) -> np.ndarray[Any, Any] | None:
    raw = text.encode() if isinstance(text, str) else text
    return decode_tensor(TensorText.of(raw), dtype)


def reference(text: str) -> np.ndarray[Any, Any]:
    return np.asarray(json.loads(text), dtype=np.float64)


@pytest.mark.parametrize(
    "text",
    [
        "[1]",
        "[[1,2],[3,4]]",
        "[[1],[2],[3]]",
        "[[[1,2,3]],[[4,5,6]]]",
        "[[[[0.5]]]]",
        "[ [ 1 , 2 ] ,\n [3,4]\t]\r\n",
        "[-0.0, 1e-3, -2.5E+2, 123456789012, 1.7976931348623157e308]",
        "[18446744073709551615, -9223372036854775808]",
    ],
)
def test_rectangular_tensors_decode_like_a_json_parser(text: str) -> None:
    got = decode(text)
    assert got is not None
    np.testing.assert_array_equal(got, reference(text))
    assert got.shape == reference(text).shape


@pytest.mark.parametrize(
    "text",
    [
        "[[1,[2]],[3,4]]",  # four numbers, as a flattening parser reads them, but not 2x2
        "[[1,2],[3]]",
        "[[1,2],3]",
        "[1,[2,3]]",
        "[[1],[]]",
        "[[],[1]]",
        "[]",
        "[[]]",
        "[[1,2],[3,4]],[[5,6],[7,8]]",
        "[1,2]]",
        "[[1,2]",
        "[1,,2]",
        "[1,2,]",
        "[1 2]",
        "[01]",
        "[+1]",
        "[.5]",
        "[1.]",
        "[1e400]",
        "[1" + "0" * 400 + "]",
        "[NaN]",
        "[Infinity]",
        "[true]",
        "[null]",
        '["1"]',
        "[{}]",
    ],
)
def test_anything_else_is_declined(text: str) -> None:
    assert decode(text) is None


def test_float32_overflow_is_left_to_the_finiteness_check() -> None:
    got = decode("[[1e39, 1]]", np.float32)
    assert got is not None and got.dtype == np.float32
    assert np.isinf(got[0, 0]) and got[0, 1] == 1


@pytest.mark.parametrize("indent", [None, 1])
@pytest.mark.parametrize("shape", [(100,), (10, 10), (5, 2, 10), (2, 2, 5, 5)])
def test_blocks_cut_between_numbers(
    monkeypatch: pytest.MonkeyPatch, shape: tuple[int, ...], indent: int | None
) -> None:
    # Tiny blocks: cuts fall all over the text (compact, or with spaces between brackets, which
    # takes the blanking path), and the numbers still come out whole and in order.
    monkeypatch.setattr(json_tensors, "BLOCK_BYTES", 3)
    values = np.arange(-50, 50, dtype=np.float64).reshape(shape) / 8
    text = json.dumps(values.tolist(), indent=indent)
    got = decode(text)
    assert got is not None
    np.testing.assert_array_equal(got, values)
    spans = list(json_tensors._cuts(text.encode(), 0, len(text)))
    assert b",".join(text.encode()[a:b] for a, b in spans) == text.encode()
    assert len(spans) > 20


# Any nesting of numbers and lists, rectangular or not.
nested = st.recursive(
    st.one_of(st.integers(-(10**6), 10**6), st.floats(-1e6, 1e6, allow_nan=False)),
    lambda children: st.lists(children, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(data=st.lists(nested, max_size=4))
def test_random_nestings_decode_exactly_or_are_declined(data: list[Any]) -> None:
    text = json.dumps(data)
    got = decode(text)
    try:
        expected = np.asarray(data, dtype=np.float64)
    except ValueError:  # ragged: NumPy refuses it too
        assert got is None
        return
    if expected.size == 0:
        assert got is None
        return
    assert got is not None, text
    np.testing.assert_array_equal(got, expected)
    assert got.shape == expected.shape


@settings(max_examples=100, deadline=None)
@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_rectangular_tensor_is_accepted(shape: list[int], seed: int) -> None:
    values = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    text = json.dumps(values.astype(np.float64).tolist())
    got = decode(text, np.float32)
    assert got is not None
    np.testing.assert_array_equal(got, values)


def is_pair(path: tuple[str | int, ...]) -> bool:
    return len(path) == 1 and path[0] in ("y_true", "y_pred")


def test_split_replaces_tensors_and_keeps_the_rest() -> None:
    body = (
        b'{"id": "\\"y_true\\": [9]", "y_true": [[1, 2]], '
        b'"options": {"y_pred": [7]}, "y_pred" : [3] }'
    )
    split = split_body(body, is_pair)
    assert split is not None
    assert json.loads(split.envelope) == {
        "id": '"y_true": [9]',
        "y_true": [],
        "options": {"y_pred": [7]},
        "y_pred": [],
    }
    assert {k: v.tobytes() for k, v in split.under().items()} == {
        "y_true": b"[[1, 2]]",
        "y_pred": b"[3]",
    }


def test_split_follows_paths_into_lists_of_objects() -> None:
    body = b'{"items": [{"y_pred": [1], "loss": ["a", {"name": "b"}]}, {"y_true": [[2]]}]}'
    split = split_body(
        body, lambda p: len(p) == 3 and p[0] == "items" and p[2] in ("y_true", "y_pred")
    )
    assert split is not None
    assert json.loads(split.envelope) == {
        "items": [{"y_pred": [], "loss": ["a", {"name": "b"}]}, {"y_true": []}]
    }
    assert split.under("items", 0)["y_pred"].tobytes() == b"[1]"
    assert split.under("items", 1)["y_true"].tobytes() == b"[[2]]"


def test_escaped_keys_are_left_to_the_envelope() -> None:
    # "y\\u005ftrue" is "y_true" to a JSON parser; the split leaves such a key's value in place.
    split = split_body(b'{"y\\u005ftrue": [1], "y_pred": [2]}', is_pair)
    assert split is not None
    assert json.loads(split.envelope) == {"y_true": [1], "y_pred": []}


@pytest.mark.parametrize(
    "body",
    [b"", b"[1, 2]", b"1", b'{"y_true": [1]', b'{"y_true": [1]} x', b'{"y_true": [1]}}', b"}"],
)
def test_bodies_the_walk_cannot_follow_are_declined(body: bytes) -> None:
    assert split_body(body, is_pair) is None


def test_huge_envelopes_are_left_to_the_ordinary_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(json_tensors, "MAX_ENVELOPE_TOKENS", 50)
    body = json.dumps({"y_true": [1], "y_pred": [1], "options": {str(i): i for i in range(30)}})
    assert split_body(body.encode(), is_pair) is None


def test_decode_body_decodes_every_top_level_tensor() -> None:
    arrays = json_tensors.decode_body(b'{"y_true": [[1, 2]], "y_pred": [[3.5, 4]]}')
    assert list(arrays) == ["y_true", "y_pred"]
    np.testing.assert_array_equal(arrays["y_pred"], np.array([[3.5, 4]], dtype=np.float32))
    with pytest.raises(ValueError, match="y_true"):
        json_tensors.decode_body(b'{"y_true": [[1, [2]]]}')


def test_an_error_in_a_split_body_is_answered_without_parsing_it_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A tensor over the element limit (or non-finite) is a 422 once every tensor has decoded:
    # the body is then known to be valid JSON, and parsing it whole (a Python object per
    # number) would only cost memory.
    from app.api import bodies
    from app.api.problems import ProblemError
    from app.api.schemas import EvaluateRequest

    monkeypatch.setattr(json_tensors, "SPLIT_BODY_BYTES", 0)
    parsed: list[int] = []
    original = EvaluateRequest.model_validate_json

    def spy(data: Any, **kwargs: Any) -> Any:
        parsed.append(len(data))
        return original(data, **kwargs)

    monkeypatch.setattr(EvaluateRequest, "model_validate_json", spy)
    body = json.dumps({"y_true": [[1, 2, 3]], "y_pred": [[1e39, 0, 0]]}).encode()
    for context, pointer in (({"max_elements": 2}, "/y_true"), ({}, "/y_pred/0/0")):
        parsed.clear()
        with pytest.raises(ProblemError) as info:
            bodies.parse_json(EvaluateRequest, body, context)
        assert info.value.status == 422 and info.value.errors[0][0] == pointer
        assert parsed == [len(b'{"y_true": [], "y_pred": []}')]  # the envelope only


def long_rows(rows: int = 3, width: int = 1500) -> list[list[float]]:
    return (np.arange(rows * width, dtype=np.float64).reshape(rows, width) / 4).tolist()


def test_a_matrix_with_long_rows_is_checked_row_by_row(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    parse = json_tensors._parse_numbers
    monkeypatch.setattr(
        json_tensors, "_parse_numbers", lambda *a, **k: seen.append(k.get("rows")) or parse(*a, **k)
    )
    data = long_rows()
    got = decode(json.dumps(data, separators=(",", ":")))
    assert got is not None
    np.testing.assert_array_equal(got, np.asarray(data))
    assert seen == [(3, 1500)]


@pytest.mark.parametrize(
    "break_it",
    [
        lambda rows: rows[1].__setitem__(7, [rows[1][7]]),  # a one-number list inside a row
        lambda rows: rows[2].pop(),  # a short row
        lambda rows: rows[2].append(1.0),  # a long row
        lambda rows: rows.append(5.0),  # a number beside the rows
        lambda rows: rows[1].__setitem__(0, [[1.0]]),  # deeper still
    ],
)
def test_a_matrix_with_long_rows_that_is_not_rectangular_is_declined(
    monkeypatch: pytest.MonkeyPatch, break_it: Any
) -> None:
    monkeypatch.setattr(json_tensors, "BLOCK_BYTES", 4096)  # several blocks, rows cut apart
    data = long_rows(rows=6)
    break_it(data)
    assert decode(json.dumps(data, separators=(",", ":"))) is None
