"""One evaluation as JSON-ready data: the one serializer every protocol and the CLI share.

Values keep the computation dtype (NumPy scalars and arrays, written by orjson straight from
their buffers), so a float32 result prints as ``0.6666667``, as Keras prints it, not as the
float64 ``0.6666666865348816``. NaN and infinity, which JSON lacks, are written as null.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from app.losses import Evaluation


def evaluation_fields(evaluation: Evaluation) -> dict[str, Any]:
    """``loss``, flat ``per_sample`` with its ``shape``, the totals, ``reduction``, ``dtype``,
    ``non_finite``: the body of ``POST /v1/losses/{name}``, a batch result, ``lossd eval``."""
    r = evaluation.result
    fields = {
        "loss": evaluation.loss,
        "per_sample": np.ascontiguousarray(r.per_sample).reshape(-1),
        "shape": list(r.per_sample.shape),
        **totals_fields(evaluation.dtype, r.mean, r.sum, r.count, r.value),
        "reduction": evaluation.reduction,
        "dtype": evaluation.dtype,
        "non_finite": r.non_finite,
    }
    if evaluation.gradient is None and evaluation.hessian_diagonal is None:
        return fields  # the plain answer: no derivative field at all
    return fields | derivative_fields(evaluation)


def derivative_fields(evaluation: Evaluation) -> dict[str, Any]:
    """``y_pred_shape`` and, for each derivative asked for, its flat row-major values and the
    count of its non-finite ones (``gradient``, ``gradient_non_finite``, ``hessian_diagonal``,
    ``hessian_diagonal_non_finite``); nothing for a derivative not asked for."""
    fields: dict[str, Any] = {}
    for name, array, non_finite in (
        ("gradient", evaluation.gradient, evaluation.gradient_non_finite),
        ("hessian_diagonal", evaluation.hessian_diagonal, evaluation.hessian_diagonal_non_finite),
    ):
        if array is not None:
            fields.setdefault("y_pred_shape", list(array.shape))
            fields[name] = array.reshape(-1)  # C-contiguous (the engine's contract): a view
            fields[f"{name}_non_finite"] = non_finite
    return fields


def totals_fields(
    dtype: str, mean: float, total: float, count: float, value: float | None
) -> dict[str, Any]:
    """``mean``, ``sum``, ``count`` and ``value`` in ``dtype``; a whole ``count`` as an integer
    (a count can pass 2**24, float32's last exact integer)."""
    scalar = np.dtype(dtype).type
    return {
        "mean": scalar(mean),
        "sum": scalar(total),
        "count": int(count) if float(count).is_integer() else scalar(count),
        "value": None if value is None else scalar(value),
    }


def reduced_value(reduction: str, mean: float, total: float) -> float | None:
    """What Keras returns for ``reduction``: the sum, nothing for ``none``, else the mean."""
    return {"sum": total, "none": None}.get(reduction, mean)


class AnswerTooLargeError(Exception):
    """An answer over its size limit: ``size`` bytes (``at_least`` that many, when it was refused
    before it was written) against ``limit``."""

    def __init__(self, size: int, limit: int, *, at_least: bool) -> None:
        super().__init__(f"the answer is {'at least ' if at_least else ''}{size} bytes")
        self.size = size
        self.limit = limit
        self.at_least = at_least


def dumps(data: Any, limit: int | None = None) -> bytes:
    """``data`` as JSON: NumPy values without ``tolist()``, NaN and infinity as null.

    With ``limit``, an answer over ``limit`` bytes raises :class:`AnswerTooLargeError`: one whose
    numbers alone need more (:func:`least_size`) before it is written, so a huge answer is never
    built; any other once written, by its length.
    """
    if limit is not None and (least := least_size(data)) > limit:
        raise AnswerTooLargeError(least, limit, at_least=True)
    out = _write(data)
    if limit is not None and len(out) > limit:
        raise AnswerTooLargeError(len(out), limit, at_least=False)
    return out


def _write(data: Any) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY)


def least_size(data: Any) -> int:
    """A lower bound of the size of ``data`` as JSON, from its arrays (what can be large): a
    float is at least 3 characters (``0.0``), any other number 1, and numbers are separated by
    commas. Walks the dicts and lists holding them (an answer's few fields, a batch's items)."""
    # On every answer, a small one's included: ~1.5 us for one evaluation's fields, so plain
    # loops and exact type checks, and a call only for what may hold an array.
    if type(data) is dict:
        values: Any = data.values()
    elif type(data) is list:
        values = data
    elif isinstance(data, np.ndarray):
        n = data.size
        return (4 if data.dtype.kind == "f" else 2) * n - 1 if n else 0
    else:
        return 0
    total = 0
    for value in values:
        if type(value) is dict or type(value) is list or isinstance(value, np.ndarray):
            total += least_size(value)
    return total
