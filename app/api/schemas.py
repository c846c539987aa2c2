"""Request and response models of the v1 API.

Tensors arrive as nested JSON lists of numbers. :func:`app.api.bodies.parse_json` cuts their text
out of the body (``app.api.json_tensors``) and Pydantic validates the rest, the envelope; the model
validator then decodes each tensor's text straight into a NumPy array and checks it once
(rectangular, numeric, finite, non-empty, within the element limit). A tensor given as a Python
list (a body parsed whole) is converted with one ``np.asarray``. Shapes are matched by the engine,
which knows each loss's rule (sparse labels have one axis fewer).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictFloat,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import WithJsonSchema
from pydantic_core import PydanticCustomError
from typing_extensions import TypeAliasType

from app.api.json_tensors import TensorText, decode_tensor, parse_text
from app.api.problems import Problem
from app.losses import (
    DTYPES,
    Evaluation,
    InvalidInputError,
    LossError,
    LossSpec,
    Tensors,
    check_tensor,
    evaluate_tensors,
    to_array,
)
from app.losses.numerics import FloatArray

# Named aliases: one ``Reduction`` and one ``DType`` schema in the OpenAPI document, so generated
# SDKs get one enum each instead of one per field (``EvaluateRequestReductionEnum``, ...).
Reduction = TypeAliasType(
    "Reduction",
    Literal["sum_over_batch_size", "mean", "sum", "mean_with_sample_weight", "none", "batchmean"],
)
DType = TypeAliasType("DType", Literal["float32", "float64"])
ReductionName = Reduction
DTypeName = DType

_TENSOR_SCHEMA = {
    "type": "array",
    "items": {},
    "description": "A tensor of rank >= 1: nested lists of finite numbers, e.g. [[0, 1], [1, 0]].",
}
Tensor = Annotated[list[Any], WithJsonSchema(_TENSOR_SCHEMA)]
Weights = Annotated[
    # Strict: a lax float would take `false` (weight 0) or "2" for a number.
    list[Any] | StrictFloat,
    WithJsonSchema(
        {
            "anyOf": [_TENSOR_SCHEMA, {"type": "number"}],
            "title": "SampleWeight",  # names the type in generated SDKs
            "description": "One weight per sample (the per-sample loss shape or a leading part "
            "of it), or one number for all.",
        }
    ),
]
Options = Annotated[
    dict[str, Any],
    Field(
        description='Loss options, e.g. {"from_logits": true}; GET /v1/losses/{name} lists '
        "each loss's options with their types and defaults.",
        examples=[{}],
    ),
]


#: The fields of a tensor pair that hold tensors.
TENSOR_FIELDS = ("y_true", "y_pred", "sample_weight")


def decode_field(data: Any, text: TensorText | None, field: str, dtype: str) -> FloatArray:
    """One tensor field as a checked array: from its JSON ``text`` when the body was split (the
    fast decoder, or the exact slow path when it declines), else from ``data`` as parsed."""
    min_rank = 0 if field == "sample_weight" else 1
    if text is not None:
        array = decode_tensor(text, DTYPES[dtype])
        if array is not None:
            return check_tensor(array, field, dtype, min_rank=min_rank)
        data = parse_text(text)
    return to_array(data, field, dtype, min_rank=min_rank)


class TensorPair(BaseModel):
    """``y_true`` and ``y_pred`` (and optional ``sample_weight``), decoded once into arrays."""

    model_config = ConfigDict(extra="forbid")

    y_true: Tensor = Field(examples=[[[0, 1, 1], [0, 0, 1]]])
    y_pred: Tensor = Field(examples=[[[1, 1, 0], [1, 0, 1]]])
    sample_weight: Weights | None = Field(None, examples=[None])

    _tensors: Tensors | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _decode(self, info: ValidationInfo) -> Self:
        context = info.context or {}
        limit = context.get("max_elements")
        texts: dict[Any, TensorText] = context.get("tensors") or {}
        dtype = getattr(self, "dtype", None) or context.get("dtype", "float32")
        arrays: dict[str, FloatArray | None] = {}
        first_error: LossError | None = None
        for name in TENSOR_FIELDS:
            data = getattr(self, name)
            if data is None:
                arrays[name] = None
                continue
            try:
                array = decode_field(data, texts.get(name), name, dtype)
                if limit is not None and array.size > limit:
                    raise InvalidInputError(
                        f"tensor has {array.size} values, more than the limit of {limit}",
                        field=name,
                    )
            except LossError as exc:
                if not texts:
                    raise
                # A body split into tensors is valid JSON only once every tensor's text has
                # decoded (or raised ReparseBody): the first error waits for the rest, so that it
                # is the error the body parsed whole would give, without parsing it whole.
                first_error = first_error or exc
                continue
            arrays[name] = array
            setattr(self, name, _DECODED)  # free the Python lists now; the array holds the data
        if first_error is not None:
            raise first_error
        y_true, y_pred = arrays["y_true"], arrays["y_pred"]
        assert y_true is not None and y_pred is not None  # required fields
        self._tensors = Tensors(y_true, y_pred, arrays["sample_weight"])
        return self

    @property
    def tensors(self) -> Tensors:
        """The decoded and checked tensors."""
        assert self._tensors is not None  # set by the validator
        return self._tensors

    def evaluate(
        self, loss: str | LossSpec, options: dict[str, Any], reduction: str | None
    ) -> Evaluation:
        """Evaluate ``loss`` on these tensors (decoded once, however many losses use them), with
        the derivatives the request asks for (``gradient``, ``hessian_diagonal``), if any."""
        return evaluate_tensors(
            loss,
            self.tensors,
            options=options,
            reduction=reduction,
            gradient=getattr(self, "gradient", False),
            hessian_diagonal=getattr(self, "hessian_diagonal", False),
        )


_DECODED: list[Any] = []


DTypeField = Annotated[
    DTypeName, Field(description="Computation dtype (Keras's floatx): float32 or float64.")
]
# Strict: a lax bool would take "yes" or 1 for true.
GradientField = Annotated[
    StrictBool,
    Field(
        description="Also return `gradient`: d value / d y_pred (of the sum for reduction none) "
        "for every element of y_pred, flat row-major, with `y_pred_shape`.",
    ),
]
HessianDiagonalField = Annotated[
    StrictBool,
    Field(
        description="Also return `hessian_diagonal`: d^2 value / d y_pred_i^2 for every element "
        "of y_pred (the exact diagonal of the Hessian), flat row-major, with `y_pred_shape`.",
    ),
]


class EvaluateRequest(TensorPair):
    """Evaluate one loss on one pair of tensors."""

    dtype: DTypeField = "float32"

    options: Options = Field(default_factory=dict)
    reduction: ReductionName | None = Field(
        None,
        description="What `value` holds, in the loss's flavour: Keras 3's reductions for a "
        "Keras loss, torch's (mean, sum, none; batchmean for KLDivLoss) for a torch loss. "
        "Omitted or null: the loss's default (sum_over_batch_size; torch: mean). `mean`, `sum` "
        "and `count` are always returned.",
    )
    gradient: GradientField = False
    hessian_diagonal: HessianDiagonalField = False


class EvaluateResponse(BaseModel):
    """Per-sample losses and the totals needed to merge partial results exactly."""

    loss: str = Field(
        description="Canonical loss name (Keras 3's function name, or torch.nn.<Class>).",
        examples=["mean_squared_error"],
    )
    per_sample: list[float | None] = Field(
        description="Weighted per-sample losses, flattened row-major (see `shape`). A non-finite "
        "value (e.g. poisson with y_pred < 0) is null and counted in `non_finite`.",
        examples=[[0.6666667, 0.33333334]],
    )
    shape: list[int] = Field(description="Shape of the per-sample losses.", examples=[[2]])
    mean: float | None = Field(
        description="sum / count: the loss averaged with the flavour's divisor.", examples=[0.5]
    )
    sum: float | None = Field(description="Sum of the weighted per-sample losses.", examples=[1.0])
    count: float = Field(
        description="The divisor of the loss's flavour: Keras's counted samples (or summed sample "
        "weights for mean_with_sample_weight); torch's elements for mean, N for batchmean, "
        "summed class weights for weighted cross-entropy and NLL. Merge parts with "
        "sum(sums) / sum(counts).",
        examples=[2],
    )
    value: float | None = Field(
        description="What the loss's framework (Keras, or torch) returns for `reduction`: the "
        "mean, the sum, or null for none.",
        examples=[0.5],
    )
    reduction: ReductionName = Field(examples=["sum_over_batch_size"])
    dtype: DTypeName = Field(examples=["float32"])
    non_finite: int = Field(0, description="How many per-sample values are NaN or infinite.")
    # Present only when the request asks for a derivative (absent, not null, otherwise).
    y_pred_shape: list[int] = Field(
        None,  # type: ignore[arg-type]
        description="y_pred's shape as sent: the shape of `gradient` and `hessian_diagonal`. "
        "Only with gradient or hessian_diagonal.",
        examples=[[2, 3]],
    )
    gradient: list[float | None] = Field(
        None,  # type: ignore[arg-type]
        description="Only with gradient=true: d value / d y_pred (of the sum of the per-sample "
        "losses for reduction none), flattened row-major (see `y_pred_shape`). A non-finite "
        "value is null and counted in `gradient_non_finite`.",
        examples=[[0.33333334, 0.0, -0.33333334, 0.33333334, 0.0, 0.0]],
    )
    gradient_non_finite: int = Field(  # type: ignore[assignment]
        None,
        description="Only with gradient=true: how many gradient values are NaN or infinite.",
        examples=[0],
    )
    hessian_diagonal: list[float | None] = Field(
        None,  # type: ignore[arg-type]
        description="Only with hessian_diagonal=true: d^2 value / d y_pred_i^2, the exact "
        "diagonal of the Hessian, flattened row-major. A non-finite value is null and counted "
        "in `hessian_diagonal_non_finite`.",
        examples=[[0.33333334, 0.33333334, 0.33333334, 0.33333334, 0.33333334, 0.33333334]],
    )
    hessian_diagonal_non_finite: int = Field(  # type: ignore[assignment]
        None,
        description="Only with hessian_diagonal=true: how many Hessian-diagonal values are NaN "
        "or infinite.",
        examples=[0],
    )


class OptionInfo(BaseModel):
    """One option a loss takes."""

    name: str = Field(examples=["from_logits"])
    type: str = Field(
        description="boolean, number, integer, integer_or_null, or axes (null, an integer or a "
        "list of integers).",
        examples=["boolean"],
    )
    default: Any = Field(examples=[False])
    doc: str = Field(examples=["Treat y_pred as logits instead of probabilities."])
    minimum: float | None = Field(None, examples=[None])
    maximum: float | None = Field(None, examples=[None])
    exclusive_minimum: bool = Field(False, examples=[False])


class LossInfo(BaseModel):
    """A catalogue entry."""

    name: str = Field(examples=["mean_squared_error"])
    aliases: list[str] = Field(
        description="Other accepted names besides the class name and the loss_ forms; every "
        "name is case-insensitive.",
        examples=[["mse", "MSE"]],
    )
    class_name: str = Field(examples=["MeanSquaredError"])
    family: str = Field(examples=["regression"])
    formula: str = Field(examples=["mean((y_true - y_pred)^2, axis=-1)"])
    doc: str = Field(examples=["Average squared difference; in squared units of the target."])
    options: list[OptionInfo] = Field(
        examples=[
            [
                {
                    "name": "delta",
                    "type": "number",
                    "default": 1.0,
                    "minimum": 0.0,
                    "maximum": None,
                    "exclusive_minimum": True,
                    "doc": "Where the loss turns from quadratic to linear.",
                }
            ]
        ]
    )
    sparse_labels: bool = Field(
        description="y_true holds integer class indices (one axis fewer than y_pred).",
        examples=[False],
    )
    derivatives: list[Literal["gradient", "hessian_diagonal"]] = Field(
        description="The derivatives of the loss with respect to y_pred lossd computes "
        "(analytically, as autodiff of Keras's own function gives them).",
        examples=[["gradient", "hessian_diagonal"]],
    )
    flavour: Literal["keras", "torch"] = Field(
        "keras",
        description="Whose conventions the loss follows: Keras 3's, or PyTorch's (names "
        "torch.nn.<Class>, torch's reductions and options; docs/torch.md).",
        examples=["keras"],
    )


class LossCatalogue(BaseModel):
    """Every loss lossd evaluates."""

    losses: list[LossInfo]


def number_or_none(x: float) -> float | None:
    """JSON has no NaN or infinity: such a value is sent as null (and counted by the caller)."""
    return x if np.isfinite(x) else None


class LossRef(BaseModel):
    """A loss with its own options, inside a batch item."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(examples=["binary_crossentropy"])
    options: Options = Field(default_factory=dict)


