"""The v2 codec (app/api/v2/codec.py) on its own: bytes to arrays and back, without HTTP."""

from __future__ import annotations

import gzip
import json
import struct
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from app.api import json_tensors
from app.api.json_tensors import ReparseBody, TensorText
from app.api.v2.codec import (
    DATATYPES,
    OutputTensor,
    decode_inputs,
    decode_tensor,
    decompress,
    encode_response,
    parse_request,
    requested_outputs,
    split_body,
)
from app.api.v2.types import InferenceRequest, ProtocolError, RequestInput

MAX = 1000
NOTHING = "null, objects or numbers too large to represent"


def tensor(name: str, shape: list[int], datatype: str, data: Any = None, **params: Any) -> Any:
    return RequestInput(
        name=name, shape=shape, datatype=datatype, data=data, parameters=params or None
    )


def assert_refused(call: Callable[[], Any], message: str, status: int = 400) -> None:
    with pytest.raises(ProtocolError) as raised:
        call()
    assert (raised.value.message, raised.value.status) == (message, status)


# --- split_body and the JSON header ------------------------------------------------------------


def test_a_json_body_is_all_header() -> None:
    body = b'{"inputs": []}'
    header, binary = split_body(body, None)
    assert header is body and len(binary) == 0


def test_the_binary_part_is_a_view_of_the_body() -> None:
    body = b'{"inputs": []}' + b"\x01\x02\x03"
    header, binary = split_body(body, "14")
    assert header == b'{"inputs": []}'
    assert bytes(binary) == b"\x01\x02\x03" and binary.obj is body  # not copied


@pytest.mark.parametrize(
    ("length", "message"),
    [
        ("2x", "Inference-Header-Content-Length must be a non-negative integer, got '2x'"),
        ("-1", "Inference-Header-Content-Length must be a non-negative integer, got '-1'"),
        ("٣", "Inference-Header-Content-Length must be a non-negative integer, got '٣'"),
        ("99", "Inference-Header-Content-Length is 99 bytes but the request body has only 2"),
    ],
)
def test_bad_header_lengths(length: str, message: str) -> None:
    assert_refused(lambda: split_body(b"{}", length), message)


def test_parse_request_says_where() -> None:
    assert_refused(
        lambda: parse_request(b'{"inputs": [{"name": "y", "datatype": "FP32"}]}'),
        "inputs[0].shape: Field required",
    )
    assert_refused(
        lambda: parse_request(b"{"),
        "malformed JSON: EOF while parsing an object at line 1 column 1",
    )


# --- JSON data: the seam a faster decoder replaces ---------------------------------------------


def decode_json(name: str, shape: list[int], datatype: str, data: Any, via: str) -> Any:
    """decode_tensor on JSON ``data``: given parsed (``via="data"``), or as the text a large
    request's data is cut out as (``via="text"``, decoded straight into an array)."""
    if via == "data":
        return decode_tensor(tensor(name, shape, datatype, data), None, max_elements=MAX)
    text = TensorText.of(json.dumps(data).encode())
    return decode_tensor(tensor(name, shape, datatype, []), None, max_elements=MAX, text=text)


VIA = pytest.mark.parametrize("via", ["data", "text"])


@VIA
@pytest.mark.parametrize("datatype", list(DATATYPES))
def test_json_data_nested_or_flat_gives_the_declared_dtype_and_shape(
    datatype: str, via: str
) -> None:
    nested = [[True, False, True], [False, True, True]] if datatype == "BOOL" else [[1, 0, 1]] * 2
    flat = [v for row in nested for v in row]
    expected = np.asarray(nested, dtype=DATATYPES[datatype])
    for data in (nested, flat):
        array = decode_json("x", [2, 3], datatype, data, via)
        assert array.dtype == DATATYPES[datatype] and array.shape == (2, 3)
        np.testing.assert_array_equal(array, expected)


@VIA
def test_floats_decode_exactly(via: str) -> None:
    data = [0.1, -2.5e-8, 3.4028234663852886e38, 1e-45]
    array = decode_json("x", [4], "FP64", data, via)
    assert array.tolist() == data


@VIA
def test_an_empty_tensor_keeps_its_shape_and_dtype(via: str) -> None:
    array = decode_json("x", [0, 3], "FP64", [], via)
    assert (array.shape, array.dtype) == ((0, 3), np.dtype("<f8"))


