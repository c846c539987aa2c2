"""Every loss as a model of the Open Inference Protocol (KServe v2): the adapter between the
protocol and the engine, without HTTP or observability.

Every loss is a model, reachable under its canonical name and every alias (``mse``,
``MeanSquaredError``, ``loss_mse``, ... any case), with one version, ``"1"``. Inputs: ``y_true``,
``y_pred``, optional ``sample_weight`` (Keras losses) and, for a torch loss, its tensor options
(``weight``, ``pos_weight``, ``var``) as optional inputs of their own. Outputs: ``per_sample``
(the weighted per-sample losses), ``mean``, ``sum`` and ``count`` (``mean = sum / count``, so
partial results merge exactly), and, only when a request names them in ``outputs``,
``gradient`` and ``hessian_diagonal`` (the derivatives of the reduced value with respect to
``y_pred``, shaped like it). Scalar loss options, ``reduction`` and ``dtype`` are request
``parameters``. Anything wrong with a request is
a :class:`ProtocolError`, engine errors included, in the protocol's vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.api.json_tensors import ReparseBody
from app.api.v2.codec import (
    Array,
    EncodedResponse,
    OutputTensor,
    decode_inputs,
    decompress,
    encode_response,
    parse_request,
    requested_outputs,
    split_body,
)
from app.api.v2.types import RESERVED_PARAMETERS, MetadataTensor, ModelMetadata, ProtocolError
from app.errors import V2, report
from app.losses import LossError, LossSpec, UnknownLossError, evaluate, resolve

PLATFORM = "lossd"
VERSIONS = ("1",)
#: The inputs every model takes (a torch loss has no sample_weight: see :func:`model_inputs`).
INPUTS = ("y_true", "y_pred", "sample_weight")
#: What a request without ``outputs`` gets.
OUTPUTS = ("per_sample", "mean", "sum", "count")
#: Sent only when named in ``outputs``: computing them costs more than the loss itself.
DERIVATIVE_OUTPUTS = ("gradient", "hessian_diagonal")
ALL_OUTPUTS = OUTPUTS + DERIVATIVE_OUTPUTS
#: Accepted spellings of the ``dtype`` parameter: NumPy's names and the protocol's.
DTYPE_PARAMETER = {"float32": "float32", "fp32": "float32", "float64": "float64", "fp64": "float64"}


def find_model(name: str, version: str | None = None) -> LossSpec:
    """The loss a model name (any alias) and optional version refer to; 404 otherwise."""
    try:
        spec = resolve(name)
    except UnknownLossError as exc:
        raise protocol_error(exc) from None
    if version is not None and version not in VERSIONS:
        raise ProtocolError(
            f"model {spec.name!r} has no version {version!r}; versions: {', '.join(VERSIONS)}",
            status=404,
        )
    return spec


def model_inputs(spec: LossSpec) -> tuple[str, ...]:
    """The input names ``spec`` takes: y_true, y_pred, then sample_weight (Keras losses) or the
    loss's tensor options (torch's ``weight``, ``pos_weight``, ``var``), which, being tensors,
    are inputs rather than (scalar) parameters."""
    if spec.flavour == "keras":
        return INPUTS
    return ("y_true", "y_pred", *tensor_options(spec))


def tensor_options(spec: LossSpec) -> tuple[str, ...]:
    """The options of ``spec`` that are tensors (none for a Keras loss)."""
    return tuple(opt.name for opt in spec.options if opt.type == "tensor")


def model_metadata(spec: LossSpec) -> ModelMetadata:
    """The model metadata of one loss: its tensors with their usual datatypes and ranks.

    Ranks and datatypes shown are the typical ones; any rank and any numeric datatype is accepted.
    """
    label_type, label_shape = ("INT64", [-1]) if spec.sparse_labels else ("FP32", [-1, -1])
    parameters: dict[str, Any] = {
        opt.name: opt.default for opt in spec.options if opt.type != "tensor"
    }
    parameters.update(reduction=spec.default_reduction, dtype=None)
    # sample_weight, weight, pos_weight, var: optional, any shape the loss broadcasts.
    optional = [
        MetadataTensor(name=name, datatype="FP32", shape=[-1]) for name in model_inputs(spec)[2:]
    ]
    return ModelMetadata(
        name=spec.name,
        versions=list(VERSIONS),
        platform=PLATFORM,
        inputs=[
            MetadataTensor(name="y_true", datatype=label_type, shape=label_shape),
            MetadataTensor(name="y_pred", datatype="FP32", shape=[-1, -1]),
            *optional,
        ],
        outputs=[
            MetadataTensor(name="per_sample", datatype="FP32", shape=[-1]),
            MetadataTensor(name="mean", datatype="FP32", shape=[1]),
            MetadataTensor(name="sum", datatype="FP32", shape=[1]),
            MetadataTensor(name="count", datatype="FP64", shape=[1]),
            # Shaped like y_pred; sent only when named in a request's outputs.
            MetadataTensor(name="gradient", datatype="FP32", shape=[-1, -1]),
            MetadataTensor(name="hessian_diagonal", datatype="FP32", shape=[-1, -1]),
        ],
        parameters=parameters,
    )


def split_parameters(
    spec: LossSpec, parameters: Mapping[str, Any] | None
) -> tuple[dict[str, Any], str, str | None]:
    """Request parameters as (loss options, reduction, dtype or None for automatic).

    Every name must be a (non-tensor) option of the loss, ``reduction``, ``dtype`` or a reserved
    protocol parameter (those are ignored here). Tensor options are inputs.
    """
    options: dict[str, Any] = {}
    reduction: Any = spec.default_reduction
    dtype: str | None = None
    takes = {opt.name for opt in spec.options} - set(tensor_options(spec))
    for key, value in (parameters or {}).items():
        if key in RESERVED_PARAMETERS:
            continue
        if key == "reduction":
            reduction = value
        elif key == "dtype":
            dtype = DTYPE_PARAMETER.get(value.lower()) if isinstance(value, str) else None
            if dtype is None:
                raise ProtocolError(f"parameter 'dtype' must be float32 or float64, got {value!r}")
        elif key in takes:
            options[key] = value
        elif key in tensor_options(spec):
            raise ProtocolError(
                f"{key!r} is a tensor: send it as an input of model {spec.name!r}, not a parameter"
            )
        else:
            names = ", ".join([*sorted(takes), "reduction", "dtype"])
            raise ProtocolError(f"unknown parameter {key!r}; model {spec.name!r} takes: {names}")
    if reduction not in spec.reductions:
        raise ProtocolError(
            f"parameter 'reduction' must be one of {', '.join(spec.reductions)}, got {reduction!r}"
        )
    return options, reduction, dtype


def protocol_error(error: LossError) -> ProtocolError:
    """An engine error in the protocol's vocabulary (:func:`app.errors.report`): losses are
    models, options parameters, tensors inputs; invalid input is a 400."""
    found = report(error, V2)
    return ProtocolError(found.detail, status=found.status)


@dataclass(frozen=True, slots=True)
class Inference:
    """One answered inference request: the response to send, and the predictions evaluated
    (for the route to record in its observation)."""

    response: EncodedResponse
    y_pred: Array


def run_inference(
    spec: LossSpec,
    body: bytes | bytearray,
    *,
    content_encoding: str | None = None,
    header_length: str | None = None,
    version: str | None = None,
    max_elements: int,
    max_body_bytes: int,
    max_response_bytes: int | None = None,
) -> Inference:
    """Evaluate one inference request on ``spec``: its body bytes, its ``Content-Encoding`` and
    ``Inference-Header-Content-Length`` headers. CPU-bound: the routes run it in a worker thread.

    Raises :class:`ProtocolError` for anything wrong with the request.
    """
    body = decompress(body, content_encoding, limit=max_body_bytes)
    header, binary = split_body(body, header_length)
    request, texts = parse_request(header)
    options, reduction, dtype = split_parameters(spec, request.parameters)
    wanted = requested_outputs(request, ALL_OUTPUTS, OUTPUTS)  # checked before the work
    named = {name for name, _ in wanted}
    gradient, hessian_diagonal = (name in named for name in DERIVATIVE_OUTPUTS)
    names = [tensor.name for tensor in request.inputs]
    inputs = model_inputs(spec)
    for name in names:
        if name not in inputs:
            raise ProtocolError(
                f"model {spec.name!r} has no input {name!r}; inputs: {', '.join(inputs)}"
            )
    for name in ("y_true", "y_pred"):
        if name not in names:
            raise ProtocolError(f"input {name!r} is missing")
    try:
        arrays = decode_inputs(request.inputs, binary, max_elements=max_elements, texts=texts)
    except ReparseBody:  # a data text is not JSON: the request, parsed whole, says where
        request, _ = parse_request(header, split=False)
        arrays = decode_inputs(request.inputs, binary, max_elements=max_elements)
    if dtype is None:  # FP64 data computes in float64 unless the request says otherwise
        datatypes = {t.datatype for t in request.inputs if t.name in ("y_true", "y_pred")}
        dtype = "float64" if "FP64" in datatypes else "float32"
    options.update((name, arrays[name]) for name in tensor_options(spec) if name in arrays)
    try:
        evaluation = evaluate(
            spec,
            arrays["y_true"],
            arrays["y_pred"],
            sample_weight=arrays.get("sample_weight"),
            options=options,
            reduction=reduction,
            dtype=dtype,
            gradient=gradient,
            hessian_diagonal=hessian_diagonal,
        )
    except LossError as exc:
        raise protocol_error(exc) from None
    result = evaluation.result
    float_type = np.dtype(dtype)
    values: dict[str, Array | None] = {
        "per_sample": result.per_sample,
        "mean": np.array([result.mean], dtype=float_type),
        "sum": np.array([result.sum], dtype=float_type),
        # A count can pass 2**24 (float32's last exact integer): always FP64.
        "count": np.array([result.count], dtype=np.float64),
        # Shaped like y_pred as sent, in the computation dtype; None unless named.
        "gradient": evaluation.gradient,
        "hessian_diagonal": evaluation.hessian_diagonal,
    }
    response: dict[str, Any] = {"model_name": spec.name}
    if version is not None:
        response["model_version"] = version
    if request.id is not None:
        response["id"] = request.id
    response["parameters"] = {
        "dtype": dtype,
        "reduction": reduction,
        "non_finite": result.non_finite,
    }
    if gradient:
        response["parameters"]["gradient_non_finite"] = evaluation.gradient_non_finite
    if hessian_diagonal:
        response["parameters"]["hessian_diagonal_non_finite"] = (
            evaluation.hessian_diagonal_non_finite
        )
    outputs = [OutputTensor(n, _present(values[n]), b) for n, b in wanted]
    encoded = encode_response(response, outputs, max_response_bytes)
    return Inference(encoded, arrays["y_pred"])


def _present(array: Array | None) -> Array:
    assert array is not None  # a derivative is computed whenever its output is named
    return array
