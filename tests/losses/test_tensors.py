"""app/losses/tensors.py: the finiteness check every tensor passes before a loss sees it."""

from __future__ import annotations

import numpy as np
import pytest

from app.losses.errors import InvalidInputError
from app.losses.tensors import check_finite


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided"])
@pytest.mark.parametrize(
    ("bad", "why"), [(np.nan, "NaN"), (np.inf, "infinite"), (-np.inf, "infinite")]
)
def test_a_non_finite_element_is_found_and_located(
    dtype: type, layout: str, bad: float, why: str
) -> None:
    a = np.ones((30, 40), dtype=dtype)
    a[17, 3] = bad
    view = {"contiguous": a, "transposed": a.T, "strided": a[::2]}[layout]
    where = {"contiguous": (17, 3), "transposed": (3, 17), "strided": None}[layout]
    if where is None:  # row 17 is not in a[::2]: the view is finite
        check_finite(view, "y_pred")
        return
    with pytest.raises(InvalidInputError) as raised:
        check_finite(view, "y_pred")
    assert why in str(raised.value)
    assert raised.value.index == where


def test_finite_values_near_the_dtype_limit_pass() -> None:
    """3e38 is finite in float32 (whose largest value is 3.4e38), though its square is not."""
    a = np.full((100, 100), 3e38, dtype=np.float32)
    a[::3] *= -1
    check_finite(a, "y_true")


def test_empty_and_zero_dimensional_tensors_pass() -> None:
    check_finite(np.zeros((0, 5), dtype=np.float32), "y_true")
    check_finite(np.float32(2.5).reshape(()), "y_true")
    with pytest.raises(InvalidInputError):
        check_finite(np.float32(np.nan).reshape(()), "y_true")
