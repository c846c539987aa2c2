"""Turning client data into validated float arrays, with errors that say where the problem is.

The fast path is one ``np.asarray`` call; only when it fails do we walk the nested lists to find
the first offending row, so a good request never pays for the diagnosis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from app.losses.errors import InvalidInputError
from app.losses.numerics import FloatArray

DTYPES = {"float32": np.float32, "float64": np.float64}
#: The most axes a NumPy array may have (NPY_MAXDIMS: 64 since NumPy 2.0, 32 before). A deeper
#: tensor cannot be held at all, so it is refused by rank rather than called "not rectangular".
MAX_RANK = 64 if np.lib.NumpyVersion(np.__version__) >= "2.0.0" else 32


def rank_error(rank: int, field: str) -> InvalidInputError:
    """The error for a tensor of ``rank`` > :data:`MAX_RANK` in ``field``."""
    return InvalidInputError(
        f"tensor has rank {rank}; at most {MAX_RANK} axes are supported", field=field
    )


def to_array(data: Any, field: str, dtype: str = "float32", *, min_rank: int = 1) -> FloatArray:
    """Convert nested lists (or an array) of numbers to a finite, non-empty array of ``dtype``.

    Raises :class:`InvalidInputError` naming ``field`` and the index of the first bad element:
    ragged rows, strings, booleans-as-objects, NaN or infinity, a scalar where a tensor is needed,
    or an empty tensor.
    """
    if isinstance(data, np.ndarray):
        array = data
    else:
        try:
            array = np.asarray(data)
        except ValueError:  # NumPy refuses ragged nesting (and nesting past MAX_RANK) outright
            raise _diagnose(data, field) from None
    if array.dtype.kind not in "biuf":
        raise _diagnose(data, field)
    return check_tensor(array, field, dtype, min_rank=min_rank)


def check_tensor(
    array: Any, field: str, dtype: str = "float32", *, min_rank: int = 1
) -> FloatArray:
    """``array`` (of numbers) as a finite, non-empty array of ``dtype`` and rank >= ``min_rank``;
    :class:`InvalidInputError` naming ``field`` (and the index of a bad value) otherwise."""
    if array.ndim < min_rank:
        raise InvalidInputError(
            f"expected a tensor of rank >= {min_rank}, got a scalar"
            if array.ndim == 0
            else f"expected a tensor of rank >= {min_rank}, got rank {array.ndim}",
            field=field,
        )
    if array.size == 0:
        raise InvalidInputError(f"tensor is empty (shape {list(array.shape)})", field=field)
    try:
        # A value beyond the dtype's range becomes inf here and is reported just below.
        with np.errstate(over="ignore"):
            out = array.astype(DTYPES[dtype], copy=False)
    except KeyError:
        raise InvalidInputError(
            f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}", field="dtype"
        ) from None
    check_finite(out, field)
    return out


@dataclass(frozen=True, slots=True)
class Tensors:
    """The inputs of one evaluation, checked: finite, non-empty arrays of one float dtype."""

    y_true: FloatArray
    y_pred: FloatArray
    sample_weight: FloatArray | None = None

    @classmethod
    def of(
        cls, y_true: Any, y_pred: Any, sample_weight: Any = None, dtype: str = "float32"
    ) -> Tensors:
        """Check array-likes (nested lists, arrays) and convert them to ``dtype``."""
        return cls(
            to_array(y_true, "y_true", dtype),
            to_array(y_pred, "y_pred", dtype),
            None
            if sample_weight is None
            else to_array(sample_weight, "sample_weight", dtype, min_rank=0),
        )

    @property
    def dtype(self) -> str:
        """The computation dtype's name (``float32`` or ``float64``)."""
        return self.y_pred.dtype.name


def check_finite(array: FloatArray, field: str) -> None:
    """Reject NaN and +-infinity (including values that overflow the requested dtype)."""
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        value = array[where]
        why = "NaN" if np.isnan(value) else "infinite (or too large for the dtype)"
        raise InvalidInputError(
            f"value is {why}; only finite numbers are accepted", field=field, index=where
        )


def _diagnose(data: Any, field: str) -> InvalidInputError:
    """Find the first place where nested ``data`` is not a rectangular tensor of numbers."""
    expected = _shape_of_first(data)
    if len(expected) > MAX_RANK:
        return rank_error(len(expected), field)
    problem = _first_problem(data, expected, ())
    if problem is None:  # pragma: no cover - np.asarray failed for a reason we do not model
        return InvalidInputError("not a rectangular tensor of numbers", field=field)
    index, message = problem
    return InvalidInputError(message, field=field, index=index)


def _describe(x: Any) -> str:
    """A JSON-minded name for a value: null, true, a string, a number, an object."""
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, str):
        return f"the string {x[:20]!r}"
    if _is_number(x):
        return f"the number {x!r}"
    return "an object" if isinstance(x, dict) else type(x).__name__


_FLOAT_MAX = float(np.finfo(np.float64).max)  # a Python float: compared with any int exactly


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float | np.number) and not isinstance(x, bool)


def _shape_of_first(data: Any) -> list[int]:
    """The shape implied by following the first element down each level."""
    shape = []
    while isinstance(data, list | tuple):
        shape.append(len(data))
        if not data:
            break
        data = data[0]
    return shape


def _first_problem(
    data: Any, expected: list[int], index: tuple[int, ...]
) -> tuple[tuple[int, ...], str] | None:
    depth = len(index)
    if depth == len(expected):
        if _is_number(data):
            if isinstance(data, int) and abs(data) > _FLOAT_MAX:  # JSON integers are unbounded
                return index, "value is too large for a float; only finite numbers are accepted"
            return None
        if isinstance(data, list | tuple):
            return index, f"expected a number, found a list of {len(data)} values"
        return index, f"expected a number, found {_describe(data)}"
    if not isinstance(data, list | tuple):
        return index, f"expected a list of {expected[depth]} values, found {_describe(data)}"
    if len(data) != expected[depth]:
        label = f"row {'/'.join(str(i) for i in index)}" if depth else "tensor"
        return index, f"{label} has {len(data)} values, expected {expected[depth]}"
    for i, item in enumerate(data):
        problem = _first_problem(item, expected, (*index, i))
        if problem is not None:
            return problem
    return None
