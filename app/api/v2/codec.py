"""The Open Inference Protocol's (KServe v2) codec, with Triton's binary tensor extension:
request bytes to NumPy arrays, arrays to response bytes. No HTTP: the routes
(:mod:`app.api.v2.routes`) hand it bodies and headers' values; errors are :class:`ProtocolError`.

The binary extension (Triton's ``binary_tensor_data``): a request body is a JSON header of
``Inference-Header-Content-Length`` bytes followed by the raw little-endian bytes of every input
whose ``parameters.binary_data_size`` is set, in input order. Responses use the same layout when
an output is asked for as binary (request parameter ``binary_data_output`` or the output's
``parameters.binary_data``). Arrays are decoded with ``np.frombuffer`` (no copy) and encoded with
``ndarray.tobytes()``; JSON data goes through one ``np.asarray`` call, never per-element loops.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from app.api.inflate import ENCODINGS, InflateError, Inflater
from app.api.json_tensors import Path, TensorText, parse_text, split_tensors
from app.api.json_tensors import decode_tensor as decode_json_tensor
from app.api.v2.types import InferenceRequest, ProtocolError, RequestInput, RequestOutput
from app.errors import V2, validation_report
from app.losses import MAX_RANK
from app.results import AnswerTooLargeError, dumps

Array = npt.NDArray[Any]

#: The protocol's datatypes lossd accepts, as little-endian NumPy dtypes. BYTES and BF16 are not
#: numbers NumPy can compute with, so they are refused.
DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
_DATATYPE_OF = {dtype.newbyteorder("="): name for name, dtype in DATATYPES.items()}

HEADER_LENGTH = "Inference-Header-Content-Length"
BINARY_CONTENT_TYPE = "application/octet-stream"
JSON_CONTENT_TYPE = "application/json"


# --- Request bytes -> arrays ----------------------------------------------------------------


def split_body(
    body: bytes | bytearray, header_length: str | None
) -> tuple[bytes | bytearray, memoryview]:
    """Split ``body`` into its JSON header and a zero-copy view of the binary data after it.

    ``header_length`` is the ``Inference-Header-Content-Length`` header (None: all JSON, and
    the body is returned as is).
    """
    view = memoryview(body)
    if header_length is None:
        return body, view[:0]
    text = header_length.strip()
    if not text.isdigit() or not text.isascii():
        raise ProtocolError(
            f"{HEADER_LENGTH} must be a non-negative integer, got {header_length!r}"
        )
    length = int(text)
    if length > len(body):
        raise ProtocolError(
            f"{HEADER_LENGTH} is {length} bytes but the request body has only {len(body)}"
        )
    # Only the (small) JSON header is copied: the parser needs bytes.
    return body[:length], view[length:]


def is_input_data(path: Path) -> bool:
    """Whether ``path`` is an input's JSON ``data`` (``inputs/<i>/data``)."""
    return len(path) == 3 and path[0] == "inputs" and path[2] == "data"


def parse_request(
    header: bytes | bytearray, *, split: bool = True
) -> tuple[InferenceRequest, dict[int, TensorText]]:
    """Parse and validate the JSON request, and where each input's JSON ``data`` lies in it.

    A large header has its inputs' ``data`` cut out (``app.api.json_tensors``): Pydantic
    validates the rest, and :func:`decode_inputs` decodes the data straight into arrays. A
    header that cannot be split so, or whose rest is invalid, is parsed whole, which words the
    error (in Rust either way: no stdlib ``json``, no Python-mode pass).
    """
    parts = split_tensors(header, is_input_data) if split else None
    if parts is not None:
        try:
            request = InferenceRequest.model_validate_json(parts.envelope)
            texts = parts.under("inputs")
            return request, {i: text for i, text in texts.items() if isinstance(i, int)}
        except ValidationError:
            pass
    try:
        return InferenceRequest.model_validate_json(header), {}
    except ValidationError as exc:
        raise describe_validation_error(exc) from None


def describe_validation_error(exc: ValidationError) -> ProtocolError:
    """Pydantic's errors in the protocol's words (:func:`app.errors.validation_report`):
    ``inputs[0].shape: Field required``, the first few joined by ``;``."""
    errors = exc.errors(include_url=False, include_context=False)
    found = validation_report(errors, V2, fields=_FIELDS)
    return ProtocolError(found.detail, status=found.status)


