"""The losses as v2 models (app/api/v2/model.py): names, metadata, parameters and one whole
inference, without HTTP or observability."""

from __future__ import annotations

import gzip
import json
import struct
from typing import Any

import pytest

from app.api.v2.model import (
    find_model,
    model_metadata,
    protocol_error,
    run_inference,
    split_parameters,
)
from app.api.v2.types import ProtocolError
from app.losses import LossError
from app.observability.context import CURRENT, Observation
from tests.helpers import SEED_PRED, SEED_TRUE

LIMITS = {"max_elements": 1000, "max_body_bytes": 10_000}


def refusal(call: Any, *args: Any, **kwargs: Any) -> ProtocolError:
    with pytest.raises(ProtocolError) as raised:
        call(*args, **kwargs)
    return raised.value


@pytest.mark.parametrize("name", ["mse", "MSE", "MeanSquaredError", "loss_mse"])
def test_every_name_of_a_loss_is_the_model(name: str) -> None:
    assert find_model(name).name == "mean_squared_error"
    assert find_model(name, "1").name == "mean_squared_error"


def test_unknown_models_and_versions_are_404() -> None:
    unknown = refusal(find_model, "msee")
    assert (unknown.status, unknown.message) == (
        404,
        "unknown model 'msee'; did you mean 'mse', 'msle'?",
    )
    version = refusal(find_model, "mse", "2")
    assert version.status == 404 and "versions: 1" in version.message


def test_metadata_gives_sparse_labels_as_int64() -> None:
    metadata = model_metadata(find_model("sparse_categorical_crossentropy"))
    assert (metadata.inputs[0].datatype, metadata.inputs[0].shape) == ("INT64", [-1])
    assert metadata.parameters is not None and metadata.parameters["from_logits"] is False


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("torch.nn.NLLLoss", ("INT64", [-1])),  # class indices only
        ("torch.nn.MultiMarginLoss", ("INT64", [-1])),
        ("torch.nn.CrossEntropyLoss", ("FP32", [-1, -1])),  # indices or probabilities
        ("torch.nn.MSELoss", ("FP32", [-1, -1])),
    ],
)
def test_torch_class_index_targets_are_int64(name: str, label: tuple[str, list[int]]) -> None:
    metadata = model_metadata(find_model(name))
    assert (metadata.inputs[0].datatype, metadata.inputs[0].shape) == label


def test_parameters_split_into_options_reduction_and_dtype() -> None:
    spec = find_model("huber")
    parameters = {"delta": 0.5, "reduction": "sum", "dtype": "FP64", "binary_data_output": True}
    assert split_parameters(spec, parameters) == ({"delta": 0.5}, "sum", "float64")
    assert split_parameters(spec, None) == ({}, "sum_over_batch_size", None)
    assert "unknown parameter 'alpha'" in refusal(split_parameters, spec, {"alpha": 1}).message


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (LossError("must be > 0", field="options.delta"), "parameter 'delta': must be > 0"),
        (
            LossError("is NaN", field="y_pred", index=(0, 1)),
            "input 'y_pred' at index [0, 1]: is NaN",
        ),
        (LossError("bad", field="reduction"), "parameter 'reduction': bad"),
        (LossError("wrong"), "wrong"),
    ],
)
def test_engine_errors_speak_the_protocol(error: LossError, message: str) -> None:
    assert protocol_error(error).message == message


def infer_body(**extra: Any) -> bytes:
    inputs = [
        {"name": "y_true", "shape": [2, 3], "datatype": "FP32", "data": SEED_TRUE},
        {"name": "y_pred", "shape": [2, 3], "datatype": "FP32", "data": SEED_PRED},
    ]
    return json.dumps({"inputs": inputs, **extra}).encode()


def test_run_inference_returns_the_response_and_what_to_record() -> None:
    observed = Observation("r")
    token = CURRENT.set(observed)
    try:
        inference = run_inference(find_model("mse"), infer_body(id="a"), version="1", **LIMITS)
    finally:
        CURRENT.reset(token)
    assert observed.elements == {}  # recording is the route's business
    assert inference.y_pred.size == 6
    body = json.loads(inference.response.body)
    assert (body["model_name"], body["model_version"], body["id"]) == (
        "mean_squared_error",
        "1",
        "a",
    )
    outputs = {o["name"]: o["data"] for o in body["outputs"]}
    assert outputs["per_sample"] == pytest.approx([2 / 3, 1 / 3])
    assert outputs["count"] == [2.0]


def test_run_inference_inflates_and_reads_binary_inputs() -> None:
    header = json.dumps(
        {
            "inputs": [
                {"name": "y_true", "shape": [2], "datatype": "FP32", "data": [0, 1]},
                {
                    "name": "y_pred",
                    "shape": [2],
                    "datatype": "FP64",
                    "parameters": {"binary_data_size": 16},
                },
            ],
            "outputs": [{"name": "sum"}],
        }
    ).encode()
    body = gzip.compress(header + struct.pack("<2d", 1, 1))
    inference = run_inference(
        find_model("mae"),
        body,
        content_encoding="gzip",
        header_length=str(len(header)),
        **LIMITS,
    )
    out = json.loads(inference.response.body)
    assert out["parameters"]["dtype"] == "float64"  # FP64 data computes in float64
    assert out["outputs"] == [{"name": "sum", "datatype": "FP64", "shape": [1], "data": [0.5]}]


def test_engine_errors_are_protocol_errors() -> None:
    body = json.dumps(
        {
            "inputs": [
                {"name": "y_true", "shape": [1, 3], "datatype": "FP32", "data": [[0, 1, 1]]},
                {"name": "y_pred", "shape": [3, 1], "datatype": "FP32", "data": [[1], [1], [0]]},
            ]
        }
    ).encode()
    error = refusal(run_inference, find_model("mse"), body, **LIMITS)
    assert error.status == 400 and error.message.startswith("input 'y_pred': ")
