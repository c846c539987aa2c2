"""Requests and answers as bytes: what the sync and async clients share (no I/O here).

Each public call is planned as a :class:`Call` (method, path, body, headers, how to parse the
answer); :class:`~lossd_client.Client` and :class:`~lossd_client.AsyncClient` only send it,
retrying what can be retried.
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

import httpx
import numpy as np
import numpy.typing as npt

from ._errors import LossdError, error_from_body
from ._models import BatchResult, Evaluation, FloatArray, LossInfo

T = TypeVar("T")
Transport = Literal["auto", "json", "binary"]
HEADER_LENGTH = "Inference-Header-Content-Length"
RETRY_STATUSES = frozenset({408, 429, 503})
#: Bodies are handed to httpx in slices of this size (no copy of a large body into one buffer).
SLICE_BYTES = 1024 * 1024

_DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("?"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
_DATATYPE_OF = {dtype.newbyteorder("="): name for name, dtype in _DATATYPES.items()}
_FLOAT: dict[str, np.dtype[Any]] = {
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
}

ArrayLike = npt.ArrayLike


@dataclass
class Call(Generic[T]):
    """One HTTP request and how to read its answer. ``chunks`` builds the body afresh for each
    attempt; ``replayable`` says whether a failed attempt may be sent again."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    chunks: Callable[[], Iterable[bytes]] | None = None
    length: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] | None = None
    replayable: bool = True


def loss_path(loss: str, suffix: str = "") -> str:
    return f"/v1/losses/{quote(loss, safe='')}{suffix}"


def _bytes_call(
    method: str, path: str, parse: Callable[[httpx.Response], T], body: bytes, content_type: str
) -> Call[T]:
    return Call(
        method,
        path,
        parse,
        chunks=lambda: _slices(body),
        length=len(body),
        headers={"content-type": content_type},
    )


def _slices(body: bytes) -> Iterator[bytes]:
    if len(body) <= SLICE_BYTES:
        yield body
        return
    view = memoryview(body)
    for start in range(0, len(view), SLICE_BYTES):
        yield bytes(view[start : start + SLICE_BYTES])


# -- tensors ----------------------------------------------------------------------------------


def as_array(value: ArrayLike, name: str) -> npt.NDArray[Any]:
    """``value`` (a NumPy array, nested lists, or anything with ``__array__``) as an array."""
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric (got dtype {array.dtype})")
    return array


def _tolist(array: npt.NDArray[Any]) -> Any:
    if array.ndim == 0:
        return array.item()
    return array.tolist()


def _json_text(document: Any) -> str:
    # NaN and infinity are written as such, so the server answers with its own error for them.
    # NumPy values anywhere (an option's weight array, say) are written as lists and numbers.
    return json.dumps(document, separators=(",", ":"), default=_numpy_to_json)


def _json_bytes(document: Any) -> bytes:
    return _json_text(document).encode()


def _numpy_to_json(value: Any) -> Any:
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


#: Options a torch loss takes as tensors; /v2 carries them as inputs of their own.
TENSOR_OPTIONS = ("weight", "pos_weight", "var")


def _tensor_options(args: EvaluateArgs) -> dict[str, Any]:
    """The options of ``args`` sent as /v2 inputs: a torch loss's tensor options."""
    if not args.loss.lower().startswith("torch."):
        return {}
    options = args.options or {}
    return {key: options[key] for key in TENSOR_OPTIONS if options.get(key) is not None}


# -- evaluate ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvaluateArgs:
    loss: str
    y_true: npt.NDArray[Any]
    y_pred: npt.NDArray[Any]
    sample_weight: npt.NDArray[Any] | None
    options: Mapping[str, Any] | None
    reduction: str | None
    dtype: str
    gradient: bool
    hessian_diagonal: bool
    per_sample: bool


def binary_refusal(args: EvaluateArgs) -> str | None:
    """Why /v2 cannot carry this request (``None``: it can)."""
    tensors = _tensor_options(args)
    for key, value in (args.options or {}).items():
        if key not in tensors and not isinstance(value, bool | int | float | str):
            return f"option {key!r} is not a single number, string or boolean"
    if args.dtype not in _FLOAT:
        return f"dtype {args.dtype!r} is not float32 or float64"
    return None


