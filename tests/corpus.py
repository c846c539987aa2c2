"""The bad-input corpus: requests to ``POST /v1/losses/mse`` that must each be refused with one
exact RFC 9457 problem (status, and the pointer of the offending value where there is one).

Both sides run every case: tests/api/routes/test_losses.py on the ASGI app in-process (with JSON
bodies parsed whole and split, the ``body_path`` fixture), tests/e2e/test_v1_live.py against a
uvicorn process over a real socket. A case belongs here unless it truly needs one side only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from tests.helpers import SEED, SEED_PRED, SEED_TRUE

JSON = "application/json"


@dataclass(frozen=True)
class BadInput:
    """One request body (sent as given, with ``content_type``) and the problem it must get."""

    id: str
    content: bytes
    status: int
    pointer: str | None = None
    content_type: str = JSON

    @property
    def headers(self) -> dict[str, str]:
        return {"content-type": self.content_type}


def doc(id: str, body: Any, status: int, pointer: str | None) -> BadInput:
    """A case whose body is valid JSON: ``body`` serialised."""
    return BadInput(id, json.dumps(body).encode(), status, pointer)


def raw(id: str, content: bytes, status: int) -> BadInput:
    """A case whose body is not (or not only) valid JSON: the bytes as given."""
    return BadInput(id, content, status)


DEEP_80 = json.loads("[" * 80 + "1" + "]" * 80)  # 1 in 80 nested lists: valid JSON, no tensor
RANK_65 = json.loads("[" * 65 + "1" + "]" * 65)  # a tensor of shape (1,) * 65: past NumPy's 64
BAD_INPUTS: list[BadInput] = [
    # --- valid JSON, invalid tensors, options or fields: 422 with a pointer ------------------
    doc("ragged", {"y_true": SEED_TRUE, "y_pred": [[1, 1, 0], [1, 0, 1, 1]]}, 422, "/y_pred/1"),
    doc("mismatched", {"y_true": SEED_TRUE, "y_pred": [[1, 1], [1, 0]]}, 422, "/y_pred"),
    doc("string", {"y_true": SEED_TRUE, "y_pred": [[1, "a", 0], [1, 0, 1]]}, 422, "/y_pred/0/1"),
    doc(
        "null in a row",
        {"y_true": SEED_TRUE, "y_pred": [[1, None, 0], [1, 0, 1]]},
        422,
        "/y_pred/0/1",
    ),
    doc("null value", {"y_true": [[None]], "y_pred": [[1]]}, 422, "/y_true/0/0"),
    doc("empty", {"y_true": [], "y_pred": []}, 422, "/y_true"),
    doc("empty rows", {"y_true": [[]], "y_pred": [[]]}, 422, "/y_true"),
    doc("scalar", {"y_true": 1, "y_pred": 1}, 422, "/y_true"),
    doc("object tensor", {"y_true": {"a": 1}, "y_pred": SEED_PRED}, 422, "/y_true"),
    doc("missing y_pred", {"y_true": SEED_TRUE}, 422, "/y_pred"),
    doc("deeply nested", {"y_true": DEEP_80, "y_pred": [[1]]}, 422, "/y_true"),
    doc("unknown field", {**SEED, "weights": [1, 1]}, 422, "/weights"),
    doc("unknown option", {**SEED, "options": {"from_logits": True}}, 422, "/options/from_logits"),
    doc("bad reduction", {**SEED, "reduction": "average"}, 422, "/reduction"),
    doc("bad dtype", {**SEED, "dtype": "float16"}, 422, "/dtype"),
    doc("bad sample_weight", {**SEED, "sample_weight": [1, 2, 3]}, 422, "/sample_weight"),
    doc("too large for float32", {"y_true": [[1e39]], "y_pred": [[0]]}, 422, "/y_true/0/0"),
    # Issue 11: deeper than NumPy's 64 axes; an option beside the tensors; camelCase names.
    doc("rank 65", {"y_true": RANK_65, "y_pred": RANK_65}, 422, "/y_true"),
    doc("option at top level", {**SEED, "from_logits": True}, 422, "/from_logits"),
    doc("camelCase field", {"y_true": SEED_TRUE, "yPred": SEED_PRED}, 422, "/yPred"),
    # A flattening parser reads each of these as four numbers in a 2x2 tensor.
    doc(
        "list for a number", {"y_true": [[1, [2]], [3, 4]], "y_pred": SEED_PRED}, 422, "/y_true/0/1"
    ),
    doc("mixed depths", {"y_true": [[1, 2], 3, [4]], "y_pred": SEED_PRED}, 422, "/y_true/1"),
    doc("list after a number", {"y_true": [1, [2, 3]], "y_pred": SEED_PRED}, 422, "/y_true/1"),
    doc("short last row", {"y_true": [[1, 2], [3]], "y_pred": [[1, 2], [3, 4]]}, 422, "/y_true/1"),
    doc("empty last row", {"y_true": [[1], []], "y_pred": [[1], [2]]}, 422, "/y_true/1"),
    # --- JSON's edges: numbers it has no value for, documents that are not an object ---------
    raw("NaN literal", b'{"y_true": [[NaN]], "y_pred": [[1]]}', 422),
    raw("Infinity literal", b'{"y_true": [[1]], "y_pred": [[Infinity]]}', 422),
    raw("-Infinity literal", b'{"y_true": [[1]], "y_pred": [[-Infinity]]}', 422),
    raw("number overflowing float64", b'{"y_true": [[1e400]], "y_pred": [[1]]}', 422),
    raw("integer beyond 64 bits", b'{"y_true": [[1' + b"0" * 400 + b']], "y_pred": [[1]]}', 422),
    raw(
        "integer beyond float weight",
        b'{"y_true": [[1]], "y_pred": [[1]], "sample_weight": 1' + b"0" * 400 + b"}",
        422,
    ),
    raw("top-level list", b"[1, 2]", 422),
    raw("top-level null", b"null", 422),
    # --- not JSON at all: 400 ---------------------------------------------------------------
    raw("truncated JSON", b'{"y_true": [[0, 1]], "y_pred": [[1, ', 400),
    raw("not JSON", b"y_true=1&y_pred=1", 400),
    raw("empty body", b"", 400),
    raw("invalid UTF-8", b'{"y_true": [["\xff"]], "y_pred": [[1]]}', 400),
    raw("leading zero", b'{"y_true": [[01]], "y_pred": [[1]]}', 400),
    raw("two tensors in one", b'{"y_true": [[1]],[[2]], "y_pred": [[1]]}', 400),
    raw("missing comma between rows", b'{"y_true": [[1][2]], "y_pred": [[1],[2]]}', 400),
    raw("trailing comma", b'{"y_true": [[1,2],], "y_pred": [[1,2]]}', 400),
    raw("trailing data", b'{"y_true": [[1]], "y_pred": [[1]]} x', 400),
    # past the JSON parser's nesting limit: refused as unparseable, not a crash
    raw("nested 5000 deep", b'{"y_true": ' + b"[" * 5000 + b"1" + b"]" * 5000 + b"}", 400),
    # --- a good body under a content type that is not JSON: 415 -----------------------------
    *(
        BadInput(f"content type {t!r}", json.dumps(SEED).encode(), 415, "/header/content-type", t)
        for t in ("text/plain", "application/x-www-form-urlencoded", "")
    ),
]

CASES = [pytest.param(case, id=case.id) for case in BAD_INPUTS]
"""``BAD_INPUTS`` for ``@pytest.mark.parametrize("case", CASES)``, each under its id."""
