"""Client and AsyncClient against a live lossd: numbers from hand derivations, both transports."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import numpy as np
import pytest

from lossd_client import AsyncClient, Client, Evaluation, Transport

from .conftest import SEED_PRED, SEED_TRUE, TRANSPORTS

# MSE of the seed example: per sample mean((y_true - y_pred)^2) = [2/3, 1/3], mean 0.5.
SEED_MSE = np.array([2 / 3, 1 / 3], dtype=np.float32)


@pytest.fixture(scope="module")
def client(url: str) -> Iterator[Client]:
    with Client(url) as lossd:
        yield lossd


@pytest.mark.parametrize("transport", ["json", "binary"])
def test_the_seed_example(client: Client, transport: Transport) -> None:
    result = client.evaluate("mse", SEED_TRUE, SEED_PRED, transport=transport)
    assert result.transport == transport
    assert result.loss == "mean_squared_error"
    assert result.per_sample is not None
    assert result.per_sample.dtype == np.float32 and result.per_sample.shape == (2,)
    np.testing.assert_array_equal(result.per_sample, SEED_MSE)
    assert (result.mean, result.sum, result.count, result.value) == (0.5, 1.0, 2.0, 0.5)
    assert result.non_finite == 0 and result.gradient is None


def test_per_sample_keeps_its_shape_and_aliases_resolve(client: Client) -> None:
    # (batch=2, time=2, k=1): |y_true - y_pred| per (sample, step).
    y_true = np.zeros((2, 2, 1))
    y_pred = np.array([[[1.0], [2.0]], [[3.0], [4.0]]])
    for transport in TRANSPORTS:
        result = client.evaluate("MeanAbsoluteError", y_true, y_pred, transport=transport)
        assert result.per_sample is not None
        np.testing.assert_array_equal(result.per_sample, [[1.0, 2.0], [3.0, 4.0]])
        assert result.mean == 2.5 and result.count == 4


@pytest.mark.parametrize("transport", ["json", "binary"])
def test_sample_weight_reduction_and_float64(client: Client, transport: Transport) -> None:
    # Weighted per-sample MSE [2/3 * 3, 1/3 * 0.5] = [2, 1/6]; sum 13/6; count 2.
    result = client.evaluate(
        "mse", SEED_TRUE, SEED_PRED, sample_weight=[3.0, 0.5], reduction="sum",
        dtype="float64", transport=transport,
    )  # fmt: skip
    assert result.dtype == "float64" and result.per_sample is not None
    assert result.per_sample.dtype == np.float64
    np.testing.assert_allclose(result.per_sample, [2.0, 1 / 6], rtol=1e-15)
    assert result.sum == pytest.approx(13 / 6, rel=1e-15)
    assert result.value == result.sum and result.count == 2
    # one number weighs every sample: mean 2 * 0.5
    scalar = client.evaluate("mse", SEED_TRUE, SEED_PRED, sample_weight=2.0, transport=transport)
    assert scalar.mean == 1.0 and scalar.count == 2
    none = client.evaluate("mse", SEED_TRUE, SEED_PRED, reduction="none", transport=transport)
    assert none.value is None and none.mean == 0.5


def test_options_go_through_both_transports(client: Client) -> None:
    # Binary cross-entropy from logits: a logit of 0 costs log 2.
    for transport in TRANSPORTS:
        result = client.evaluate(
            "bce", [[1, 0]], [[0, 0]], options={"from_logits": True}, transport=transport
        )
        assert result.mean == pytest.approx(np.log(2), rel=1e-6)


@pytest.mark.parametrize(
    ("loss", "options", "labels"),
    [
        ("mse", None, "real"),
        ("huber", {"delta": 0.5}, "real"),
        ("categorical_crossentropy", {"label_smoothing": 0.1}, "onehot"),
        ("sparse_categorical_crossentropy", None, "sparse"),
        ("binary_crossentropy", {"from_logits": True}, "binary"),
    ],
)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_json_and_binary_agree(
    client: Client, loss: str, options: dict[str, object] | None, labels: str, dtype: str
) -> None:
    rng = np.random.default_rng(7)
    y_pred = rng.uniform(0.05, 0.95, size=(300, 10)).astype(dtype)
    if labels == "real":
        y_true = rng.normal(size=(300, 10)).astype(dtype)
    elif labels == "onehot":
        y_true = np.eye(10, dtype=dtype)[rng.integers(0, 10, 300)]
    elif labels == "sparse":
        y_true = rng.integers(0, 10, size=300)
    else:
        y_true = rng.integers(0, 2, size=(300, 10)).astype(dtype)
    results = [
        client.evaluate(loss, y_true, y_pred, options=options, dtype=dtype, transport=t)
        for t in TRANSPORTS
    ]
    json_result, binary_result = results
    assert (json_result.transport, binary_result.transport) == ("json", "binary")
    assert json_result.per_sample is not None and binary_result.per_sample is not None
    np.testing.assert_array_equal(json_result.per_sample, binary_result.per_sample)
    assert json_result.mean == binary_result.mean
    assert json_result.sum == binary_result.sum
    assert json_result.count == binary_result.count == 300
    # and the per-sample values are the loss's, by a NumPy derivation for MSE
    if loss == "mse":
        expected = np.mean((y_true.astype(np.float64) - y_pred) ** 2, axis=-1)
        np.testing.assert_allclose(json_result.per_sample, expected, rtol=1e-6)


def test_auto_transport_by_size_and_request(client: Client, url: str) -> None:
    small = client.evaluate("mse", SEED_TRUE, SEED_PRED)
    assert small.transport == "json"
    big = np.ones((200, 200), dtype=np.float32)
    assert client.evaluate("mse", big, big).transport == "binary"
    with Client(url, binary_threshold=10) as eager:
        assert eager.evaluate("mse", SEED_TRUE, SEED_PRED).transport == "binary"
        # a list-valued option (dice's axis) cannot be a /v2 parameter: JSON again
        # (12 values each, over the threshold); identical tensors: dice loss 0 per sample
        same = np.ones((3, 2, 2))
        dice = eager.evaluate("dice", same, same, options={"axis": [1, 2]})
        assert dice.transport == "json" and dice.per_sample is not None
        assert dice.per_sample.shape == (3,) and dice.mean == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="option 'axis'"):
        client.evaluate("dice", big, big, options={"axis": [1]}, transport="binary")
    # derivatives no longer keep a large request on JSON
    assert client.evaluate("mse", big, big, gradient=True).transport == "binary"


def test_per_sample_false_keeps_the_totals(client: Client) -> None:
    big = np.full((300, 300), 2.0, dtype=np.float32)
    for transport in TRANSPORTS:
        result = client.evaluate(
            "mse", np.zeros_like(big), big, per_sample=False, transport=transport
        )
        assert result.per_sample is None
        assert (result.mean, result.sum, result.count) == (4.0, 1200.0, 300.0)


def test_arrays_lists_and_array_likes(client: Client) -> None:
    class Wrapped:
        def __init__(self, data: list[list[int]]) -> None:
            self.data = data

        def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
            return np.array(self.data, dtype=np.float32)

    result = client.evaluate("mse", Wrapped(SEED_TRUE), np.array(SEED_PRED))
    assert result.mean == 0.5
    with pytest.raises(TypeError, match="numeric"):
        client.evaluate("mse", [["a"]], [[1]])


def test_non_finite_losses_are_nan_and_counted(client: Client) -> None:
    # Poisson with a negative prediction: log of a negative number, sent as null.
    result = client.evaluate("poisson", [[1.0], [1.0]], [[-1.0], [1.0]])
    assert result.per_sample is not None and result.non_finite == 1
    assert np.isnan(result.per_sample[0]) and result.per_sample[1] == pytest.approx(1.0)


def test_catalogue(client: Client) -> None:
    losses = client.losses()
    names = {info.name for info in losses}
    assert {"mean_squared_error", "huber", "dice"} <= names and len(losses) >= 19
    huber = client.loss("HUBER_LOSS")
    assert huber.name == "huber" and huber.class_name == "Huber"
    assert [(o.name, o.default) for o in huber.options] == [("delta", 1.0)]


def test_batch_returns_one_result_per_item(client: Client) -> None:
    results = client.batch(
        [
            {"id": "a", "loss": ["mse", {"name": "huber", "options": {"delta": 0.5}}],
             "y_true": SEED_TRUE, "y_pred": np.array(SEED_PRED)},
            {"id": "b", "loss": "no_such_loss", "y_true": [[0]], "y_pred": [[1]]},
            {"id": "c", "loss": "mse", "y_true": [[0, 1]], "y_pred": [[1, 1, 1]]},
        ]
    )  # fmt: skip
    assert [(r.id, r.status, r.ok) for r in results] == [
        ("a", 200, True), ("b", 404, False), ("c", 422, False),
    ]  # fmt: skip
    mse, huber = results[0].evaluations
    assert mse.mean == 0.5
    # huber with delta 0.5: |e| = 1 > delta costs delta*|e| - delta^2/2 = 0.375 per element;
    # per sample [2 * 0.375 / 3, 0.375 / 3] = [0.25, 0.125]
    assert huber.per_sample is not None
    np.testing.assert_allclose(huber.per_sample, [0.25, 0.125], rtol=1e-6)
    from lossd_client import InvalidInputError, UnknownLossError

    assert isinstance(results[1].error, UnknownLossError)
    assert isinstance(results[2].error, InvalidInputError)
    assert results[2].error.errors[0].pointer.startswith("/items/")
    with pytest.raises(UnknownLossError):
        _ = results[1].evaluation


def test_stream_sends_chunks_and_returns_totals(client: Client) -> None:
    chunks = [(SEED_TRUE[:1], SEED_PRED[:1]), (SEED_TRUE[1:], SEED_PRED[1:])]
    totals = client.stream("mse", chunks)
    assert (totals.mean, totals.sum, totals.count, totals.chunks) == (0.5, 1.0, 2.0, 2)
    assert totals.per_sample is None
    every = client.stream("mse", iter(chunks), per_sample=True)
    assert every.per_sample is not None
    np.testing.assert_array_equal(every.per_sample, SEED_MSE)
    weighted = client.stream(
        "mse", [(SEED_TRUE[:1], SEED_PRED[:1], [2.0]), (SEED_TRUE[1:], SEED_PRED[1:], [0.0])],
        reduction="sum",
    )  # fmt: skip
    assert weighted.sum == pytest.approx(4 / 3)


def test_stream_of_a_generator_of_numpy_chunks(client: Client) -> None:
    rng = np.random.default_rng(1)
    blocks = [(rng.normal(size=(50, 4)), rng.normal(size=(50, 4))) for _ in range(5)]
    whole_true = np.concatenate([b[0] for b in blocks])
    whole_pred = np.concatenate([b[1] for b in blocks])
    streamed = client.stream("mse", (b for b in blocks), dtype="float64")
    single = client.evaluate("mse", whole_true, whole_pred, dtype="float64")
    assert streamed.count == single.count == 250
    assert streamed.mean == pytest.approx(single.mean, rel=1e-12)


def test_async_client_has_the_same_methods(url: str) -> None:
    async def run() -> tuple[Evaluation, Evaluation, int, Evaluation]:
        async with AsyncClient(url) as lossd:
            small, big, losses, streamed = await asyncio.gather(
                lossd.evaluate("mse", SEED_TRUE, SEED_PRED),
                lossd.evaluate("mse", np.zeros((300, 300)), np.ones((300, 300))),
                lossd.losses(),
                lossd.stream("mse", [(SEED_TRUE, SEED_PRED)]),
            )
            batch = await lossd.batch([{"loss": "mae", "y_true": [[0]], "y_pred": [[2]]}])
            assert batch[0].evaluation.mean == 2.0
            assert (await lossd.loss("mse")).name == "mean_squared_error"
            return small, big, len(losses), streamed

    small, big, count, streamed = asyncio.run(run())
    assert small.mean == 0.5 and small.transport == "json"
    assert big.mean == 1.0 and big.transport == "binary"
    assert count >= 19 and streamed.mean == 0.5


@pytest.mark.parametrize("transport", ["json", "binary"])
def test_derivatives_of_mse(client: Client, transport: Transport) -> None:
    # value = sum((y_pred - y_true)^2) / 6, so d/dy_pred = (y_pred - y_true) / 3 and the
    # second derivative is 1/3 everywhere.
    result = client.evaluate(
        "mse", SEED_TRUE, SEED_PRED, gradient=True, hessian_diagonal=True, transport=transport
    )
    assert result.transport == transport
    assert result.gradient is not None and result.hessian_diagonal is not None
    assert result.gradient.shape == (2, 3) and result.gradient.dtype == np.float32
    np.testing.assert_allclose(result.gradient, [[1 / 3, 0, -1 / 3], [1 / 3, 0, 0]], rtol=1e-6)
    np.testing.assert_allclose(result.hessian_diagonal, np.full((2, 3), 1 / 3), rtol=1e-6)
    assert result.gradient_non_finite == result.hessian_diagonal_non_finite == 0
    assert result.mean == 0.5


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_derivatives_are_the_same_on_both_transports(client: Client, dtype: str) -> None:
    rng = np.random.default_rng(13)
    y_pred = rng.normal(size=(200, 5)).astype(dtype)
    n = y_pred.size
    p = y_pred.astype(np.float64)
    mse_true = rng.normal(size=(200, 5)).astype(dtype)
    bce_true = rng.integers(0, 2, size=(200, 5)).astype(dtype)
    sigmoid = 1 / (1 + np.exp(-p))
    cases = [
        # MSE: value = sum((p - t)^2) / n, so (p - t) * 2/n and 2/n
        ("mse", None, mse_true, (p - mse_true) * 2 / n, np.full_like(p, 2 / n)),
        # binary cross-entropy from logits: value = mean of softplus(p) - t p, so
        # (sigmoid(p) - t) / n and sigmoid(p) (1 - sigmoid(p)) / n
        ("binary_crossentropy", {"from_logits": True}, bce_true,
         (sigmoid - bce_true) / n, sigmoid * (1 - sigmoid) / n),
    ]  # fmt: skip
    rtol = 1e-5 if dtype == "float32" else 1e-12
    for loss, options, y_true, gradient, hessian in cases:
        results = [
            client.evaluate(
                loss, y_true, y_pred, options=options, dtype=dtype, gradient=True,
                hessian_diagonal=True, transport=t,
            )
            for t in TRANSPORTS
        ]  # fmt: skip
        for result in results:
            assert result.gradient is not None and result.hessian_diagonal is not None
            pairs = ((result.gradient, gradient), (result.hessian_diagonal, hessian))
            for array, expected in pairs:
                assert array.shape == y_pred.shape and array.dtype == np.dtype(dtype)
                np.testing.assert_allclose(array, expected, rtol=rtol, atol=1e-9 / n)
            assert result.gradient_non_finite == result.hessian_diagonal_non_finite == 0
        json_result, binary_result = results
        assert (json_result.transport, binary_result.transport) == ("json", "binary")
        # the same numbers, bit for bit: JSON float32 values round back to the same floats
        np.testing.assert_array_equal(json_result.gradient, binary_result.gradient)
        np.testing.assert_array_equal(json_result.hessian_diagonal, binary_result.hessian_diagonal)
        assert json_result.mean == binary_result.mean


def test_non_finite_derivatives_are_nan_and_counted(client: Client) -> None:
    # categorical cross-entropy of a row of zeros: 0/0 in both elements of that row
    y_true, y_pred = [[1.0, 0.0], [0.0, 1.0]], [[0.0, 0.0], [0.3, 0.7]]
    results = [
        client.evaluate(
            "categorical_crossentropy",
            y_true,
            y_pred,
            gradient=True,
            hessian_diagonal=True,
            transport=t,
        )
        for t in TRANSPORTS
    ]
    for result in results:
        assert result.gradient is not None and result.hessian_diagonal is not None
        assert result.gradient_non_finite == result.hessian_diagonal_non_finite == 2
        assert np.isnan(result.gradient[0]).all() and np.isfinite(result.gradient[1]).all()
        assert np.isnan(result.hessian_diagonal[0]).all()
    np.testing.assert_array_equal(results[0].gradient, results[1].gradient)
    np.testing.assert_array_equal(results[0].hessian_diagonal, results[1].hessian_diagonal)


def test_derivatives_of_a_large_input_go_as_binary(client: Client) -> None:
    y_pred = np.full((300, 300), 3.0)
    result = client.evaluate("mse", np.zeros_like(y_pred), y_pred, gradient=True)
    assert result.transport == "binary" and result.hessian_diagonal is None
    assert result.gradient is not None and result.gradient.dtype == np.float32
    np.testing.assert_allclose(result.gradient, np.full((300, 300), 6.0 / y_pred.size), rtol=1e-6)
    # the Hessian diagonal alone, without the per-sample values: 2/n everywhere
    alone = client.evaluate(
        "mse", np.zeros_like(y_pred), y_pred, hessian_diagonal=True, per_sample=False
    )
    assert alone.transport == "binary" and alone.gradient is None and alone.per_sample is None
    assert alone.hessian_diagonal is not None and alone.hessian_diagonal.shape == (300, 300)
    np.testing.assert_allclose(alone.hessian_diagonal, 2.0 / y_pred.size, rtol=1e-6)
    assert alone.mean == 9.0


def test_binary_requests_name_the_derivatives_as_binary_outputs() -> None:
    from lossd_client import _wire

    args = _wire.EvaluateArgs(
        loss="mse", y_true=np.zeros((2, 3)), y_pred=np.ones((2, 3)), sample_weight=None,
        options=None, reduction=None, dtype="float32", gradient=True, hessian_diagonal=True,
        per_sample=False,
    )  # fmt: skip
    assert _wire.choose_transport(args, "auto", threshold=12) == "binary"
    call = _wire.evaluate_binary(args)
    body = b"".join(call.chunks() if call.chunks is not None else ())
    header = json.loads(body[: int(call.headers[_wire.HEADER_LENGTH])])
    assert header["outputs"] == [
        {"name": "mean"}, {"name": "sum"}, {"name": "count"},
        {"name": "gradient", "parameters": {"binary_data": True}},
        {"name": "hessian_diagonal", "parameters": {"binary_data": True}},
    ]  # fmt: skip


# -- a torch loss: tensor options as NumPy arrays ---------------------------------------------

TORCH_SCORES = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]], dtype=np.float32)


def weighted_cross_entropy(scores: np.ndarray, target: list[int], weight: np.ndarray) -> np.ndarray:
    """By hand: weight[t] (logsumexp(x) - x[t]) per sample, in float64."""
    x = scores.astype(np.float64)
    lse = np.log(np.exp(x).sum(axis=1))
    per_sample: np.ndarray = weight[target] * (lse - x[np.arange(len(target)), target])
    return per_sample


@pytest.mark.parametrize("transport", ["json", "binary"])
def test_a_torch_loss_with_a_weight_array(client: Client, transport: Transport) -> None:
    weight = np.array([1.0, 2.0, 3.0])
    result = client.evaluate(
        "torch.nn.CrossEntropyLoss", [0, 2], TORCH_SCORES, options={"weight": weight},
        transport=transport,
    )  # fmt: skip
    # /v2 carries the weight as an input of its own: the binary transport stays binary.
    assert result.transport == transport
    expected = weighted_cross_entropy(TORCH_SCORES, [0, 2], weight)
    assert result.per_sample is not None
    np.testing.assert_allclose(result.per_sample, expected, rtol=1e-6)
    # torch's mean (the default) divides by the targets' weights: 1 + 3.
    assert result.count == 4.0
    assert result.value == pytest.approx(expected.sum() / 4, rel=1e-6)


@pytest.mark.parametrize("transport", ["json", "binary"])
def test_gaussian_nll_with_a_var_array(client: Client, transport: Transport) -> None:
    # 0.5 (log v + (x - t)^2 / v) per element: 0.5 (log 0.5 + 2) and 0.5 log 2.
    result = client.evaluate(
        "torch.gaussian_nll_loss", [[0.0], [1.0]], [[1.0], [1.0]],
        options={"var": np.array([[0.5], [2.0]], dtype=np.float32)}, transport=transport,
    )  # fmt: skip
    assert result.transport == transport and result.per_sample is not None
    expected = [[0.5 * (np.log(0.5) + 2.0)], [0.5 * np.log(2.0)]]
    np.testing.assert_allclose(result.per_sample, expected, rtol=1e-6)


def test_a_stream_with_an_array_option(client: Client) -> None:
    weight = np.array([1.0, 2.0, 3.0])
    chunks = [([0], TORCH_SCORES[:1]), ([2], TORCH_SCORES[1:])]
    totals = client.stream("torch.nn.CrossEntropyLoss", chunks, options={"weight": weight})
    expected = weighted_cross_entropy(TORCH_SCORES, [0, 2], weight)
    assert totals.count == 4.0
    assert totals.mean == pytest.approx(expected.sum() / 4, rel=1e-6)