#: The names a request and its inputs take, for the hint on a camelCase name.
_FIELDS = frozenset({*InferenceRequest.model_fields, *RequestInput.model_fields})


def decode_inputs(
    inputs: Sequence[RequestInput],
    binary: memoryview,
    *,
    max_elements: int,
    texts: Mapping[int, TensorText] | None = None,
) -> dict[str, Array]:
    """Decode every input to an array of its datatype and shape, keyed by name.

    Binary inputs take their bytes from ``binary`` in input order; every byte must be claimed.
    JSON ``data`` cut out of the request is in ``texts`` (by input position). Raises
    :class:`ProtocolError` for duplicate names, bad sizes, shapes or datatypes, and
    :class:`~app.api.json_tensors.ReparseBody` when a ``data`` text turns out not to be JSON.
    """
    arrays: dict[str, Array] = {}
    offset = 0
    texts = texts or {}
    for position, tensor in enumerate(inputs):
        if tensor.name in arrays:
            raise ProtocolError(f"input {tensor.name!r} appears more than once")
        size = binary_data_size(tensor)
        raw = None
        if size is not None:
            if size > len(binary) - offset:
                raise ProtocolError(
                    f"input {tensor.name!r} declares {size} bytes of binary data but only "
                    f"{len(binary) - offset} remain in the request body"
                )
            raw = binary[offset : offset + size]
            offset += size
        arrays[tensor.name] = decode_tensor(
            tensor, raw, max_elements=max_elements, text=texts.get(position)
        )
    if offset != len(binary):
        raise ProtocolError(
            f"the request body has {len(binary)} bytes after the JSON header but the inputs' "
            f"binary_data_size values add up to {offset}"
        )
    return arrays


def binary_data_size(tensor: RequestInput) -> int | None:
    """The input's ``parameters.binary_data_size`` in bytes (None when its data is JSON)."""
    params = tensor.parameters or {}
    for key in params:
        if key.startswith("shared_memory"):
            raise ProtocolError(
                f"input {tensor.name!r}: shared memory is not supported; send the data in the "
                "request (JSON or binary)"
            )
        if key != "binary_data_size":
            raise ProtocolError(f"input {tensor.name!r} has an unknown parameter {key!r}")
    size = params.get("binary_data_size")
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ProtocolError(
            f"input {tensor.name!r}: binary_data_size must be a non-negative integer, got {size!r}"
        )
    return size


def decode_tensor(
    tensor: RequestInput,
    raw: memoryview | None,
    *,
    max_elements: int,
    text: TensorText | None = None,
) -> Array:
    """One input as an array of its declared datatype and shape.

    ``raw`` holds its binary bytes (little-endian, row-major); None means JSON ``data``, whose
    text is ``text`` when it was cut out of the request.
    """
    name = tensor.name
    dtype = DATATYPES.get(tensor.datatype)
    if dtype is None:
        raise ProtocolError(
            f"input {name!r} has datatype {tensor.datatype!r}; supported: {', '.join(DATATYPES)}"
        )
    check_shape(tensor, max_elements)
    count = math.prod(tensor.shape)
    if count > max_elements:
        raise ProtocolError(
            f"input {name!r} has {count} elements (shape {tensor.shape}); the limit is "
            f"{max_elements}"
        )
    if raw is not None:
        if tensor.data is not None:
            raise ProtocolError(f"input {name!r} has both JSON data and binary_data_size")
        if len(raw) != count * dtype.itemsize:
            raise ProtocolError(
                f"input {name!r}: binary_data_size is {len(raw)} bytes but shape "
                f"{tensor.shape} of {tensor.datatype} needs {count * dtype.itemsize}"
            )
        return np.frombuffer(raw, dtype=dtype, count=count).reshape(tensor.shape)
    if tensor.data is None:
        raise ProtocolError(
            f"input {name!r} has no data: give 'data', or 'parameters.binary_data_size' with "
            f"the binary data after the JSON header"
        )
    if text is not None:
        if dtype.kind == "f":  # floats straight from the text; other datatypes are rare in JSON
            array = decode_json_tensor(text, dtype)
            if array is not None and array.size == count:
                return array.reshape(tensor.shape)
        tensor.data = parse_text(text)  # declined: the exact checks below word the error
    return _from_json(tensor, dtype, count)


