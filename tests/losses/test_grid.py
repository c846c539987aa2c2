"""app/losses/grid.py: one loss over a grid of predictions, as single evaluations give it."""

from __future__ import annotations

import numpy as np
import pytest

from app.losses import InvalidOptionError, evaluate
from app.losses.grid import evaluate_grid

PREDS = [[0.2, 0.5, 0.3], [0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]


@pytest.mark.parametrize(
    ("loss", "y_true", "options"),
    [
        ("categorical_crossentropy", [0.0, 1.0, 0.0], None),
        ("sparse_categorical_crossentropy", [1.0], None),
        ("dice", [1.0, 1.0, 0.0], None),  # reduces a whole batch: evaluated row by row
        ("tversky", [0.0, 1.0, 1.0], {"alpha": 0.7, "beta": 0.3}),
        ("dice", [1.0, 1.0, 0.0], {"axis": -1}),  # per sample: one batch
    ],
)
def test_each_point_is_one_evaluation(
    loss: str, y_true: list[float], options: dict[str, object] | None
) -> None:
    values = evaluate_grid(loss, y_true, PREDS, options=options)
    singles = [
        float(
            np.mean(
                evaluate(loss, y_true, row, options=options, reduction="none").result.per_sample
            )
        )
        for row in PREDS
    ]
    assert values.dtype == np.float64
    assert values.tolist() == pytest.approx(singles, rel=1e-6)


def test_non_finite_values_are_kept() -> None:
    values = evaluate_grid("poisson", [1.0], [[-1.0], [1.0]])
    assert np.isnan(values[0]) and values[1] == pytest.approx(1.0)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match=r"shape \(n, k\)"):
        evaluate_grid("mse", [0.0], [0.0, 1.0])
    with pytest.raises(InvalidOptionError):
        evaluate_grid("huber", [0.0], [[0.0]], options={"delta": -1})