def choose_transport(args: EvaluateArgs, transport: Transport, threshold: int) -> str:
    """``"json"`` or ``"binary"``: binary when allowed and the tensors hold at least
    ``threshold`` values in all."""
    refusal = binary_refusal(args)
    if transport == "binary":
        if refusal is not None:
            raise ValueError(f"transport='binary' cannot carry this request: {refusal}")
        return "binary"
    if transport == "json" or refusal is not None:
        return "json"
    if transport != "auto":
        raise ValueError(f"transport must be 'auto', 'json' or 'binary', not {transport!r}")
    return "binary" if args.y_true.size + args.y_pred.size >= threshold else "json"


def evaluate_json(args: EvaluateArgs) -> Call[Evaluation]:
    """``POST /v1/losses/{name}``; ``gradient`` and ``hessian_diagonal`` are sent only when
    true (a server without derivatives then accepts the request unchanged)."""
    body: dict[str, Any] = {"y_true": _tolist(args.y_true), "y_pred": _tolist(args.y_pred)}
    if args.sample_weight is not None:
        body["sample_weight"] = _tolist(args.sample_weight)
    if args.options:
        body["options"] = dict(args.options)
    if args.reduction is not None:
        body["reduction"] = args.reduction
    body["dtype"] = args.dtype
    if args.gradient:
        body["gradient"] = True
    if args.hessian_diagonal:
        body["hessian_diagonal"] = True

    def parse(response: httpx.Response) -> Evaluation:
        result = evaluation_from_json(response.json(), "json")
        return result if args.per_sample else _without_per_sample(result)

    return _bytes_call("POST", loss_path(args.loss), parse, _json_bytes(body), "application/json")


def _without_per_sample(result: Evaluation) -> Evaluation:
    from dataclasses import replace

    return replace(result, per_sample=None)


