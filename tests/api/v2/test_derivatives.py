"""The ``gradient`` and ``hessian_diagonal`` outputs of /v2 inference: sent only when named in
``outputs``, JSON or binary, shaped like y_pred, in the computation's datatype.

Expected numbers are derived by hand in each test (docs/derivatives.md, "Formulas").
"""

from __future__ import annotations

import math
import struct

import httpx
import numpy as np
import pytest

from tests.api.v2.test_routes import (  # the v2 tests' client and request helpers
    anyio_backend,
    client,
    outputs_of,
    seed_request,
    split_binary,
    tensor,
)

__all__ = ["anyio_backend", "client"]  # fixtures, used by name
pytestmark = pytest.mark.anyio

# The seed example's MSE: value = (1/2) sum_s (1/3) sum_j (x - t)^2, x - t = [1, 0, -1, 1, 0, 0]:
# d/dx = 2 (x - t) / 6, d2/dx2 = 2 / 6.
SEED_GRADIENT = [1 / 3, 0, -1 / 3, 1 / 3, 0, 0]
SEED_HESSIAN = [1 / 3] * 6


async def test_named_derivatives_come_back_shaped_like_y_pred(client: httpx.AsyncClient) -> None:
    request = seed_request(
        outputs=[{"name": "mean"}, {"name": "gradient"}, {"name": "hessian_diagonal"}]
    )
    r = await client.post("/v2/models/mse/infer", json=request)
    assert r.status_code == 200, r.text
    body = r.json()
    out = outputs_of(body)
    assert list(out) == ["mean", "gradient", "hessian_diagonal"]
    for name, expected in (("gradient", SEED_GRADIENT), ("hessian_diagonal", SEED_HESSIAN)):
        assert (out[name]["datatype"], out[name]["shape"]) == ("FP32", [2, 3])
        np.testing.assert_allclose(out[name]["data"], expected, rtol=1e-7)
    assert body["parameters"]["gradient_non_finite"] == 0
    assert body["parameters"]["hessian_diagonal_non_finite"] == 0


async def test_without_outputs_no_derivative_is_sent(client: httpx.AsyncClient) -> None:
    body = (await client.post("/v2/models/mse/infer", json=seed_request())).json()
    assert [o["name"] for o in body["outputs"]] == ["per_sample", "mean", "sum", "count"]
    assert set(body["parameters"]) == {"dtype", "reduction", "non_finite"}


async def test_binary_logistic_objective_in_fp64(client: httpx.AsyncClient) -> None:
    # Binary cross-entropy from logits, reduction sum, y_pred (2, 1): gradient sigmoid(x) - t,
    # Hessian sigmoid(x) (1 - sigmoid(x)); x = [0, ln 3] gives sigmoid [1/2, 3/4].
    x = [0.0, math.log(3.0)]
    request = {
        "inputs": [
            tensor("y_true", [2], "FP64", [1, 0]),
            tensor("y_pred", [2, 1], "FP64", x),
        ],
        "parameters": {"from_logits": True, "reduction": "sum"},
        "outputs": [
            {"name": "gradient", "parameters": {"binary_data": True}},
            {"name": "hessian_diagonal"},
        ],
    }
    r = await client.post("/v2/models/binary_crossentropy/infer", json=request)
    assert r.status_code == 200, r.text
    header, blobs = split_binary(r)
    out = outputs_of(header)
    assert (out["gradient"]["datatype"], out["gradient"]["shape"]) == ("FP64", [2, 1])
    assert "data" not in out["gradient"]
    gradient = struct.unpack("<2d", blobs["gradient"])
    assert gradient == pytest.approx([0.5 - 1, 0.75], rel=1e-12)
    assert out["hessian_diagonal"]["data"] == pytest.approx([0.25, 0.1875], rel=1e-12)


async def test_binary_data_output_covers_the_derivatives(client: httpx.AsyncClient) -> None:
    request = seed_request(
        parameters={"binary_data_output": True}, outputs=[{"name": "hessian_diagonal"}]
    )
    header, blobs = split_binary(await client.post("/v2/models/mse/infer", json=request))
    assert outputs_of(header)["hessian_diagonal"]["shape"] == [2, 3]
    assert struct.unpack("<6f", blobs["hessian_diagonal"]) == pytest.approx(SEED_HESSIAN)
    assert "gradient_non_finite" not in header["parameters"]


async def test_non_finite_derivatives_are_null_and_counted(client: httpx.AsyncClient) -> None:
    # Categorical cross-entropy of a row of zeros: x / sum(x) is 0/0.
    request = {
        "inputs": [
            tensor("y_true", [1, 2], "FP32", [1, 0]),
            tensor("y_pred", [1, 2], "FP32", [0, 0]),
        ],
        "outputs": [{"name": "gradient"}],
    }
    body = (await client.post("/v2/models/categorical_crossentropy/infer", json=request)).json()
    assert outputs_of(body)["gradient"]["data"] == [None, None]
    assert body["parameters"]["gradient_non_finite"] == 2


async def test_an_unknown_output_lists_the_derivatives(client: httpx.AsyncClient) -> None:
    r = await client.post("/v2/models/mse/infer", json=seed_request(outputs=[{"name": "grad"}]))
    assert r.status_code == 400
    assert r.json() == {
        "error": "unknown output 'grad'; outputs: per_sample, mean, sum, count, gradient, "
        "hessian_diagonal"
    }
