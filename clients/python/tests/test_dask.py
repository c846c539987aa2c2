"""lossd_client.dask: blocks of samples evaluated on lossd, totals merged in float64."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import dask
import dask.array as da
import numpy as np
import pytest

from lossd_client import Client
from lossd_client import dask as lossd_dask

from .conftest import SEED_PRED, SEED_TRUE


def seed_arrays(rows: int, cols: int) -> tuple[da.Array, da.Array]:
    return (
        da.from_array(np.array(SEED_TRUE, dtype=np.float32), chunks=(rows, cols)),
        da.from_array(np.array(SEED_PRED, dtype=np.float32), chunks=(rows, cols)),
    )


def test_the_seed_example_one_sample_per_block(url: str) -> None:
    # chunks of (1, 1) split samples: they are rechunked to whole samples, one block each
    y_true, y_pred = seed_arrays(1, 1)
    result = lossd_dask.evaluate(url, "mse", y_true, y_pred)
    assert result.per_sample is None and result.chunks == 2 and result.transport == "dask"
    # per-sample [2/3, 1/3] in float32, each block's sum a float32, added in float64
    assert result.sum == float(np.float32(2 / 3)) + float(np.float32(1 / 3))
    assert result.count == 2 and result.non_finite == 0
    assert result.mean == pytest.approx(0.5, rel=1e-7) and result.value == result.mean
    exact = lossd_dask.evaluate(url, "mse", y_true, y_pred, dtype="float64")
    assert exact.mean == pytest.approx(0.5, rel=1e-15)


def test_per_sample_is_a_lazy_dask_array(url: str) -> None:
    y_true, y_pred = seed_arrays(1, 3)
    lazy = lossd_dask.evaluate(url, "mse", y_true, y_pred, per_sample=True)
    assert isinstance(lazy, da.Array) and lazy.shape == (2,) and lazy.chunks == ((1, 1),)
    np.testing.assert_array_equal(lazy.compute(), np.array([2 / 3, 1 / 3], dtype=np.float32))


def test_weights_reductions_sparse_labels_and_replicas(url: str) -> None:
    y_true, y_pred = seed_arrays(1, 3)
    weighted = lossd_dask.evaluate(
        [url, url], "mse", y_true, y_pred, sample_weight=[3.0, 0.5], reduction="sum",
        dtype="float64",
    )  # fmt: skip
    assert weighted.value == pytest.approx(13 / 6, rel=1e-15)  # 2/3 * 3 + 1/3 * 0.5
    scalar = lossd_dask.evaluate(url, "mse", y_true, y_pred, sample_weight=2.0, dtype="float64")
    assert scalar.mean == pytest.approx(1.0, rel=1e-15)
    none = lossd_dask.evaluate(url, "mse", y_true, y_pred, reduction="none")
    assert none.value is None and none.sum is not None
    # sparse labels: one axis fewer than y_pred; -log(0.8) for the two right, -log(0.1) wrong
    labels = da.from_array(np.array([0, 1, 2]), chunks=1)
    probs = da.from_array(np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.8, 0.1]]), chunks=2)
    result = lossd_dask.evaluate(
        url, "sparse_categorical_crossentropy", labels, probs, dtype="float64"
    )
    expected = (2 * -math.log(0.8) - math.log(0.1)) / 3
    assert result.mean == pytest.approx(expected, rel=1e-12) and result.chunks == 2  # y_pred's


def test_same_numbers_as_one_client_call(url: str) -> None:
    rng = np.random.default_rng(3)
    y_true = rng.normal(size=(1000, 8))
    y_pred = rng.normal(size=(1000, 8))
    with Client(url) as lossd:
        single = lossd.evaluate("log_cosh", y_true, y_pred, dtype="float64")
        single_per_sample = lossd.evaluate("log_cosh", y_true, y_pred).per_sample
    blocks = lossd_dask.evaluate(
        url, "logcosh", da.from_array(y_true, chunks=128), da.from_array(y_pred, chunks=128),
        dtype="float64",
    )  # fmt: skip
    assert blocks.chunks == 8 and blocks.count == single.count == 1000
    assert single.mean is not None and blocks.mean == pytest.approx(single.mean, rel=1e-13)
    lazy = lossd_dask.evaluate(url, "logcosh", y_true, da.from_array(y_pred, chunks=300),
                               per_sample=True)  # fmt: skip
    np.testing.assert_array_equal(lazy.compute(), single_per_sample)


def test_what_cannot_be_split_is_refused(url: str) -> None:
    y_true, y_pred = seed_arrays(1, 3)
    with pytest.raises(ValueError, match="axis"):
        lossd_dask.evaluate(url, "dice", y_true, y_pred)
    with pytest.raises(ValueError, match="1-D"):
        lossd_dask.evaluate(url, "mse", da.zeros(4, chunks=2), da.ones(4, chunks=2))
    with pytest.raises(ValueError, match="samples"):
        lossd_dask.evaluate(url, "mse", da.zeros((3, 2)), da.ones((4, 2)))
    three_d = da.ones((2, 2, 2), chunks=1)
    split = lossd_dask.evaluate(url, "dice", three_d, three_d, options={"axis": [1, 2]})
    assert split.mean == pytest.approx(0.0, abs=1e-6) and split.count == 2


def test_a_dask_array_option_is_split_with_the_samples(url: str) -> None:
    """torch's GaussianNLLLoss with a variance per element: given as a Dask array, each block
    gets its own rows of it. Expected: the loss by hand, 0.5 (log v + (x - t)^2 / v) with
    v = max(var, 1e-6), averaged over every element (torch's mean)."""
    rng = np.random.default_rng(5)
    target, prediction = rng.normal(size=(2, 90, 3))
    var = rng.uniform(0.5, 2.0, size=(90, 3))
    var[0, 0] = 1e-9  # clamped to eps
    v = np.maximum(var, 1e-6)
    expected = float(np.mean(0.5 * (np.log(v) + (prediction - target) ** 2 / v)))
    result = lossd_dask.evaluate(
        url, "torch.nn.GaussianNLLLoss", da.from_array(target, chunks=25),
        da.from_array(prediction, chunks=40), options={"var": da.from_array(var, chunks=7)},
        dtype="float64",
    )  # fmt: skip
    assert result.chunks == 3 and result.count == 270  # y_pred's blocks; torch's divisor
    assert result.mean == pytest.approx(expected, rel=1e-12)
    # Any other option goes whole to every block.
    homoscedastic = lossd_dask.evaluate(
        url, "torch.nn.GaussianNLLLoss", target, da.from_array(prediction, chunks=40),
        options={"var": 2.0}, dtype="float64",
    )  # fmt: skip
    by_hand = np.mean(0.5 * (np.log(2.0) + (prediction - target) ** 2 / 2.0))
    assert homoscedastic.mean == pytest.approx(float(by_hand), rel=1e-12)
    with pytest.raises(ValueError, match="first axis"):
        lossd_dask.evaluate(
            url, "torch.nn.GaussianNLLLoss", target, prediction,
            options={"var": da.from_array(var[:10])},
        )  # fmt: skip


def test_20_million_pairs_on_a_local_cluster(start_server: Callable[..., str]) -> None:
    """At least 20M (y_true, y_pred) pairs generated lazily on two Dask worker processes,
    evaluated by a two-worker lossd; only totals reach the driver."""
    from distributed import Client as DaskClient
    from distributed import LocalCluster

    url = start_server(workers=2)
    samples, width, block = 5_000_000, 4, 500_000  # 20M pairs, 10 blocks of 2M values
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                     dashboard_address=None, memory_limit="1.5GiB") as cluster,
        DaskClient(cluster) as dask_client,
    ):  # fmt: skip
        y_true = da.random.default_rng(11).random((samples, width), chunks=(block, width))
        y_pred = da.random.default_rng(12).random((samples, width), chunks=(block, width))

        def moved_so_far() -> int:
            sent = dask_client.run(lambda dask_worker: dask_worker.transfer_outgoing_bytes_total)
            return sum(sent.values())

        start = time.monotonic()
        result = lossd_dask.evaluate(url, "mse", y_true, y_pred, dtype="float64")
        elapsed = time.monotonic() - start
        moved = moved_so_far()
        # The reference: Dask's own float64 reduction of the same lazy arrays.
        reference = float(((y_true - y_pred) ** 2).mean().compute())
        fast = lossd_dask.evaluate(url, "mse", y_true, y_pred)  # float32 blocks
    print(f"\n20M pairs, 10 blocks, float64: {elapsed:.1f} s; {moved / 1e6:.0f} MB between workers")
    assert result.count == samples and result.chunks == 10 and result.non_finite == 0
    # E[(u - v)^2] for independent uniforms is 1/6; the sample mean is within 1e-3 of it
    assert result.mean == pytest.approx(1 / 6, abs=1e-3)
    assert result.mean == pytest.approx(reference, rel=1e-12)
    assert fast.mean == pytest.approx(reference, rel=1e-6)
    assert elapsed < 90
    # Each task takes one block of y_true and one of y_pred (16 MB each), made where the
    # scheduler put their generation: at most one of the two crosses to the other worker, never
    # the 320 MB of data to one place.
    assert moved <= 10 * block * width * 8


def test_per_sample_is_built_without_asking_the_server() -> None:
    y_true = da.ones((10, 3), chunks=(5, 1))
    with dask.config.set(scheduler="sync"):  # nothing runs: the URL is never contacted
        lazy = lossd_dask.evaluate("http://unused.test", "mse", y_true, y_true, per_sample=True)
    assert lazy.numblocks == (2,) and lazy.chunks == ((5, 5),) and lazy.dtype == np.float32