def _tensor_bytes(array: npt.NDArray[Any], float_dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    """Float inputs in the computation dtype; integer and boolean labels as they are."""
    if array.dtype.kind == "f":
        array = array.astype(float_dtype, copy=False)
    # np.asarray(order="C"), not np.ascontiguousarray: that makes a 0-d weight 1-d.
    return np.asarray(array, order="C").astype(array.dtype.newbyteorder("<"), copy=False)


def evaluate_binary(args: EvaluateArgs) -> Call[Evaluation]:
    """``POST /v2/models/{name}/infer`` with Triton's binary tensor extension both ways."""
    float_dtype = _FLOAT[args.dtype]
    inputs: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    named = [("y_true", args.y_true), ("y_pred", args.y_pred)]
    if args.sample_weight is not None:
        named.append(("sample_weight", args.sample_weight))
    tensors = _tensor_options(args)
    named.extend((key, as_array(value, key)) for key, value in tensors.items())
    for name, array in named:
        tensor = _tensor_bytes(array, float_dtype)
        blob = tensor.tobytes()
        inputs.append(
            {
                "name": name,
                "shape": list(tensor.shape),
                "datatype": _DATATYPE_OF[tensor.dtype.newbyteorder("=")],
                "parameters": {"binary_data_size": len(blob)},
            }
        )
        blobs.append(blob)
    parameters = {k: v for k, v in (args.options or {}).items() if k not in tensors}
    parameters["dtype"] = args.dtype
    parameters["binary_data_output"] = True
    if args.reduction is not None:
        parameters["reduction"] = args.reduction
    outputs: list[dict[str, Any]] = [
        {"name": name}
        for name in (["per_sample"] if args.per_sample else []) + ["mean", "sum", "count"]
    ]
    # Derivatives are sent only when named; each asked for in binary explicitly.
    for name, wanted in (("gradient", args.gradient), ("hessian_diagonal", args.hessian_diagonal)):
        if wanted:
            outputs.append({"name": name, "parameters": {"binary_data": True}})
    header = _json_bytes({"inputs": inputs, "outputs": outputs, "parameters": parameters})
    pieces = [header, *blobs]

    def chunks() -> Iterator[bytes]:
        for piece in pieces:
            yield from _slices(piece)

    return Call(
        "POST",
        f"/v2/models/{quote(args.loss, safe='')}/infer",
        parse_binary,
        chunks=chunks,
        length=sum(len(p) for p in pieces),
        headers={"content-type": "application/octet-stream", HEADER_LENGTH: str(len(header))},
    )


def parse_binary(response: httpx.Response) -> Evaluation:
    """An /v2 infer answer (binary or JSON outputs) as an :class:`Evaluation`."""
    content = response.content
    length = response.headers.get(HEADER_LENGTH)
    header_end = int(length) if length is not None else len(content)
    header = json.loads(content[:header_end])
    offset = header_end
    arrays: dict[str, npt.NDArray[Any]] = {}
    for out in header["outputs"]:
        dtype = _DATATYPES[out["datatype"]]
        size = (out.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            array = np.frombuffer(content, dtype=dtype, count=size // dtype.itemsize, offset=offset)
            offset += size
        else:
            array = np.array(out["data"], dtype=dtype)
        arrays[out["name"]] = array.reshape(out["shape"]).astype(dtype.newbyteorder("="))
    params = header.get("parameters") or {}
    reduction = str(params.get("reduction", "sum_over_batch_size"))
    mean = float(arrays["mean"][0])
    total = float(arrays["sum"][0])
    per_sample = arrays.get("per_sample")
    # gradient and hessian_diagonal: shaped like y_pred, in the computation dtype, when asked.
    return Evaluation(
        loss=str(header.get("model_name", "")),
        per_sample=per_sample,
        mean=None if math.isnan(mean) else mean,
        sum=None if math.isnan(total) else total,
        count=float(arrays["count"][0]),
        value=_value(reduction, mean, total),
        reduction=reduction,
        dtype=str(params.get("dtype", "float32")),
        non_finite=int(params.get("non_finite", 0)),
        gradient=arrays.get("gradient"),
        hessian_diagonal=arrays.get("hessian_diagonal"),
        transport="binary",
        gradient_non_finite=int(params.get("gradient_non_finite", 0)),
        hessian_diagonal_non_finite=int(params.get("hessian_diagonal_non_finite", 0)),
    )


def _value(reduction: str, mean: float | None, total: float | None) -> float | None:
    if reduction == "none":
        return None
    value = total if reduction == "sum" else mean
    return None if value is None or math.isnan(value) else value


def _number(value: Any, dtype: str) -> float | None:
    """A JSON number as the float the server computed: float32 results are rounded to float32
    (JSON prints them shortest), so both transports give the same Python float."""
    if value is None:
        return None
    return float(np.float32(value)) if dtype == "float32" else float(value)


def _tensor(values: Any, shape: Sequence[int], dtype: str) -> FloatArray:
    # None (a non-finite value sent as null) becomes NaN.
    array: FloatArray = np.array(values, dtype=_FLOAT.get(dtype, np.dtype(np.float64)))
    return array.reshape(tuple(shape))


def evaluation_from_json(body: Mapping[str, Any], transport: str) -> Evaluation:
    """A /v1 evaluation (``POST /v1/losses/{name}``, a batch result, a stream's totals)."""
    dtype = str(body.get("dtype", "float32"))
    per_sample = body.get("per_sample")
    shape = body.get("shape")
    y_pred_shape = body.get("y_pred_shape")
    derivatives: dict[str, FloatArray | None] = {}
    for key in ("gradient", "hessian_diagonal"):
        values = body.get(key)
        derivatives[key] = (
            None
            if values is None
            else _tensor(values, y_pred_shape if y_pred_shape is not None else [-1], dtype)
        )
    return Evaluation(
        loss=str(body.get("loss", "")),
        per_sample=None
        if per_sample is None
        else _tensor(per_sample, shape if shape is not None else [-1], dtype),
        mean=_number(body.get("mean"), dtype),
        sum=_number(body.get("sum"), dtype),
        count=float(body.get("count", 0)),
        value=_number(body.get("value"), dtype),
        reduction=str(body.get("reduction", "sum_over_batch_size")),
        dtype=dtype,
        non_finite=int(body.get("non_finite", 0)),
        gradient=derivatives["gradient"],
        hessian_diagonal=derivatives["hessian_diagonal"],
        chunks=body.get("chunks"),
        transport=transport,
        gradient_non_finite=int(body.get("gradient_non_finite", 0)),
        hessian_diagonal_non_finite=int(body.get("hessian_diagonal_non_finite", 0)),
    )


# -- catalogue, batch, stream -----------------------------------------------------------------


def losses_call() -> Call[list[LossInfo]]:
    def parse(response: httpx.Response) -> list[LossInfo]:
        return [LossInfo.from_json(entry) for entry in response.json()["losses"]]

    return Call("GET", "/v1/losses", parse)


def loss_call(name: str) -> Call[LossInfo]:
    return Call("GET", loss_path(name), lambda response: LossInfo.from_json(response.json()))


_ITEM_KEYS = frozenset(
    {
        "id",
        "loss",
        "y_true",
        "y_pred",
        "sample_weight",
        "options",
        "reduction",
        "dtype",
        "gradient",
        "hessian_diagonal",
    }
)


def batch_call(items: Iterable[Mapping[str, Any]]) -> Call[list[BatchResult]]:
    """``POST /v1/batch``: each item a mapping with ``loss`` (a name, or a list of names and
    ``{"name", "options"}`` objects), ``y_true``, ``y_pred`` and optionally ``id``,
    ``sample_weight``, ``options``, ``reduction``, ``dtype``, ``gradient``,
    ``hessian_diagonal``."""
    encoded: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        unknown = set(item) - _ITEM_KEYS
        if unknown:
            raise TypeError(f"batch item {index} has unknown keys {sorted(unknown)}")
        entry: dict[str, Any] = {}
        for key, value in item.items():
            if key in ("y_true", "y_pred", "sample_weight") and value is not None:
                entry[key] = _tolist(as_array(value, key))
            elif key in ("gradient", "hessian_diagonal"):
                if value:
                    entry[key] = True
            elif value is not None:
                entry[key] = value
        encoded.append(entry)

    def parse(response: httpx.Response) -> list[BatchResult]:
        request_id = response.headers.get("x-request-id")
        results: list[BatchResult] = []
        for result in response.json()["results"]:
            status = int(result["status"])
            error = result.get("error")
            results.append(
                BatchResult(
                    id=result.get("id"),
                    status=status,
                    evaluations=tuple(
                        evaluation_from_json(r, "json") for r in result.get("results") or ()
                    ),
                    error=None if error is None else error_from_body(status, error, request_id),
                )
            )
        return results

    return _bytes_call(
        "POST", "/v1/batch", parse, _json_bytes({"items": encoded}), "application/json"
    )


Chunk = tuple[ArrayLike, ArrayLike] | tuple[ArrayLike, ArrayLike, ArrayLike | None]


def stream_call(
    loss: str,
    chunks: Iterable[Chunk],
    *,
    options: Mapping[str, Any] | None,
    reduction: str | None,
    dtype: str,
    per_sample: bool,
) -> Call[Evaluation]:
    """``POST /v1/losses/{name}/stream``: one NDJSON line per ``(y_true, y_pred[,
    sample_weight])`` chunk, sent as it is produced. Replayable only when ``chunks`` is a
    sequence (a list, a tuple): a one-shot iterator cannot be sent twice."""
    replayable = isinstance(chunks, Sequence)

    def lines() -> Iterator[bytes]:
        for index, chunk in enumerate(chunks):
            if len(chunk) not in (2, 3):
                raise TypeError(f"chunk {index}: expected (y_true, y_pred[, sample_weight])")
            line: dict[str, Any] = {
                "y_true": _tolist(as_array(chunk[0], "y_true")),
                "y_pred": _tolist(as_array(chunk[1], "y_pred")),
            }
            if len(chunk) == 3 and chunk[2] is not None:
                line["sample_weight"] = _tolist(as_array(chunk[2], "sample_weight"))
            yield _json_bytes(line) + b"\n"

    params: dict[str, str] = {"dtype": dtype}
    if reduction is not None:
        params["reduction"] = reduction
    if options:
        params["options"] = _json_text(dict(options))
    if per_sample:
        params["per_sample"] = "true"
    return Call(
        "POST",
        loss_path(loss, "/stream"),
        lambda response: evaluation_from_json(response.json(), "stream"),
        chunks=lines,
        headers={"content-type": "application/x-ndjson"},
        params=params,
        replayable=replayable,
    )


# -- errors and retries -----------------------------------------------------------------------


def error_from_response(response: httpx.Response) -> LossdError:
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return error_from_body(response.status_code, body, response.headers.get("x-request-id"))


def retry_after(response: httpx.Response, attempt: int, cap: float, backoff: float) -> float:
    """Seconds to wait before attempt ``attempt + 1``: the answer's ``Retry-After`` (seconds or
    an HTTP date) if any, else ``backoff * 2**attempt``; never more than ``cap``."""
    header = response.headers.get("retry-after")
    wait: float | None = None
    if header is not None:
        try:
            wait = float(header)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(header)
            except (TypeError, ValueError):
                wait = None
            else:
                wait = when.timestamp() - time.time()
    if wait is None or not math.isfinite(wait):
        wait = backoff * 2**attempt
    return min(max(wait, 0.0), cap)


def connection_wait(attempt: int, cap: float, backoff: float) -> float:
    return float(min(backoff * 2**attempt, cap))
