"""The worked example of seed 002 (a Keras 2 / TensorFlow 1.4 session): its printed values.

y_true = [[0, 1, 1], [0, 0, 1]], y_pred = [[1, 1, 0], [1, 0, 1]]. The expected numbers are copied
from the seed document, where they were printed by Keras (tests/helpers.py: ``SEED_VALUES``);
they are not lossd's output.
"""

from __future__ import annotations

import numpy as np
import pytest

from app.losses import evaluate
from tests.helpers import SEED_PRED, SEED_TRUE, SEED_VALUES


@pytest.mark.parametrize(("name", "expected"), SEED_VALUES.items())
def test_seed_example_per_sample_values(name: str, expected: list[float]) -> None:
    result = evaluate(name, SEED_TRUE, SEED_PRED).result
    assert result.per_sample.dtype == np.float32
    # The seed prints 7-8 significant digits: that is the precision we can hold it to.
    np.testing.assert_allclose(result.per_sample, expected, rtol=1e-6)


def test_seed_hinge_uses_labels_as_given() -> None:
    # Seed formula: mean(max(1 - y*p, 0)); row 0: 1-0, 1-1, 1-0 -> 2/3. Keras 3 maps the labels
    # to y = [-1, 1, 1] first: 1+1, 0, 1 -> 1.0; row 1, y = [-1, -1, 1]: 2, 1, 0 -> 1.0.
    seed = evaluate("hinge", SEED_TRUE, SEED_PRED).result.per_sample
    keras3 = evaluate(
        "hinge", SEED_TRUE, SEED_PRED, options={"convert_binary_labels": True}
    ).result.per_sample
    np.testing.assert_allclose(seed, [2 / 3, 2 / 3], rtol=1e-6)
    np.testing.assert_allclose(keras3, [1.0, 1.0], rtol=1e-6)