@pytest.mark.parametrize(
    ("datatype", "shape", "data", "message"),
    [
        ("FP32", [2, 2], [[1, 2], [3]], "data is ragged (nested lists of different lengths)"),
        ("FP32", [2, 2], [1, 2, 3], "shape [2, 2] needs 4 elements but data has 3"),
        ("FP32", [2], ["a", "b"], "FP32 data must be numbers, found strings"),
        ("FP32", [1], [True], "FP32 data must be numbers, found true/false"),
        ("FP32", [1], [None], f"FP32 data must be numbers, found {NOTHING}"),
        ("BOOL", [2], [1, 0], "BOOL data must be true or false, found integers"),
        ("INT32", [2], [1.5, 2], "INT32 data must be integers, found non-integer numbers"),
        ("UINT8", [2], [-1, 2], "-1 is out of range for UINT8 [0, 255]"),
        ("INT8", [1], [128], "128 is out of range for INT8 [-128, 127]"),
        ("INT64", [1], [2**64], f"INT64 data must be integers, found {NOTHING}"),
    ],
)
@VIA
def test_bad_json_data(datatype: str, shape: list[int], data: Any, message: str, via: str) -> None:
    assert_refused(lambda: decode_json("x", shape, datatype, data, via), f"input 'x': {message}")


def test_data_text_that_is_not_json_asks_for_the_request_parsed_whole() -> None:
    text = TensorText.of(b"[[1, 2]],[[3]]")
    with pytest.raises(ReparseBody):
        decode_tensor(tensor("x", [1, 2], "FP32", []), None, max_elements=MAX, text=text)


def test_a_large_request_has_its_data_cut_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(json_tensors, "SPLIT_BODY_BYTES", 1024)
    rows = [[0.5] * 25] * 120
    header = json.dumps(
        {"inputs": [{"name": "y_true", "shape": [120, 25], "datatype": "FP32", "data": rows}]}
    ).encode()
    request, texts = parse_request(header)
    assert request.inputs[0].data == [] and list(texts) == [0]
    array = decode_tensor(request.inputs[0], None, max_elements=10**4, text=texts[0])
    np.testing.assert_array_equal(array, np.full((120, 25), 0.5, dtype=np.float32))


# --- binary data and the inputs together -------------------------------------------------------


def test_binary_data_is_read_in_place() -> None:
    raw = memoryview(struct.pack("<4f", 1, 2, 3, 4))
    array = decode_tensor(tensor("x", [2, 2], "FP32"), raw, max_elements=MAX)
    np.testing.assert_array_equal(array, [[1, 2], [3, 4]])
    assert np.shares_memory(array, np.frombuffer(raw, dtype="<f4"))


def test_inputs_take_the_binary_bytes_in_order() -> None:
    inputs = [
        tensor("a", [2], "INT64", binary_data_size=16),
        tensor("b", [1], "FP32", [7]),
        tensor("c", [3], "UINT8", binary_data_size=3),
    ]
    binary = memoryview(struct.pack("<2q", -1, 5) + b"\x01\x02\x03")
    arrays = decode_inputs(inputs, binary, max_elements=MAX)
    assert {k: v.tolist() for k, v in arrays.items()} == {"a": [-1, 5], "b": [7.0], "c": [1, 2, 3]}


@pytest.mark.parametrize(
    ("inputs", "payload", "message"),
    [
        (
            [tensor("a", [2], "FP32", [1, 2]), tensor("a", [1], "FP32", [1])],
            b"",
            "input 'a' appears more than once",
        ),
        (
            [tensor("a", [1], "FP32", binary_data_size=4)],
            b"\0" * 5,
            "the request body has 5 bytes after the JSON header but the inputs' binary_data_size "
            "values add up to 4",
        ),
        (
            [tensor("a", [2], "FP32", binary_data_size=8)],
            b"\0" * 4,
            "input 'a' declares 8 bytes of binary data but only 4 remain in the request body",
        ),
        (
            [tensor("a", [2], "FP32", binary_data_size=4)],
            b"\0" * 4,
            "input 'a': binary_data_size is 4 bytes but shape [2] of FP32 needs 8",
        ),
        (
            [tensor("a", [1], "FP32", binary_data_size=True)],
            b"",
            "input 'a': binary_data_size must be a non-negative integer, got True",
        ),
        (
            [tensor("a", [1], "FP32", [1], shared_memory_region="r")],
            b"",
            "input 'a': shared memory is not supported; send the data in the request (JSON or "
            "binary)",
        ),
        (
            [tensor("a", [1], "FP32", [1], colour="red")],
            b"",
            "input 'a' has an unknown parameter 'colour'",
        ),
        (
            [tensor("a", [40, 30], "FP32", [0] * 1200)],
            b"",
            "input 'a' has 1200 elements (shape [40, 30]); the limit is 1000",
        ),
        (
            [tensor("a", [1], "BF16", [0])],
            b"",
            "input 'a' has datatype 'BF16'; supported: BOOL, UINT8, UINT16, UINT32, UINT64, INT8, "
            "INT16, INT32, INT64, FP16, FP32, FP64",
        ),
    ],
)
def test_bad_inputs(inputs: list[RequestInput], payload: bytes, message: str) -> None:
    assert_refused(lambda: decode_inputs(inputs, memoryview(payload), max_elements=MAX), message)


