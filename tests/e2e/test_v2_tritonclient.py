"""The v2 API through NVIDIA's own Triton client (``tritonclient.http``) against a real server.

Expected values are computed here in float64 NumPy from the textbook formulas, not by lossd.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

tritonclient_http = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402

pytestmark = pytest.mark.e2e

RNG = np.random.default_rng(20240601)


@pytest.fixture(scope="module")
def triton(live_server: str) -> Iterator[tritonclient_http.InferenceServerClient]:
    client = tritonclient_http.InferenceServerClient(url=live_server.removeprefix("http://"))
    yield client
    client.close()


def make_input(name: str, array: np.ndarray, *, binary: bool) -> tritonclient_http.InferInput:
    datatype = {
        np.dtype(np.float32): "FP32",
        np.dtype(np.float64): "FP64",
        np.dtype(np.int64): "INT64",
    }[array.dtype]
    tensor = tritonclient_http.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=binary)
    return tensor


def mse_by_hand(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    diff = y_true.astype(np.float64) - y_pred.astype(np.float64)
    return np.mean(diff * diff, axis=-1)


def test_server_health_and_metadata(triton: tritonclient_http.InferenceServerClient) -> None:
    assert triton.is_server_live()
    assert triton.is_server_ready()
    meta = triton.get_server_metadata()
    assert meta["name"] == "lossd"
    assert "binary_tensor_data" in meta["extensions"]


def test_model_metadata_and_readiness(triton: tritonclient_http.InferenceServerClient) -> None:
    meta = triton.get_model_metadata("MeanSquaredError")
    assert meta["name"] == "mean_squared_error"
    assert meta["platform"] == "lossd"
    assert [t["name"] for t in meta["inputs"]] == ["y_true", "y_pred", "sample_weight"]
    assert [t["name"] for t in meta["outputs"]] == [
        "per_sample",
        "mean",
        "sum",
        "count",
        "gradient",
        "hessian_diagonal",
    ]
    versioned = triton.get_model_metadata("mse", model_version="1")
    assert versioned["name"] == "mean_squared_error"
    assert triton.is_model_ready("loss_mse")
    assert triton.is_model_ready("mse", model_version="1")
    assert not triton.is_model_ready("msee")
    with pytest.raises(InferenceServerException) as err:
        triton.get_model_metadata("msee")
    assert err.value.status() == "404"
    assert "did you mean 'mse'" in err.value.message()


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_mse_inputs_and_outputs(
    triton: tritonclient_http.InferenceServerClient, binary: bool
) -> None:
    y_true = RNG.normal(size=(64, 10)).astype(np.float32)
    y_pred = RNG.normal(size=(64, 10)).astype(np.float32)
    outputs = [
        tritonclient_http.InferRequestedOutput(name, binary_data=binary)
        for name in ("per_sample", "mean", "sum", "count")
    ]
    result = triton.infer(
        "mse",
        [make_input("y_true", y_true, binary=binary), make_input("y_pred", y_pred, binary=binary)],
        outputs=outputs,
        request_id="e2e-1",
    )
    expected = mse_by_hand(y_true, y_pred)
    per_sample = result.as_numpy("per_sample")
    assert per_sample.dtype == np.float32
    assert per_sample.shape == (64,)
    np.testing.assert_allclose(per_sample, expected, rtol=1e-5)
    np.testing.assert_allclose(result.as_numpy("mean"), [expected.mean()], rtol=1e-5)
    np.testing.assert_allclose(result.as_numpy("sum"), [expected.sum()], rtol=1e-5)
    assert result.as_numpy("count").tolist() == [64.0]
    response = result.get_response()
    assert (response["model_name"], response["id"]) == ("mean_squared_error", "e2e-1")


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_mse_derivatives_as_named_outputs(
    triton: tritonclient_http.InferenceServerClient, binary: bool
) -> None:
    # MSE, sum_over_batch_size on (64, 10): d/dx = 2 (x - t) / (64 * 10), d2/dx2 = 2 / 640.
    y_true = RNG.normal(size=(64, 10)).astype(np.float32)
    y_pred = RNG.normal(size=(64, 10)).astype(np.float32)
    result = triton.infer(
        "mse",
        [make_input("y_true", y_true, binary=binary), make_input("y_pred", y_pred, binary=binary)],
        outputs=[
            tritonclient_http.InferRequestedOutput(name, binary_data=binary)
            for name in ("gradient", "hessian_diagonal")
        ],
    )
    gradient, hessian = result.as_numpy("gradient"), result.as_numpy("hessian_diagonal")
    assert (gradient.dtype, gradient.shape, hessian.shape) == (np.float32, (64, 10), (64, 10))
    np.testing.assert_allclose(gradient, 2 * (y_pred - y_true) / 640, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(hessian, np.full((64, 10), 2 / 640), rtol=1e-6)
    assert result.as_numpy("per_sample") is None  # not named, not sent


def test_default_outputs_come_back_binary_with_sample_weight(
    triton: tritonclient_http.InferenceServerClient,
) -> None:
    # No outputs listed: the client asks for every output as binary (binary_data_output).
    y_true = RNG.normal(size=(500, 32)).astype(np.float32)
    y_pred = RNG.normal(size=(500, 32)).astype(np.float32)
    weight = RNG.uniform(0.5, 2.0, size=500).astype(np.float32)
    result = triton.infer(
        "mean_squared_error",
        [
            make_input("y_true", y_true, binary=True),
            make_input("y_pred", y_pred, binary=True),
            make_input("sample_weight", weight, binary=True),
        ],
        parameters={"reduction": "mean_with_sample_weight"},
    )
    weighted = mse_by_hand(y_true, y_pred) * weight.astype(np.float64)
    np.testing.assert_allclose(result.as_numpy("per_sample"), weighted, rtol=1e-5)
    np.testing.assert_allclose(
        result.as_numpy("count"), [weight.astype(np.float64).sum()], rtol=1e-6
    )
    np.testing.assert_allclose(
        result.as_numpy("mean"), [weighted.sum() / weight.astype(np.float64).sum()], rtol=1e-5
    )
    assert all("data" not in out for out in result.get_response()["outputs"])


def test_fp64_binary_computes_in_float64(triton: tritonclient_http.InferenceServerClient) -> None:
    y_true = RNG.normal(size=(8, 5))
    y_pred = RNG.normal(size=(8, 5))
    result = triton.infer(
        "mae",
        [make_input("y_true", y_true, binary=True), make_input("y_pred", y_pred, binary=True)],
        outputs=[tritonclient_http.InferRequestedOutput("per_sample", binary_data=True)],
    )
    per_sample = result.as_numpy("per_sample")
    assert per_sample.dtype == np.float64
    np.testing.assert_allclose(per_sample, np.mean(np.abs(y_true - y_pred), axis=-1), rtol=1e-12)


def test_sparse_int64_labels_with_from_logits(
    triton: tritonclient_http.InferenceServerClient,
) -> None:
    # Cross-entropy of softmax(logits) at the label: logsumexp(logits) - logits[label].
    logits = RNG.normal(size=(16, 4)).astype(np.float32)
    labels = RNG.integers(0, 4, size=16).astype(np.int64)
    result = triton.infer(
        "SparseCategoricalCrossentropy",
        [make_input("y_true", labels, binary=True), make_input("y_pred", logits, binary=False)],
        outputs=[tritonclient_http.InferRequestedOutput("per_sample", binary_data=False)],
        parameters={"from_logits": True},
    )
    z = logits.astype(np.float64)
    expected = np.log(np.exp(z).sum(axis=-1)) - z[np.arange(16), labels]
    np.testing.assert_allclose(result.as_numpy("per_sample"), expected, rtol=1e-5)


def test_gzip_compressed_request(triton: tritonclient_http.InferenceServerClient) -> None:
    y_true = RNG.normal(size=(4, 3)).astype(np.float32)
    y_pred = RNG.normal(size=(4, 3)).astype(np.float32)
    result = triton.infer(
        "mse",
        [make_input("y_true", y_true, binary=True), make_input("y_pred", y_pred, binary=True)],
        request_compression_algorithm="gzip",
    )
    np.testing.assert_allclose(
        result.as_numpy("per_sample"), mse_by_hand(y_true, y_pred), rtol=1e-5
    )


def test_errors_reach_the_client(triton: tritonclient_http.InferenceServerClient) -> None:
    y = np.ones((2, 3), dtype=np.float32)
    with pytest.raises(InferenceServerException) as err:
        triton.infer(
            "huber",
            [make_input("y_true", y, binary=True), make_input("y_pred", y, binary=True)],
            parameters={"delta": -1.0},
        )
    assert err.value.status() == "400"
    assert err.value.message() == "parameter 'delta': delta must be > 0, got -1.0"
    with pytest.raises(InferenceServerException) as err:
        triton.infer(
            "mse",
            [make_input("y_true", y, binary=False), make_input("y_pred", y[:1], binary=False)],
        )
    assert err.value.status() == "400"
    assert "y_pred has shape [1, 3] but y_true has shape [2, 3]" in err.value.message()


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_torch_cross_entropy_with_a_weight_input(
    triton: tritonclient_http.InferenceServerClient, binary: bool
) -> None:
    # A torch loss's tensor option (class weights) travels as an input of its own.
    logits = RNG.normal(size=(32, 5))
    target = RNG.integers(0, 5, size=32)
    weight = RNG.uniform(0.5, 2.0, size=5)
    inputs = [
        make_input("y_true", target.astype(np.int64), binary=binary),
        make_input("y_pred", logits.astype(np.float32), binary=binary),
        make_input("weight", weight.astype(np.float32), binary=binary),
    ]
    result = triton.infer("torch.nn.CrossEntropyLoss", inputs)
    # By hand, float64: weight[t] * (logsumexp(x) - x[t]); torch's mean divides by the summed
    # weights of the targets.
    x = logits.astype(np.float32).astype(np.float64)
    w = weight.astype(np.float32).astype(np.float64)
    lse = np.log(np.exp(x).sum(axis=1))
    per_sample = w[target] * (lse - x[np.arange(32), target])
    np.testing.assert_allclose(result.as_numpy("per_sample"), per_sample, rtol=1e-5)
    np.testing.assert_allclose(result.as_numpy("count"), [w[target].sum()], rtol=1e-6)
    np.testing.assert_allclose(
        result.as_numpy("mean"), [per_sample.sum() / w[target].sum()], rtol=1e-5
    )
