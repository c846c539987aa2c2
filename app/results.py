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
    return {
        "loss": evaluation.loss,
        "per_sample": np.ascontiguousarray(r.per_sample).reshape(-1),
        "shape": list(r.per_sample.shape),
        **totals_fields(evaluation.dtype, r.mean, r.sum, r.count, r.value),
        "reduction": evaluation.reduction,
        "dtype": evaluation.dtype,
        "non_finite": r.non_finite,
    }


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


def dumps(data: Any) -> bytes:
    """``data`` as JSON: NumPy values without ``tolist()``, NaN and infinity as null."""
    return orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY)
