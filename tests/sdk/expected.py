"""What the SDK scenario must see, derived by hand (or from the seed example), for every client.

Both scenarios (``typescript/scenario.ts`` and ``python_scenario.py``) report each response in the
wire format, as their SDK serialises it back, under the same keys; :func:`check` asserts them.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from tests.helpers import SEED_MSE  # Keras prints it for seed 002's worked example

CANONICAL_NAMES = {  # DESIGN.md section 3: the 19 canonical names
    "mean_squared_error",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error",
    "squared_hinge",
    "hinge",
    "categorical_hinge",
    "log_cosh",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "binary_crossentropy",
    "kl_divergence",
    "poisson",
    "cosine_similarity",
    "huber",
    "binary_focal_crossentropy",
    "categorical_focal_crossentropy",
    "dice",
    "tversky",
}

# Huber with delta = 0.5: 0.5 e^2 for |e| <= 0.5, else 0.5 |e| - 0.5 * 0.5^2, averaged over the
# last axis.
#   weighted: errors [1, 0] -> (0.375 + 0) / 2 = 0.1875, times weight 2 -> 0.375;
#             errors [0.25, 0] -> (0.5 * 0.0625 + 0) / 2 = 0.015625, times weight 1.
#   sum 0.390625 = value (reduction "sum"); count 2 samples; mean = sum / count = 0.1953125.
#   seed tensors: errors [1, 0, 1] -> 0.75 / 3 = 0.25; [1, 0, 0] -> 0.375 / 3 = 0.125.
WEIGHTED_HUBER = [0.375, 0.015625]
SEED_HUBER = [0.25, 0.125]


def approx(values: list[float]) -> Any:
    """float32 results compared at float32 precision."""
    return pytest.approx(values, rel=1e-6)


def check(summary: dict[str, Any], *, authenticated: bool) -> None:
    """Assert everything a scenario run reported."""
    names = [entry["name"] for entry in summary["catalogue"]["losses"]]
    assert len(names) == 34 and len(set(names)) == 34, names  # 19 Keras losses, 15 torch
    assert {n for n in names if not n.startswith("torch.")} == CANONICAL_NAMES

    assert summary["mse"]["name"] == "mean_squared_error"
    assert summary["mse"]["class_name"] == "MeanSquaredError"
    assert "mse" in summary["mse"]["aliases"]

    weighted = summary["weighted"]
    assert weighted["loss"] == "huber"
    assert weighted["per_sample"] == approx(WEIGHTED_HUBER)
    assert weighted["shape"] == [2]
    assert (weighted["reduction"], weighted["dtype"], weighted["non_finite"]) == (
        "sum",
        "float32",
        0,
    )
    assert weighted["sum"] == pytest.approx(0.390625)
    assert weighted["value"] == pytest.approx(0.390625)
    assert weighted["count"] == 2
    assert weighted["mean"] == pytest.approx(0.1953125)

    seed = summary["seed"]
    assert seed["loss"] == "mean_squared_error"
    assert seed["per_sample"] == approx(SEED_MSE)
    assert (seed["mean"], seed["sum"], seed["count"]) == (pytest.approx(0.5), 1.0, 2)
    assert seed["value"] == pytest.approx(0.5)
    assert seed["reduction"] == "sum_over_batch_size"

    # Not asked: no derivative field (absent, not null, once the SDK writes it back).
    assert not {"gradient", "hessian_diagonal", "y_pred_shape"} & set(seed), seed

    # The seed example's MSE with derivatives: value = (1/2) sum_s (1/3) sum_j (x - t)^2, so
    # d/dx = 2 (x - t) / 6 with x - t = [1, 0, -1, 1, 0, 0], and d2/dx2 = 2 / 6 everywhere.
    derivatives = summary["derivatives"]
    assert derivatives["per_sample"] == approx(SEED_MSE)
    assert derivatives["y_pred_shape"] == [2, 3]
    assert derivatives["gradient"] == approx([1 / 3, 0, -1 / 3, 1 / 3, 0, 0])
    assert derivatives["hessian_diagonal"] == approx([1 / 3] * 6)
    assert derivatives["gradient_non_finite"] == derivatives["hessian_diagonal_non_finite"] == 0

    # torch.nn.CrossEntropyLoss, classes [0, 2], weight [1, 2, 3], no reduction sent: torch's
    # mean. Per sample weight[t] (logsumexp(x) - x[t]); count = the targets' weights, 1 + 3.
    scores = [[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]]
    per_sample = [
        w * (math.log(sum(math.exp(v) for v in row)) - row[t])
        for w, row, t in ((1.0, scores[0], 0), (3.0, scores[1], 2))
    ]
    torch = summary["torch"]
    assert (torch["loss"], torch["reduction"], torch["count"]) == (
        "torch.nn.CrossEntropyLoss",
        "mean",
        4,
    )
    assert torch["per_sample"] == approx(per_sample)
    assert torch["value"] == pytest.approx(sum(per_sample) / 4, rel=1e-6)

    ok, bad = summary["batch"]["results"]
    assert (ok["id"], ok["status"]) == ("seed", 200)
    assert [r["loss"] for r in ok["results"]] == ["mean_squared_error", "huber"]
    assert ok["results"][0]["per_sample"] == approx(SEED_MSE)
    assert ok["results"][1]["per_sample"] == approx(SEED_HUBER)
    assert ok["results"][1]["mean"] == pytest.approx(0.1875)
    assert (bad["id"], bad["status"]) == ("bad", 404)
    assert bad["error"]["status"] == 404
    assert "no_such_loss" in bad["error"]["detail"]

    # docs/api.md's v2 example (seed 002's tensors): per_sample and mean, in the order asked for.
    inference = summary["inference"]
    assert (inference["model_name"], inference["id"]) == ("mean_squared_error", "seed-002")
    per_sample, mean = inference["outputs"]
    assert (per_sample["name"], per_sample["datatype"], per_sample["shape"]) == (
        "per_sample",
        "FP32",
        [2],
    )
    assert per_sample["data"] == approx(SEED_MSE)
    assert (mean["name"], mean["shape"], mean["data"]) == ("mean", [1], [pytest.approx(0.5)])

    # docs/api.md "Streaming": the seed example as two one-sample NDJSON lines. Only the TypeScript
    # client has the operation (openapi-python-client does not support application/x-ndjson).
    if "stream" in summary:
        stream = summary["stream"]
        assert (stream["loss"], stream["chunks"], stream["count"]) == ("mean_squared_error", 2, 2)
        assert stream["per_sample"] == approx(SEED_MSE)
        assert stream["mean"] == pytest.approx(0.5)

    # docs/api.md "Errors": a ragged y_pred (row 1 has 3 values where row 0 has 2).
    invalid = summary["invalid"]
    assert invalid["status"] == 422
    assert invalid["content_type"] == "application/problem+json"
    problem = invalid["problem"]
    assert (problem["type"], problem["status"]) == ("urn:lossd:problem:invalid-input", 422)
    assert "row 1 has 3 values, expected 2" in problem["detail"]
    assert [e["pointer"] for e in problem["errors"]] == ["/y_pred/1"]

    if authenticated:
        unauthorized = summary["unauthorized"]
        assert unauthorized["status"] == 401
        assert unauthorized["content_type"] == "application/problem+json"
        assert unauthorized["problem"]["status"] == 401
    else:
        assert summary["unauthorized"] is None