# --- outputs -----------------------------------------------------------------------------------


def request(**fields: Any) -> InferenceRequest:
    return InferenceRequest.model_validate({"inputs": [], **fields})


AVAILABLE = ("per_sample", "mean", "sum", "count")


def test_requested_outputs() -> None:
    assert requested_outputs(request(), AVAILABLE) == [(name, False) for name in AVAILABLE]
    everything_binary = request(parameters={"binary_data_output": True})
    assert requested_outputs(everything_binary, AVAILABLE) == [(n, True) for n in AVAILABLE]
    chosen = request(
        parameters={"binary_data_output": True},
        outputs=[{"name": "sum", "parameters": {"binary_data": False}}, {"name": "mean"}],
    )
    assert requested_outputs(chosen, AVAILABLE) == [("sum", False), ("mean", True)]
    assert_refused(
        lambda: requested_outputs(request(outputs=[{"name": "loss"}]), AVAILABLE),
        "unknown output 'loss'; outputs: per_sample, mean, sum, count",
    )


def test_json_outputs_are_flat_with_null_for_non_finite_values() -> None:
    per_sample = np.array([[0.5, np.nan], [np.inf, 1.0]], dtype=np.float32)
    encoded = encode_response(
        {"model_name": "m"}, [OutputTensor("per_sample", per_sample, binary=False)]
    )
    assert (encoded.header_length, encoded.content_type) == (None, "application/json")
    assert json.loads(encoded.body) == {
        "model_name": "m",
        "outputs": [
            {
                "name": "per_sample",
                "datatype": "FP32",
                "shape": [2, 2],
                "data": [0.5, None, None, 1],
            }
        ],
    }


def test_binary_outputs_follow_the_json_header_in_order() -> None:
    mean = np.array([0.25], dtype=np.float64)
    count = np.array([6.0], dtype=np.float64)
    per_sample = np.array([1.5, 2.5], dtype=np.float32)
    encoded = encode_response(
        {"model_name": "m"},
        [
            OutputTensor("per_sample", per_sample, binary=True),
            OutputTensor("mean", mean, binary=False),
            OutputTensor("count", count, binary=True),
        ],
    )
    assert encoded.content_type == "application/octet-stream"
    assert encoded.header_length is not None
    header = json.loads(encoded.body[: encoded.header_length])
    sizes = [o.get("parameters", {}).get("binary_data_size") for o in header["outputs"]]
    assert sizes == [8, None, 8]
    assert header["outputs"][1]["data"] == [0.25]
    assert encoded.body[encoded.header_length :] == struct.pack("<2f", 1.5, 2.5) + struct.pack(
        "<d", 6.0
    )


# --- Content-Encoding --------------------------------------------------------------------------


BODY = b'{"inputs": []}' * 10


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        (None, lambda b: b),
        ("identity", lambda b: b),
        ("gzip", gzip.compress),
        (" GZIP ", gzip.compress),
        ("deflate", zlib.compress),
    ],
)
def test_decompress(encoding: str | None, compress: Callable[[bytes], bytes]) -> None:
    assert decompress(compress(BODY), encoding, limit=len(BODY)) == BODY


def test_decompress_refuses_bombs_and_bad_data() -> None:
    assert_refused(
        lambda: decompress(gzip.compress(BODY), "gzip", limit=len(BODY) - 1),
        f"request body inflates to more than the limit of {len(BODY) - 1} bytes",
        413,
    )
    assert_refused(
        lambda: decompress(gzip.compress(BODY)[:-12], "gzip", limit=len(BODY)),
        "request body is truncated gzip data",
    )
    assert_refused(
        lambda: decompress(BODY, "br", limit=len(BODY)),
        "unsupported Content-Encoding 'br'; use gzip, deflate or none",
        415,
    )
    assert_refused(  # bytes after the gzip data are refused, as unclaimed binary bytes are
        lambda: decompress(gzip.compress(BODY) + b"junk", "gzip", limit=len(BODY)),
        "request body has bytes after the end of its gzip data",
    )
