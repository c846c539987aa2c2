"""Evaluate a loss over Dask arrays on a lossd fleet (extra ``lossd-client[dask]``).

Each block of samples is sent, from the Dask worker that holds it, to lossd through
:class:`~lossd_client.Client` (binary /v2 transport); only its totals (sum, count, non-finite
count) come back, and the driver adds them in float64 (``math.fsum``)::

    import dask.array as da
    from lossd_client import dask as lossd_dask

    rng = da.random.default_rng(0)
    y_true = rng.random((5_000_000, 4), chunks=(500_000, 4))
    y_pred = rng.random((5_000_000, 4), chunks=(500_000, 4))
    result = lossd_dask.evaluate("http://lossd:8000", "mse", y_true, y_pred)
    result.mean, result.count          # (0.1666..., 5000000.0)

Precision: with ``dtype="float64"`` the merged mean equals a single-machine evaluation to
float64 rounding; with ``float32`` each block's sum is a float32 (rounded once per block) and
those are added in float64, so the mean is exact to the float32 rounding of each block's sum.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

try:
    import dask.array as da
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("lossd_client.dask needs Dask: pip install 'lossd-client[dask]'") from exc

from ._client import DEFAULT_RETRIES, DEFAULT_TIMEOUT, Client
from ._models import Evaluation
from ._wire import Transport

__all__ = ["evaluate"]

# One Client per worker process and settings: keep-alive connections shared by the tasks.
_clients: dict[tuple[Any, ...], Client] = {}
_lock = threading.Lock()
_turn = itertools.count()


def _client(url: str, api_key: str | None, timeout: float | None, retries: int) -> Client:
    key = (url, api_key, timeout, retries)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = Client(url, api_key, timeout, retries)
        return client


def _pick(urls: Sequence[str]) -> str:
    """The next replica, round-robin within this worker process."""
    return urls[next(_turn) % len(urls)]


def _block(
    y_true: npt.NDArray[Any],
    y_pred: npt.NDArray[Any],
    sample_weight: npt.NDArray[Any] | None,
    *option_blocks: npt.NDArray[Any],
    settings: Mapping[str, Any],
    totals: bool,
) -> npt.NDArray[Any]:
    client = _client(
        _pick(settings["urls"]), settings["api_key"], settings["timeout"], settings["retries"]
    )
    options = settings["options"]
    if option_blocks:  # this block's rows of the options split with the samples
        split = dict(zip(settings["split_options"], option_blocks, strict=True))
        options = {**(options or {}), **split}
    result = client.evaluate(
        settings["loss"],
        y_true,
        y_pred,
        sample_weight if sample_weight is not None else settings["scalar_weight"],
        options=options,
        reduction=settings["reduction"],
        dtype=settings["dtype"],
        per_sample=not totals,
        transport=settings["transport"],
    )
    if totals:
        block_sum = math.nan if result.sum is None else result.sum
        return np.array([[block_sum, result.count, result.non_finite]], dtype=np.float64)
    per_sample = result.per_sample
    assert per_sample is not None
    expected = y_pred.shape[:-1]
    if per_sample.shape != expected:
        raise ValueError(
            f"{result.loss}: a block of shape {y_pred.shape} gave per-sample values of shape "
            f"{per_sample.shape}, not {expected}; lossd_client.dask returns per-sample values "
            "of losses that reduce the last axis only"
        )
    return per_sample


def _as_dask(value: Any) -> Any:
    return value if isinstance(value, da.Array) else da.asarray(value)


def evaluate(
    url: str | Sequence[str],
    loss: str,
    y_true: Any,
    y_pred: Any,
    sample_weight: Any = None,
    options: Mapping[str, Any] | None = None,
    reduction: str | None = None,
    dtype: str = "float32",
    *,
    per_sample: bool = False,
    api_key: str | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    transport: Transport = "auto",
) -> Any:
    """Evaluate ``loss`` over Dask arrays (NumPy arrays are wrapped), block by block on lossd.

    ``url``: one lossd, or a list of replicas (each worker takes them in turn). The sample axis
    is the first: arrays are rechunked so that a block holds whole samples (one chunk along
    every other axis), y_true and sample_weight aligned to y_pred's blocks.

    Returns, eagerly, an :class:`~lossd_client.Evaluation` without ``per_sample``: ``mean``,
    ``sum``, ``count``, ``non_finite`` (and ``value`` for ``reduction``) merged in float64 as
    ``Σ sum / Σ count``. ``per_sample=True`` returns instead a lazy Dask array of the per-sample
    losses (for losses that reduce the last axis), one task per block.

    ``options`` go whole to every block, but for an option given as a Dask array: that one is
    split with the samples (its first axis, which must have as many rows as ``y_pred``), as a
    torch GaussianNLLLoss's per-element ``var`` must be.

    Losses that reduce across samples cannot be split: ``dice`` and ``tversky`` without an
    ``axis`` option (one value for the whole batch) raise ``ValueError``.
    """
    urls = [url] if isinstance(url, str) else list(url)
    if not urls:
        raise ValueError("url: give at least one lossd URL")
    if loss.lower() in ("dice", "tversky", "loss_dice", "loss_tversky") and (
        options is None or options.get("axis") is None
    ):
        raise ValueError(
            f"{loss} without 'axis' reduces the whole batch to one value, which cannot be "
            "split across blocks; give options={'axis': [1, ...]} for one value per sample"
        )
    y_pred = _as_dask(y_pred)
    y_true = _as_dask(y_true)
    if y_pred.ndim < 2:
        raise ValueError(
            "a 1-D y_pred is one sample (lossd's rule); give a (samples, ...) array to split"
        )
    if y_true.shape[0] != y_pred.shape[0]:
        raise ValueError(
            f"y_true has {y_true.shape[0]} samples and y_pred {y_pred.shape[0]}: they must match"
        )
    # Whole samples per block, y_true's blocks aligned with y_pred's.
    y_pred = y_pred.rechunk({axis: -1 for axis in range(1, y_pred.ndim)})
    rows = y_pred.chunks[0]
    y_true = y_true.rechunk({0: rows, **{axis: -1 for axis in range(1, y_true.ndim)}})

    scalar_weight: float | None = None
    weight = None
    if sample_weight is not None:
        if np.ndim(sample_weight) == 0 and not isinstance(sample_weight, da.Array):
            scalar_weight = float(sample_weight)
        else:
            weight = _as_dask(sample_weight)
            weight = weight.rechunk({0: rows, **{axis: -1 for axis in range(1, weight.ndim)}})

    split = {name: opt for name, opt in (options or {}).items() if isinstance(opt, da.Array)}
    for name, array in split.items():
        if array.ndim == 0 or array.shape[0] != y_pred.shape[0]:
            raise ValueError(
                f"options[{name!r}] is a Dask array, so it is split with the samples: its first "
                f"axis must have y_pred's {y_pred.shape[0]} rows, not shape {array.shape}; give "
                "a NumPy array to send it whole to every block"
            )
        split[name] = array.rechunk({0: rows, **{axis: -1 for axis in range(1, array.ndim)}})
    whole = {name: opt for name, opt in (options or {}).items() if name not in split}

    settings = {
        "urls": urls,
        "loss": loss,
        "options": whole or None,
        "split_options": tuple(split),
        "reduction": reduction,
        "dtype": dtype,
        "api_key": api_key,
        "timeout": timeout,
        "retries": retries,
        "transport": transport,
        "scalar_weight": scalar_weight,
    }
    # Index names for blockwise: "a" is the sample axis, blocked alike in every argument; the
    # other axes are one chunk each, y_pred's kept in the per-sample output but its last,
    # y_true's, the weight's and the split options' contracted (their single chunks passed
    # whole).
    pred_ind = ("a", *(f"p{i}" for i in range(1, y_pred.ndim)))
    true_ind = ("a", *(f"t{i}" for i in range(1, y_true.ndim)))
    arguments: list[Any] = [y_true, true_ind, y_pred, pred_ind]
    if weight is not None:
        arguments += [weight, ("a", *(f"w{i}" for i in range(1, weight.ndim)))]
    else:
        arguments += [None, None]
    for number, array in enumerate(split.values()):
        arguments += [array, ("a", *(f"o{number}_{i}" for i in range(1, array.ndim)))]

    if per_sample:
        out_dtype = np.float64 if dtype == "float64" else np.float32
        return da.blockwise(
            _block,
            pred_ind[:-1],
            *arguments,
            dtype=out_dtype,
            concatenate=True,
            settings=settings,
            totals=False,
            meta=np.empty((0,) * (y_pred.ndim - 1), dtype=out_dtype),
        )
    parts = da.blockwise(
        _block,
        ("a", "z"),
        *arguments,
        dtype=np.float64,
        concatenate=True,
        new_axes={"z": 3},
        adjust_chunks={"a": 1},
        settings=settings,
        totals=True,
        meta=np.empty((0, 3), dtype=np.float64),
    ).compute()
    total = math.fsum(parts[:, 0])
    count = math.fsum(parts[:, 1])
    non_finite = int(parts[:, 2].sum())
    finite = math.isfinite(total)
    mean = total / count if finite and count else None
    reduction_used = reduction or "sum_over_batch_size"
    value = None if reduction_used == "none" else (total if reduction_used == "sum" else mean)
    return Evaluation(
        loss=loss,
        per_sample=None,
        mean=mean,
        sum=total if finite else None,
        count=count,
        value=value if value is None or math.isfinite(value) else None,
        reduction=reduction_used,
        dtype=dtype,
        non_finite=non_finite,
        chunks=len(rows),
        transport="dask",
    )
