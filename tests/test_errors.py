"""app/errors.py: one mapping of engine and schema errors, worded once, named per protocol."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from app.errors import CLI, V1, V2, report, validation_report
from app.losses import InvalidInputError, InvalidOptionError, LossError, UnknownLossError


@pytest.mark.parametrize(
    ("error", "v1", "v2", "cli"),
    [
        (
            InvalidOptionError("delta must be > 0, got -1", field="options.delta"),
            "options.delta: delta must be > 0, got -1",
            "parameter 'delta': delta must be > 0, got -1",
            "option 'delta': delta must be > 0, got -1",
        ),
        (
            InvalidInputError("value is NaN", field="y_pred", index=(0, 1)),
            "y_pred at index [0, 1]: value is NaN",
            "input 'y_pred' at index [0, 1]: value is NaN",
            "y_pred at index [0, 1]: value is NaN",
        ),
        (  # a message that starts with the name it would be prefixed with stands alone
            InvalidInputError("y_pred has shape [3] but y_true has shape [2]", field="y_pred"),
            "y_pred has shape [3] but y_true has shape [2]",
            "input 'y_pred': y_pred has shape [3] but y_true has shape [2]",
            "y_pred has shape [3] but y_true has shape [2]",
        ),
        (
            InvalidInputError("reduction must be one of ...", field="reduction"),
            "reduction must be one of ...",
            "parameter 'reduction': reduction must be one of ...",
            "reduction must be one of ...",
        ),
        (LossError("wrong"), "wrong", "wrong", "wrong"),
        (
            UnknownLossError("msee", ["mse", "msle"]),
            "unknown loss 'msee'; did you mean 'mse', 'msle'?",
            "unknown model 'msee'; did you mean 'mse', 'msle'?",
            "unknown loss 'msee'; did you mean 'mse', 'msle'?",
        ),
    ],
)
def test_one_wording_named_per_protocol(error: LossError, v1: str, v2: str, cli: str) -> None:
    assert [report(error, words).detail for words in (V1, V2, CLI)] == [v1, v2, cli]


def test_status_slug_and_location() -> None:
    option = report(InvalidOptionError("bad", field="options.delta"), V1, ("items", 2))
    assert (option.status, option.slug) == (422, "invalid-option")
    assert option.errors == ((("items", 2, "options", "delta"), "bad"),)
    tensor = report(InvalidInputError("bad", field="y_true", index=(1, 0)), V2)
    assert (tensor.status, tensor.slug) == (400, "invalid-input")
    assert tensor.errors == ((("y_true", 1, 0), "bad"),)
    unknown = report(UnknownLossError("nope", []), V1)
    assert (unknown.status, unknown.slug, unknown.errors[0][0]) == (
        404,
        "unknown-loss",
        ("path", "name"),
    )
    in_batch = report(UnknownLossError("nope", []), V1, ("items", 0, "loss"))
    assert in_batch.errors[0][0] == ("items", 0, "loss")


class Pair(BaseModel):
    model_config = ConfigDict(extra="forbid")
    y_true: list[Any]
    y_pred: list[Any]
    options: dict[str, Any] = {}


def errors_of(data: Any) -> list[Any]:
    with pytest.raises(ValidationError) as info:
        Pair.model_validate(data)
    return info.value.errors(include_url=False)  # type: ignore[return-value]


def test_validation_locations_per_protocol() -> None:
    errors = errors_of({"y_true": [1]})
    assert validation_report(errors, V1, ("items", 3)).detail == "/items/3/y_pred: Field required"
    assert validation_report(errors, V2, ("inputs", 0)).detail == "inputs[0].y_pred: Field required"
    assert validation_report(errors, V1).status == 422
    assert validation_report(errors, V2).status == 400


def test_detail_spells_out_three_errors() -> None:
    errors = errors_of({"a": 1, "b": 2, "c": 3, "d": 4, "y_true": [1], "y_pred": [1]})
    assert validation_report(errors, V1).detail.endswith("(and 1 more)")


def test_option_beside_the_tensors() -> None:
    errors = errors_of({"y_true": [1], "y_pred": [1], "from_logits": True})
    found = validation_report(errors, V1, fields=Pair.model_fields)
    assert found.errors == (
        (
            ("from_logits",),
            '"from_logits" is an option: send it inside "options", '
            '{"options": {"from_logits": true}}',
        ),
    )
    no_options = validation_report(errors, V1, fields=("y_true", "y_pred"))  # a stream line
    assert 'send it in the query, ?options={"from_logits": true}' in no_options.detail
    on_v2 = validation_report(errors, V2, fields=("inputs", "parameters"))
    assert '{"parameters": {"from_logits": true}}' in on_v2.detail


def test_camel_case_replaces_its_missing_twin() -> None:
    errors = errors_of({"yTrue": [1], "yPred": [1]})
    found = validation_report(errors, V1, fields=Pair.model_fields)
    assert [(loc, msg) for loc, msg in found.errors] == [
        (("yTrue",), 'unknown field "yTrue"; did you mean "y_true"?'),
        (("yPred",), 'unknown field "yPred"; did you mean "y_pred"?'),
    ]


def test_malformed_json_is_400_in_every_protocol() -> None:
    with pytest.raises(ValidationError) as info:
        Pair.model_validate_json(b"{")
    errors = info.value.errors(include_url=False)
    for words in (V1, V2):
        found = validation_report(errors, words, ("line", 2))
        assert (found.status, found.slug) == (400, "malformed-json")
        assert found.detail.startswith("malformed JSON: EOF")
        assert found.errors[0][0] == ("line", 2)
