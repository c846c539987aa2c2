"""Invalid requests raise the engine's typed errors, naming the field, the index and the problem.

Every case states the error class, ``field``, ``index`` and words the message must contain, so a
client (or the HTTP layer's problem+json) can point at the offending value.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import pytest

from app.losses import (
    InvalidInputError,
    InvalidOptionError,
    LossError,
    UnknownLossError,
    evaluate,
    to_array,
)

GOOD = [[0.1, 0.9], [0.8, 0.2]]


def raises(
    error: type[LossError],
    field: str,
    index: tuple[int, ...],
    *words: str,
    loss: str = "mse",
    y_true: Any = GOOD,
    y_pred: Any = GOOD,
    **kwargs: Any,
) -> LossError:
    with pytest.raises(error) as info:
        evaluate(loss, y_true, y_pred, **kwargs)
    err = info.value
    assert err.field == field, err.message
    assert err.index == index, err.message
    for word in words:
        assert word in err.message, f"{word!r} not in {err.message!r}"
    assert str(err) == err.message
    return err


# --- tensors --------------------------------------------------------------------------------


def test_shape_mismatch() -> None:
    raises(InvalidInputError, "y_pred", (), "[2, 2]", "[2, 3]", "must match",
           y_true=[[1, 2, 3], [4, 5, 6]], y_pred=GOOD)  # fmt: skip


def test_shape_mismatch_same_size() -> None:
    # Same number of elements, different shape: never reshaped silently.
    raises(InvalidInputError, "y_pred", (), "[4]", "[2, 2]", y_true=GOOD, y_pred=[1, 2, 3, 4])


def test_trailing_one_on_both_sides_is_still_a_mismatch() -> None:
    raises(InvalidInputError, "y_pred", (), y_true=[[1], [2], [3]], y_pred=[[1, 2], [3, 4]])


@pytest.mark.parametrize(
    ("labels", "index", "shown"),
    [([0, 3], (1,), "label 3"), ([2, -1], (1,), "label -1"), ([7, 0], (0,), "label 7")],
)
def test_sparse_labels_out_of_range(labels: list[int], index: tuple[int, ...], shown: str) -> None:
    raises(InvalidInputError, "y_true", index, shown, "[0, 2]", "3 classes",
           loss="sparse_categorical_crossentropy", y_true=labels,
           y_pred=[[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])  # fmt: skip


def test_sparse_labels_non_integer() -> None:
    raises(InvalidInputError, "y_true", (1, 0), "1.5", "integer",
           loss="sparse_categorical_crossentropy", y_true=[[0, 1], [1.5, 2]],
           y_pred=np.full((2, 2, 3), 1 / 3))  # fmt: skip


def test_sparse_ignore_class_is_allowed_and_named() -> None:
    y_pred = [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]
    ok = evaluate("sparse_categorical_crossentropy", [0, 255], y_pred,
                  options={"ignore_class": 255})  # fmt: skip
    np.testing.assert_allclose(ok.result.value, -np.log(0.2), rtol=1e-6)
    raises(InvalidInputError, "y_true", (1,), "label 254", "ignore_class 255",
           loss="sparse_categorical_crossentropy", y_true=[0, 254], y_pred=y_pred,
           options={"ignore_class": 255})  # fmt: skip


def test_sparse_label_shape() -> None:
    raises(InvalidInputError, "y_true", (), "[2]", "class axis",
           loss="sparse_categorical_crossentropy", y_true=[[0, 1, 2]],
           y_pred=[[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])  # fmt: skip


@pytest.mark.parametrize("field", ["y_true", "y_pred"])
def test_scalar_tensor(field: str) -> None:
    args = {"y_true": GOOD, "y_pred": GOOD, field: 0.5}
    raises(InvalidInputError, field, (), "rank >= 1", "scalar", **args)


@pytest.mark.parametrize("empty", [[], [[]], np.zeros((3, 0))])
def test_empty_tensor(empty: Any) -> None:
    raises(InvalidInputError, "y_true", (), "empty", y_true=empty, y_pred=empty)


@pytest.mark.parametrize(
    ("bad", "index", "word"),
    [(float("nan"), (1, 0), "NaN"), (float("inf"), (1, 0), "infinite"),
     (-float("inf"), (1, 0), "infinite"), (1e39, (1, 0), "too large")],
)  # fmt: skip
@pytest.mark.parametrize("field", ["y_true", "y_pred", "sample_weight"])
def test_non_finite_values(field: str, bad: float, index: tuple[int, ...], word: str) -> None:
    tensor = [[0.5, 0.5], [bad, 0.5]]
    args: dict[str, Any] = {"y_true": GOOD, "y_pred": GOOD}
    if field == "sample_weight":
        args["sample_weight"] = [[1.0, 1.0], [bad, 1.0]][1]  # one weight per sample
        index = index[1:]
    else:
        args[field] = tensor
    raises(InvalidInputError, field, index, word, "finite", **args)


def test_non_finite_numpy_input() -> None:
    y_pred = np.ones((2, 3, 4), dtype=np.float64)
    y_pred[1, 2, 3] = np.nan
    raises(InvalidInputError, "y_pred", (1, 2, 3), "NaN", y_true=np.ones((2, 3, 4)), y_pred=y_pred)


def test_ragged_rows() -> None:
    rows = [[1, 2, 3, 4, 5]] * 3 + [[1, 2, 3, 4]] + [[1, 2, 3, 4, 5]]
    err = raises(InvalidInputError, "y_true", (3,), y_true=rows, y_pred=np.zeros((5, 5)))
    assert err.message == "row 3 has 4 values, expected 5"


def test_ragged_deeper() -> None:
    y_pred = [[[1, 2], [3, 4]], [[5, 6], [7]]]
    err = raises(InvalidInputError, "y_pred", (1, 1), y_true=np.zeros((2, 2, 2)), y_pred=y_pred)
    assert err.message == "row 1/1 has 1 values, expected 2"


def test_ragged_number_where_a_row_belongs() -> None:
    raises(InvalidInputError, "y_true", (1,), "expected a list of 2 values", "number 3",
           y_true=[[1, 2], 3], y_pred=GOOD)  # fmt: skip


def test_list_where_a_number_belongs() -> None:
    raises(InvalidInputError, "y_pred", (0, 1), "expected a number", "list of 2 values",
           y_true=[[1, 2], [3, 4]], y_pred=[[1, [2, 3]], [3, 4]])  # fmt: skip


@pytest.mark.parametrize(
    ("value", "shown"), [("a", "string 'a'"), (None, "null"), ({"x": 1}, "object")]
)
def test_non_numeric_values(value: Any, shown: str) -> None:
    raises(InvalidInputError, "y_true", (1, 0), "expected a number", shown,
           y_true=[[0.1, 0.2], [value, 0.3]], y_pred=GOOD)  # fmt: skip


def test_string_tensor() -> None:
    raises(InvalidInputError, "y_pred", (), y_true=GOOD, y_pred="0.5")


def test_to_array_directly() -> None:
    with pytest.raises(InvalidInputError) as info:
        to_array([[1, 2], [3]], "y_true")
    assert (info.value.field, info.value.index) == ("y_true", (1,))
    with pytest.raises(InvalidInputError) as info:
        to_array([1.0], "y_true", "float16")
    assert info.value.field == "dtype"


# --- options --------------------------------------------------------------------------------


def test_unknown_option_lists_what_the_loss_takes() -> None:
    err = raises(InvalidOptionError, "options.delta", (), "'delta'", "categorical_crossentropy",
                 "axis, from_logits, label_smoothing", loss="categorical_crossentropy",
                 options={"delta": 1.0})  # fmt: skip
    assert "; its options are axis, from_logits, label_smoothing" in err.message


def test_unknown_option_for_a_loss_without_options() -> None:
    raises(InvalidOptionError, "options.from_logits", (), "mean_squared_error",
           "it takes no options", options={"from_logits": True})  # fmt: skip


@pytest.mark.parametrize(
    ("loss", "options", "field", "words"),
    [
        ("huber", {"delta": "1"}, "options.delta", ("finite number", "'1'")),
        ("huber", {"delta": True}, "options.delta", ("finite number", "True")),
        ("huber", {"delta": float("nan")}, "options.delta", ("finite number",)),
        ("huber", {"delta": 0}, "options.delta", ("> 0", "got 0")),
        ("huber", {"delta": -2.5}, "options.delta", ("> 0",)),
        ("binary_crossentropy", {"from_logits": 1}, "options.from_logits", ("true or false",)),
        ("binary_crossentropy", {"from_logits": "yes"}, "options.from_logits", ("true or false",)),
        ("binary_crossentropy", {"label_smoothing": 1.5}, "options.label_smoothing", ("[0, 1]",)),
        ("binary_crossentropy", {"label_smoothing": -0.1}, "options.label_smoothing", ("[0, 1]",)),
        ("binary_focal_crossentropy", {"alpha": 2.0}, "options.alpha", ("[0, 1]",)),
        ("binary_focal_crossentropy", {"gamma": -1.0}, "options.gamma", (">= 0",)),
        ("binary_focal_crossentropy", {"apply_class_balancing": "true"},
         "options.apply_class_balancing", ("true or false",)),
        ("categorical_focal_crossentropy", {"gamma": [2.0]}, "options.gamma", ("finite number",)),
        ("tversky", {"alpha": -0.5}, "options.alpha", (">= 0",)),
        ("tversky", {"beta": None}, "options.beta", ("finite number",)),
        ("hinge", {"convert_binary_labels": 0}, "options.convert_binary_labels",
         ("true or false",)),
        ("sparse_categorical_crossentropy", {"ignore_class": 1.5}, "options.ignore_class",
         ("integer",)),
        ("sparse_categorical_crossentropy", {"ignore_class": True}, "options.ignore_class",
         ("integer",)),
        ("categorical_crossentropy", {"axis": 1.5}, "options.axis", ("integer",)),
        ("categorical_crossentropy", {"axis": None}, "options.axis", ("integer",)),
        ("cosine_similarity", {"axis": "0"}, "options.axis", ("integer",)),
        ("dice", {"axis": []}, "options.axis", ("non-empty list",)),
        ("dice", {"axis": [1, 1]}, "options.axis", ("distinct",)),
        ("dice", {"axis": [1, "2"]}, "options.axis", ("integer",)),
    ],
)  # fmt: skip
def test_bad_option_values(
    loss: str, options: dict[str, Any], field: str, words: tuple[str, ...]
) -> None:
    y_true, y_pred = [[0.0, 1.0], [1.0, 0.0]], [[0.3, 0.7], [0.6, 0.4]]
    if loss.startswith("sparse"):
        y_true = [1, 0]
    raises(InvalidOptionError, field, (), *words, loss=loss, y_true=y_true, y_pred=y_pred,
           options=options)  # fmt: skip


def test_whole_number_floats_are_accepted_as_integers() -> None:
    # JSON has one number type: 1.0 is the integer 1 (but 1.5 is not; see above).
    a = evaluate("categorical_crossentropy", GOOD, GOOD, options={"axis": 1.0}).result.value
    b = evaluate("categorical_crossentropy", GOOD, GOOD, options={"axis": 1}).result.value
    assert a == b


@pytest.mark.parametrize(
    ("loss", "axis", "rank_text"),
    [
        ("categorical_crossentropy", 2, "axis 2 is out of range for a tensor of rank 2"),
        ("binary_crossentropy", -3, "axis -3 is out of range for a tensor of rank 2"),
        ("cosine_similarity", 5, "axis 5 is out of range for a tensor of rank 2"),
        ("sparse_categorical_crossentropy", 2, "axis 2 is out of range for a tensor of rank 2"),
        ("dice", [1, 2], "axis 2 is out of range for a tensor of rank 2"),
        ("dice", [1, -1], "names the same axis twice"),
        ("tversky", -3, "axis -3 is out of range"),
    ],
)
def test_bad_axis(loss: str, axis: Any, rank_text: str) -> None:
    y_true: Any = [1, 0] if loss.startswith("sparse") else GOOD
    raises(InvalidOptionError, "options.axis", (), rank_text, loss=loss, y_true=y_true,
           y_pred=GOOD, options={"axis": axis})  # fmt: skip


# --- reduction, dtype, sample_weight, loss name ---------------------------------------------


@pytest.mark.parametrize("reduction", ["avg", "", "SUM", "auto", "batchmean"])
def test_bad_reduction(reduction: Any) -> None:
    raises(InvalidInputError, "reduction", (), "reduction must be one of", "sum_over_batch_size",
           reduction=reduction)  # fmt: skip


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "mean_with_sample_weight", "x"])
def test_a_torch_loss_takes_torch_reductions_only(reduction: str) -> None:
    raises(InvalidInputError, "reduction", (), "reduction must be one of", "'mean', 'sum'",
           loss="torch.nn.MSELoss", reduction=reduction)  # fmt: skip


def test_batchmean_is_kl_div_only() -> None:
    raises(InvalidInputError, "reduction", (), "reduction must be one of",
           loss="torch.nn.MSELoss", reduction="batchmean")  # fmt: skip
    assert evaluate("torch.kl_div", GOOD, GOOD, reduction="batchmean").reduction == "batchmean"


def test_no_reduction_means_the_loss_default() -> None:
    assert evaluate("mse", GOOD, GOOD).reduction == "sum_over_batch_size"
    assert evaluate("torch.nn.MSELoss", GOOD, GOOD).reduction == "mean"


def test_sample_weight_on_a_torch_loss_points_to_weight() -> None:
    raises(InvalidInputError, "sample_weight", (), "options.weight",
           loss="torch.nn.BCELoss", sample_weight=[1.0])  # fmt: skip


def test_torch_class_indices_are_checked() -> None:
    scores = [[0.0, 1.0, 2.0], [1.0, 0.0, 0.0]]
    raises(InvalidInputError, "y_true", (1,), "out of range", loss="torch.cross_entropy",
           y_true=[0, 3], y_pred=scores)  # fmt: skip
    raises(InvalidInputError, "y_true", (0,), "whole numbers", loss="torch.nll_loss",
           y_true=[0.5, 1], y_pred=scores)  # fmt: skip
    raises(InvalidInputError, "y_true", (), "class indices need", loss="torch.cross_entropy",
           y_true=[0, 1, 2], y_pred=scores)  # fmt: skip
    raises(InvalidOptionError, "options.weight", (), "each of the 3 classes",
           loss="torch.cross_entropy", y_true=[0, 1], y_pred=scores,
           options={"weight": [1.0, 2.0]})  # fmt: skip


def test_bce_takes_probabilities() -> None:
    raises(InvalidInputError, "y_pred", (1,), "[0, 1]", loss="torch.BCELoss",
           y_true=[0.0, 1.0], y_pred=[0.5, 1.5])  # fmt: skip


def test_tensor_options_are_checked() -> None:
    raises(InvalidOptionError, "options.var", (), ">= 0", loss="torch.gaussian_nll_loss",
           options={"var": [1.0, -1.0]})  # fmt: skip
    raises(InvalidOptionError, "options.weight", (), "a number or a list",
           loss="torch.BCELoss", options={"weight": "heavy"})  # fmt: skip
    raises(InvalidInputError, "options.weight", (1,), "expected a number",
           loss="torch.BCELoss", options={"weight": [1, [2]]})  # fmt: skip


@pytest.mark.parametrize("dtype", ["float16", "int32", "float", "", None])
def test_bad_dtype(dtype: Any) -> None:
    raises(InvalidInputError, "dtype", (), "dtype must be one of", "float32", "float64",
           dtype=dtype)  # fmt: skip


@pytest.mark.parametrize(
    ("weights", "shown"),
    [([1.0, 2.0, 3.0], "[3]"), ([[1.0, 2.0]], "[1, 2]"), ([[1.0], [2.0], [3.0]], "[3, 1]"),
     (np.ones((2, 2, 2)), "[2, 2, 2]")],
)  # fmt: skip
def test_bad_sample_weight_shape(weights: Any, shown: str) -> None:
    raises(InvalidInputError, "sample_weight", (), shown, "per-sample loss shape [2]",
           sample_weight=weights)  # fmt: skip


def test_bad_sample_weight_values() -> None:
    raises(InvalidInputError, "sample_weight", (1,), "NaN", sample_weight=[1.0, float("nan")])
    raises(InvalidInputError, "sample_weight", (0,), "string", sample_weight=["x", 1.0])
    raises(InvalidInputError, "sample_weight", (), "empty", sample_weight=[])


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("mean_sqared_error", "mean_squared_error"),
        ("msee", "mse"),
        ("binary_crossentropyy", "binary_crossentropy"),
        ("BinaryCrossEntrop", "BinaryCrossentropy"),
        ("huberr", "huber"),
        ("loss_logcos", "loss_logcosh"),
        ("kl_divergance", "kl_divergence"),
    ],
)
def test_unknown_loss_suggests(name: str, suggestion: str) -> None:
    with pytest.raises(UnknownLossError) as info:
        evaluate(name, GOOD, GOOD)
    err = info.value
    assert err.field == "loss" and err.name == name
    assert 1 <= len(err.suggestions) <= 3
    assert suggestion.lower() in [s.lower() for s in err.suggestions], err.suggestions
    assert repr(name) in err.message and "did you mean" in err.message


def test_unknown_loss_without_anything_close() -> None:
    with pytest.raises(UnknownLossError) as info:
        evaluate("zzzzqqqq", GOOD, GOOD)
    assert info.value.suggestions == []
    assert info.value.message == "unknown loss 'zzzzqqqq'"


def test_loss_name_is_checked_before_tensors() -> None:
    # A bad name is a 404 even when the tensors are bad too.
    with pytest.raises(UnknownLossError):
        evaluate("nope_loss", [[1, 2], [3]], "x")


def test_every_error_is_a_loss_error() -> None:
    for cls in (UnknownLossError, InvalidInputError, InvalidOptionError):
        assert issubclass(cls, LossError)
    with pytest.raises(LossError):
        evaluate("mse", [[1, 2]], [[1, 2, 3]])


# --- issue 11: values past what Python's float or NumPy can hold ------------------------------

HUGE = 10**400  # JSON's integer literal "1" followed by 400 zeros, as the JSON parsers give it


@pytest.mark.parametrize(
    ("loss", "option"),
    [("huber", "delta"), ("binary_focal_crossentropy", "gamma"), ("tversky", "alpha")],
)
@pytest.mark.parametrize("sign", [1, -1])
def test_an_integer_past_float_range_is_an_invalid_option(
    loss: str, option: str, sign: int
) -> None:
    # float(10**400) raises OverflowError: the option is refused as out of range, not a crash.
    err = raises(InvalidOptionError, f"options.{option}", (), option, "finite number",
                 loss=loss, options={option: sign * HUGE})  # fmt: skip
    assert len(err.message) < 200, err.message  # the 401 digits are not echoed back whole


def test_an_axis_past_any_rank_is_out_of_range() -> None:
    err = raises(InvalidOptionError, "options.axis", (), "out of range",
                 loss="categorical_crossentropy", options={"axis": HUGE})  # fmt: skip
    assert len(err.message) < 200, err.message


def nested(rank: int, value: float = 0.5) -> Any:
    """One number nested in ``rank`` lists: a tensor of shape (1,) * rank."""
    data: Any = value
    for _ in range(rank):
        data = [data]
    return data


def test_max_rank_is_numpys_limit() -> None:
    from app.losses import MAX_RANK

    assert np.empty((1,) * MAX_RANK).ndim == MAX_RANK
    with pytest.raises(ValueError):
        np.empty((1,) * (MAX_RANK + 1))


@pytest.mark.parametrize("field", ["y_true", "y_pred"])
def test_a_rank_past_numpys_limit_is_named(field: str) -> None:
    # np.asarray refuses 65 levels of nesting; the error says why, not "not rectangular".
    tensors = {"y_true": nested(64), "y_pred": nested(64), field: nested(65)}
    raises(InvalidInputError, field, (), "rank 65", "at most 64", **tensors)


def test_sparse_labels_at_numpys_rank_limit() -> None:
    # y_pred of rank 64 (one class), labels of rank 63: take_along_axis cannot index 64 axes, the
    # loss must still answer. One class, p = 1 clipped to 1 - 1e-7: -log(1 - 1e-7) in float32.
    result = evaluate(
        "sparse_categorical_crossentropy", nested(63, 0), nested(64, 1.0), dtype="float64"
    ).result
    assert result.per_sample.shape == (1,) * 63
    assert result.mean == pytest.approx(-np.log(1 - 1e-7), rel=1e-6)


def test_every_loss_at_numpys_rank_limit_answers_or_refuses() -> None:
    from app.losses import LOSSES

    for spec in LOSSES:
        y_true = nested(63, 0) if spec.sparse_labels else nested(64, 0.0)
        # Refused with a located error is fine; anything else (IndexError, ...) is not.
        with contextlib.suppress(LossError):
            evaluate(spec, y_true, nested(64, 0.5))


@pytest.mark.parametrize("sign", [1, -1])
def test_an_integer_past_float_range_in_a_tensor_is_located(sign: int) -> None:
    # np.asarray keeps 10**400 as a Python object; the error says which value, not "not
    # rectangular".
    raises(
        InvalidInputError, "y_pred", (1, 0), "too large", y_pred=[[0.5, 0.5], [sign * HUGE, 0.5]]
    )


def test_a_batch_empty_after_ignore_index_is_nan_and_counted() -> None:
    r = evaluate("torch.nn.CrossEntropyLoss", [-100, -100], [[0.0, 1.0], [1.0, 0.0]]).result
    assert r.count == 0 and r.sum == 0 and np.isnan(r.value) and r.non_finite == 1
    assert r.per_sample.tolist() == [0.0, 0.0]
