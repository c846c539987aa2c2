"""The fast JSON tensor path (app.api.bodies.parse_tensors_fast) against the Pydantic path.

The fast path must accept exactly the bodies the Pydantic path accepts, with the same arrays, and
hand everything else back (``None``) so the Pydantic path reports it with its own message.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from app.api.bodies import parse_json, parse_tensors_fast
from app.api.problems import ProblemError
from app.api.schemas import EvaluateRequest, StreamLine
from app.losses import InvalidInputError
from app.losses.tensors import to_array, try_array

CONTEXT = {"max_elements": 1000}
SEED = {"y_true": [[0, 1, 1], [0, 0, 1]], "y_pred": [[1, 1, 0], [1, 0, 1]]}


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def test_fast_path_decodes_what_pydantic_decodes() -> None:
    raw = body({**SEED, "sample_weight": [1.0, 0.5], "reduction": "sum", "options": {}})
    fast = parse_tensors_fast(EvaluateRequest, raw, CONTEXT)
    slow = EvaluateRequest.model_validate_json(raw, context=CONTEXT)
    assert fast is not None
    for name in ("y_true", "y_pred", "sample_weight"):
        a, b = fast.array(name), slow.array(name)
        assert a is not None and b is not None
        assert a.dtype == b.dtype == np.float32
        np.testing.assert_array_equal(a, b)
    assert fast.reduction == slow.reduction == "sum"
    # The seed example: MSE per sample 2/3 and 1/3 (hand derivation), weighted 1 and 0.5.
    result = fast.evaluate("mse", fast.options, fast.reduction, fast.dtype).result
    np.testing.assert_allclose(result.per_sample, [2 / 3, 1 / 6], rtol=1e-6)


def test_fast_path_honours_dtype_from_body_and_from_context() -> None:
    req = parse_tensors_fast(EvaluateRequest, body({**SEED, "dtype": "float64"}), CONTEXT)
    assert req is not None and req.dtype == "float64"
    assert req.array("y_pred") is not None and req.array("y_pred").dtype == np.float64  # type: ignore[union-attr]
    line = parse_tensors_fast(StreamLine, body(SEED), {**CONTEXT, "dtype": "float64"})
    assert line is not None and line.array("y_true").dtype == np.float64  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("case", "raw"),
    [
        ("NaN literal", b'{"y_true": [[NaN]], "y_pred": [[1]]}'),
        ("truncated", b'{"y_true": [[0, 1]], "y_pred": [[1, '),
        ("top-level list", b"[1, 2]"),
        ("ragged", body({"y_true": [[1, 2], [3]], "y_pred": [[1, 2], [3, 4]]})),
        ("string value", body({"y_true": [["a"]], "y_pred": [[1]]})),
        ("null value", body({"y_true": [[None]], "y_pred": [[1]]})),
        ("empty", body({"y_true": [[]], "y_pred": [[]]})),
        ("scalar", body({"y_true": 1, "y_pred": 1})),
        ("too large for float32", body({"y_true": [[1e39]], "y_pred": [[0]]})),
        ("over the element limit", body({"y_true": [[0.0] * 1001], "y_pred": [[0.0] * 1001]})),
        ("deeply nested", body({"y_true": json.loads("[" * 80 + "1" + "]" * 80), "y_pred": [1]})),
        ("extra field", body({**SEED, "weights": [1]})),
        ("bad reduction", body({**SEED, "reduction": "average"})),
        ("bad dtype", body({**SEED, "dtype": "float16"})),
        ("dtype not a string", body({**SEED, "dtype": ["float32"]})),
        ("bad sample_weight", body({**SEED, "sample_weight": "1"})),
        ("missing y_pred", body({"y_true": [[1]]})),
    ],
)
def test_fast_path_hands_bad_bodies_to_pydantic(case: str, raw: bytes) -> None:
    assert parse_tensors_fast(EvaluateRequest, raw, CONTEXT) is None
    with pytest.raises(ProblemError) as slow:  # the Pydantic path then explains, as before
        parse_json(EvaluateRequest, raw, CONTEXT)
    assert slow.value.status in (400, 422) and slow.value.errors


def test_stream_line_with_a_dtype_field_is_not_fast() -> None:
    # StreamLine takes dtype from the query: a "dtype" key is an extra field, refused by Pydantic.
    assert parse_tensors_fast(StreamLine, body({**SEED, "dtype": "float32"}), CONTEXT) is None


@pytest.mark.parametrize(
    "data",
    [[[1, 2], [3, 4]], [True, False], [[0.5]], [1e39], [[1], [2, 3]], [["x"]], [], 3.0, [None]],
)
def test_try_array_accepts_exactly_what_to_array_accepts(data: Any) -> None:
    fast = try_array(data, "float32")
    try:
        slow = to_array(data, "y_true", "float32")
    except InvalidInputError:
        assert fast is None
    else:
        assert fast is not None
        np.testing.assert_array_equal(fast, slow)