def check_shape(tensor: RequestInput, max_elements: int) -> None:
    """Refuse a shape no array can have: more axes than NumPy holds (:data:`MAX_RANK`), or an
    axis longer than the element limit (``[0, 10**20]`` has no elements, yet no array has that
    shape either). Checked before any array is made, so NumPy never raises on it."""
    name, shape = tensor.name, tensor.shape
    if len(shape) > MAX_RANK:
        raise ProtocolError(
            f"input {name!r}: shape has {len(shape)} axes; at most {MAX_RANK} are supported"
        )
    for axis, length in enumerate(shape):
        if length > max_elements:
            raise ProtocolError(
                f"input {name!r}: axis {axis} of shape {shape} has length {length}, more than "
                f"the element limit of {max_elements}"
            )


def _from_json(tensor: RequestInput, dtype: np.dtype[Any], count: int) -> Array:
    """The JSON ``data`` of ``tensor`` as an array of ``dtype`` in ``tensor.shape``.

    The one place JSON tensor data becomes an array (a seam: a faster decoder replaces this body,
    not its callers). ``count`` is the number of elements the shape declares, within the element
    limit. Flat or nested (row-major) data is accepted; a :class:`ProtocolError` refuses ragged
    data, a count that differs from the shape's, values of the wrong kind for the datatype
    (numbers for floats, integers for integer types, true/false for BOOL) and integers out of the
    datatype's range (messages pinned by tests/api/v2/test_codec.py).
    """
    name, datatype = tensor.name, tensor.datatype
    try:
        array = np.asarray(tensor.data)
    except (ValueError, OverflowError):  # NumPy refuses ragged nesting outright
        raise ProtocolError(
            f"input {name!r}: data is ragged (nested lists of different lengths)"
        ) from None
    if array.size != count:
        raise ProtocolError(
            f"input {name!r}: shape {tensor.shape} needs {count} elements but data has {array.size}"
        )
    if count == 0:
        return np.empty(tensor.shape, dtype=dtype)
    kind = array.dtype.kind
    if dtype.kind == "f":
        ok, wanted = kind in "iuf", "numbers"
    elif dtype.kind == "b":
        ok, wanted = kind == "b", "true or false"
    else:
        ok, wanted = kind in "iu", "integers"
    if not ok:
        raise ProtocolError(
            f"input {name!r}: {datatype} data must be {wanted}, found {_kind_name(array)}"
        )
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        low, high = array.min(), array.max()
        if low < info.min or high > info.max:
            bad = low if low < info.min else high
            raise ProtocolError(
                f"input {name!r}: {bad} is out of range for {datatype} [{info.min}, {info.max}]"
            )
    return array.astype(dtype, copy=False).reshape(tensor.shape)


def _kind_name(array: Array) -> str:
    return {
        "b": "true/false",
        "i": "integers",
        "u": "integers",
        "f": "non-integer numbers",
        "U": "strings",
        "S": "strings",
    }.get(array.dtype.kind, "null, objects or numbers too large to represent")


# --- Arrays -> response bytes ---------------------------------------------------------------


@dataclass(frozen=True)
class OutputTensor:
    """One output to send: its array and whether it goes as binary."""

    name: str
    array: Array
    binary: bool


@dataclass(frozen=True)
class EncodedResponse:
    """Response bytes; ``header_length`` is set (JSON header size) when outputs are binary."""

    body: bytes
    header_length: int | None

    @property
    def content_type(self) -> str:
        """``application/octet-stream`` with binary outputs, else ``application/json``."""
        return JSON_CONTENT_TYPE if self.header_length is None else BINARY_CONTENT_TYPE


def requested_outputs(
    request: InferenceRequest, available: Sequence[str], default: Sequence[str] | None = None
) -> list[tuple[str, bool]]:
    """The outputs to send, in order, each with whether it goes as binary.

    No ``outputs`` list means all of ``default`` (all of ``available`` when not given): outputs
    outside it are sent only when named. ``binary_data_output`` (request parameter) sets the
    default; an output's ``parameters.binary_data`` overrides it.
    """
    params = request.parameters or {}
    default_binary = params.get("binary_data_output", False)
    if not isinstance(default_binary, bool):
        raise ProtocolError(
            f"parameter 'binary_data_output' must be true or false, got {default_binary!r}"
        )
    if request.outputs is None:
        return [(name, default_binary) for name in (available if default is None else default)]
    chosen: list[tuple[str, bool]] = []
    for output in request.outputs:
        if output.name not in available:
            raise ProtocolError(f"unknown output {output.name!r}; outputs: {', '.join(available)}")
        if any(output.name == name for name, _ in chosen):
            raise ProtocolError(f"output {output.name!r} is requested more than once")
        chosen.append((output.name, _output_binary(output, default_binary)))
    return chosen