class BatchItem(TensorPair):
    """One batch item: one pair of tensors, evaluated with one loss or several."""

    id: str | None = Field(None, description="Echoed in the result.", examples=["run-42"])
    # Titles name these unions in generated SDKs (else ``Loss``, ``LossAnyOfInner``).
    # A list names at least one loss: an empty one would answer 200 with nothing evaluated.
    loss: (
        str
        | Annotated[list[Annotated[str | LossRef, Field(title="LossChoice")]], Field(min_length=1)]
    ) = Field(
        title="LossSelection",
        description="A loss name, or a list of names / {name, options} objects evaluated on the "
        "same tensors (decoded once).",
        examples=[["mse", "mae"]],
    )
    options: Options = Field(default_factory=dict)
    reduction: ReductionName | None = Field(
        None, description="As in a single evaluation; null: each loss's default."
    )
    dtype: DTypeField = "float32"
    gradient: GradientField = False
    hessian_diagonal: HessianDiagonalField = False

    @field_validator("loss", mode="before")
    @classmethod
    def _names_a_loss(cls, value: Any) -> Any:
        # One error that says what to send, rather than one per member of the union.
        if isinstance(value, list) and not value:
            raise PydanticCustomError(
                "too_short", "name at least one loss: a name, or a non-empty list of names"
            )
        return value


class BatchRequest(BaseModel):
    """Many evaluations in one call; a bad item does not fail the others."""

    items: list[BatchItem] = Field(
        examples=[[{"id": "a", "loss": ["mse", "mae"], "y_true": [[0, 1]], "y_pred": [[1, 1]]}]]
    )


class BatchResult(BaseModel):
    """The outcome of one item: its results (one per loss, in order) or a problem."""

    id: str | None = None
    status: int = Field(description="200, or the status the item alone would have had.")
    results: list[EvaluateResponse] | None = None
    error: Problem | None = None


class BatchResponse(BaseModel):
    """One result per item, in request order."""

    results: list[BatchResult]


#: Request fields asking for derivatives, which a stream does not return.
DERIVATIVE_FIELDS = ("gradient", "hessian_diagonal")
NO_STREAMED_DERIVATIVES = (
    "a stream returns merged totals, not derivatives; ask for gradient or hessian_diagonal "
    "with POST /v1/losses/{name} or /v1/batch"
)


class StreamLine(TensorPair):
    """One NDJSON line of a stream: a chunk of samples (dtype and options are query parameters;
    a line may add options of its own, such as a torch loss's weight or var tensors)."""

    options: dict[str, Any] | None = Field(
        None,
        description="Options for this line only, over the query's: e.g. a torch loss's var "
        "tensor for this chunk's samples.",
        examples=[None],
    )

    @model_validator(mode="before")
    @classmethod
    def _no_derivatives(cls, data: Any) -> Any:
        # A clear refusal rather than "extra inputs are not permitted".
        if isinstance(data, dict) and any(key in data for key in DERIVATIVE_FIELDS):
            raise PydanticCustomError("derivatives_not_streamed", NO_STREAMED_DERIVATIVES)
        return data


class StreamResponse(BaseModel):
    """The merged result of every chunk of a stream."""

    loss: str = Field(examples=["mean_squared_error"])
    mean: float | None = Field(description="sum / count over all chunks.", examples=[0.5])
    sum: float | None = Field(examples=[1.0])
    count: float = Field(examples=[2])
    value: float | None = Field(
        description="What the loss's framework returns for `reduction`.", examples=[0.5]
    )
    reduction: ReductionName = Field(examples=["sum_over_batch_size"])
    dtype: DTypeName = Field(examples=["float32"])
    chunks: int = Field(description="Number of lines evaluated.", examples=[1])
    non_finite: int = 0
    per_sample: list[float | None] | None = Field(
        None, description="Only with ?per_sample=true: all chunks' values, flattened."
    )
    shape: list[int] | None = None