def _output_binary(output: RequestOutput, default: bool) -> bool:
    params = output.parameters or {}
    for key in params:
        if key == "classification":
            raise ProtocolError(f"output {output.name!r}: classification is not supported")
        if key.startswith("shared_memory"):
            raise ProtocolError(f"output {output.name!r}: shared memory is not supported")
        if key != "binary_data":
            raise ProtocolError(f"output {output.name!r} has an unknown parameter {key!r}")
    binary = params.get("binary_data", default)
    if not isinstance(binary, bool):
        raise ProtocolError(
            f"output {output.name!r}: binary_data must be true or false, got {binary!r}"
        )
    return binary


def datatype_of(array: Array) -> str:
    """The protocol datatype of ``array`` (``FP32`` for float32, ...)."""
    return _DATATYPE_OF[array.dtype.newbyteorder("=")]


def encode_response(
    header: Mapping[str, Any], outputs: Sequence[OutputTensor], limit: int | None = None
) -> EncodedResponse:
    """Serialise ``header`` (model_name, id, ...) plus ``outputs`` into the response body.

    JSON outputs carry flat ``data`` (NaN and infinity become null, as JSON has neither);
    binary outputs carry ``parameters.binary_data_size`` and their little-endian bytes follow
    the JSON header in output order. A JSON document over ``limit`` bytes is refused (400) by
    the one serializer, :func:`app.results.dumps`; binary outputs, 4 or 8 bytes a value, are
    bounded by the request's tensors.
    """
    entries: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for out in outputs:
        array = out.array
        entry: dict[str, Any] = {
            "name": out.name,
            "datatype": datatype_of(array),
            "shape": list(array.shape),
        }
        if out.binary:
            blob = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            # orjson writes a C-contiguous array straight from its buffer: no tolist().
            entry["data"] = np.ascontiguousarray(array).reshape(-1)
        entries.append(entry)
    try:
        document = dumps({**header, "outputs": entries}, limit)
    except AnswerTooLargeError as exc:
        raise ProtocolError(
            f"the answer would be {'at least ' if exc.at_least else ''}{exc.size} bytes, more "
            f"than the limit of {exc.limit} bytes (LOSSD_MAX_RESPONSE_BYTES); ask for less: "
            'binary outputs (parameters {"binary_data_output": true}, 4 bytes a value) or '
            "only the mean output",
        ) from None  # 400, as the protocol answers every request the client must change
    if not blobs:
        return EncodedResponse(document, None)
    return EncodedResponse(b"".join([document, *blobs]), len(document))


def decompress(body: bytes | bytearray, encoding: str | None, *, limit: int) -> bytes | bytearray:
    """Undo a request's ``Content-Encoding`` (gzip or deflate, as Triton's clients send them).

    Over HTTP the request gate has already inflated the body as it arrived (:mod:`app.api.gate`)
    and the routes pass no encoding; this serves a caller holding a whole compressed body, with
    the same inflater (:mod:`app.api.inflate`). Refuses (413) to inflate past ``limit`` bytes,
    a piece at a time, so a small bomb cannot exhaust memory.
    """
    name = (encoding or "identity").strip().lower()
    if name == "identity":
        return body
    if name.encode() not in ENCODINGS:
        raise ProtocolError(
            f"unsupported Content-Encoding {encoding!r}; use gzip, deflate or none", status=415
        )
    inflater = Inflater(name.encode())
    data = bytearray()
    try:
        inflater.feed(bytes(body))
        while True:
            data += inflater.next()
            if len(data) > limit:
                raise ProtocolError(
                    f"request body inflates to more than the limit of {limit} bytes", status=413
                )
            if not inflater.pending:
                break
        inflater.finish()
    except InflateError as exc:
        raise ProtocolError(str(exc)) from None
    return data
