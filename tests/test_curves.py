"""app/curves.py: each loss's picture, its numbers worked out by hand, and that no two losses
draw the same picture unless they are the same function (app.curves.IDENTICAL)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from app.curves import (
    IDENTICAL,
    LOGITS,
    MAX_BOUND,
    PROBABILITY,
    CurveData,
    curve,
    recipe,
)
from app.losses import (
    LOSSES,
    TORCH_LOSSES,
    InvalidInputError,
    InvalidOptionError,
    LossSpec,
    resolve,
)
from app.losses.options import bind_options

RTOL = 1e-5  # float32, as the engine computes by default


def series(name: str, options: dict[str, Any] | None = None, **kw: Any) -> CurveData:
    return curve(resolve(name), options, **kw)


def of(data: CurveData, label: str) -> np.ndarray:
    return dict(data.series)[label]


def test_mse_is_the_squared_distance() -> None:
    data = series("mse", low=-2, high=2, points=9)
    x = np.linspace(-2, 2, 9)
    assert data.xs.tolist() == x.tolist()
    assert of(data, "y_true = 0") == pytest.approx(x**2, rel=RTOL)  # y_true = 0: y_pred**2
    assert of(data, "y_true = 1") == pytest.approx((x - 1) ** 2, rel=RTOL)
    assert of(data, "y_true = -1") == pytest.approx((x + 1) ** 2, rel=RTOL)
    assert (data.x_label, data.subtitle, data.title) == (
        "y_pred",
        "y_true and y_pred are single values",
        "mean_squared_error",
    )


def test_default_ranges_follow_what_y_pred_means() -> None:
    assert series("mse").xs[[0, -1]].tolist() == [-3.0, 3.0]
    assert series("bce").xs[[0, -1]].tolist() == list(PROBABILITY)  # clear of the clip at 1e-7
    assert series("bce", {"from_logits": True}).xs[[0, -1]].tolist() == list(LOGITS)
    assert series("poisson").xs[0] > 0  # a rate
    assert len(series("mse").xs) == 200


def test_binary_crossentropy_by_hand() -> None:
    p = np.linspace(*PROBABILITY, 200)
    data = series("binary_crossentropy")
    assert of(data, "y_true = 1") == pytest.approx(-np.log(p), rel=RTOL)
    assert of(data, "y_true = 0") == pytest.approx(-np.log(1 - p), rel=RTOL)
    logits = series("binary_crossentropy", {"from_logits": True}, points=13)
    x = np.linspace(-6, 6, 13)
    assert of(logits, "y_true = 1") == pytest.approx(np.log1p(np.exp(-x)), rel=1e-4)
    assert logits.x_label == "y_pred (logit)"
    assert logits.title == "binary_crossentropy (from_logits=true)"


def test_categorical_losses_vary_one_class_and_say_so() -> None:
    p = np.linspace(*PROBABILITY, 200)
    data = series("categorical_crossentropy")
    assert data.subtitle == "3 classes; y_pred = [p, (1-p)/2, (1-p)/2]"
    assert of(data, "y_true = [1, 0, 0]") == pytest.approx(-np.log(p), rel=RTOL)
    assert of(data, "y_true = [0, 1, 0]") == pytest.approx(-np.log((1 - p) / 2), rel=RTOL)
    sparse = series("sparse_categorical_crossentropy")
    assert [label for label, _ in sparse.series] == [
        "y_true = 0 (class index)",
        "y_true = 1 (class index)",
    ]
    logits = series("categorical_crossentropy", {"from_logits": True}, points=5)
    x = np.linspace(-6, 6, 5)
    expected = -(x - np.log(np.exp(x) + 2))  # softmax of [x, 0, 0], class 0
    assert of(logits, "y_true = [1, 0, 0]") == pytest.approx(expected, rel=1e-4)
    assert logits.subtitle == "3 classes; logits [x, 0, 0]"


def test_hinge_labels_as_given_or_converted() -> None:
    x = np.linspace(-3, 3, 7)
    plain = series("hinge", points=7)
    assert of(plain, "y_true = -1") == pytest.approx(np.maximum(1 + x, 0))
    assert of(plain, "y_true = 0") == pytest.approx(np.ones(7))  # 0 * y_pred: no margin at all
    keras3 = series("hinge", {"convert_binary_labels": True}, points=7)
    assert of(keras3, "y_true = 0") == pytest.approx(np.maximum(1 + x, 0))  # 0 became -1
    assert of(keras3, "y_true = 1") == pytest.approx(np.maximum(1 - x, 0))


def test_options_change_the_numbers() -> None:
    x = np.linspace(-3, 3, 13)
    huber = of(series("huber", {"delta": 0.5}, points=13), "y_true = 0")
    expected = np.where(np.abs(x) <= 0.5, 0.5 * x**2, 0.5 * (np.abs(x) - 0.25))
    assert huber == pytest.approx(expected, rel=RTOL)
    smoothed = series("categorical_crossentropy", {"label_smoothing": 0.3})
    assert not np.allclose(
        of(smoothed, "y_true = [1, 0, 0]"),
        of(series("categorical_crossentropy"), "y_true = [1, 0, 0]"),
    )


def test_vector_losses_by_hand() -> None:
    x = np.linspace(-3, 3, 7)
    cosine = series("cosine_similarity", points=7)
    assert of(cosine, "y_true = [1, 0]") == pytest.approx(-x / np.sqrt(x**2 + 1), rel=RTOL)
    p = np.linspace(0, 1, 6)
    dice = of(series("dice", points=6), "y_true = [1, 1, 0]")
    assert dice == pytest.approx(1 - 2 * (p + 0.8) / (2 + p + 1.0), rel=1e-5)
    kl = series("kl_divergence", points=99, low=0.01, high=0.99)
    low = of(kl, "y_true = [0.6, 0.2, 0.2]")
    assert kl.xs[np.argmin(low)] == pytest.approx(0.6)  # zero where y_pred = y_true
    assert low.min() == pytest.approx(0.0, abs=1e-6)
    hinge = of(series("categorical_hinge", points=7), "y_true = [1, 0, 0]")
    assert hinge == pytest.approx(np.maximum(0.5 - x + 1, 0))


@pytest.mark.parametrize("spec", LOSSES, ids=lambda s: s.name)
def test_every_loss_has_a_finite_default_picture(spec: Any) -> None:
    data = curve(spec)
    assert len(data.series) >= 2
    for _, values in data.series:
        assert values.shape == data.xs.shape
        assert np.isfinite(values).all()
    pic = recipe(spec, bind_options(spec.name, spec.options, None))
    assert data.subtitle == pic.subtitle


def test_no_two_losses_draw_the_same_picture_unless_the_same_function() -> None:
    drawn = {spec.name: curve(spec) for spec in LOSSES}
    same = set()
    for a, b in itertools.combinations(drawn, 2):
        left, right = drawn[a], drawn[b]
        equal = (
            left.xs.shape == right.xs.shape
            and np.allclose(left.xs, right.xs)
            and len(left.series) == len(right.series)
            and all(
                np.allclose(u, v, rtol=1e-5, atol=1e-6)
                for (_, u), (_, v) in zip(left.series, right.series, strict=True)
            )
        )
        if equal:
            same.add(frozenset({a, b}))
    assert same == set(IDENTICAL)


def test_bad_ranges_name_the_parameter() -> None:
    mse = resolve("mse")
    cases = [
        ({"low": 1.0, "high": 1.0}, "min", "must be less than max"),
        ({"low": 5.0}, "min", "min (5) must be less than max (3, the default)"),
        ({"low": float("nan")}, "min", "finite"),
        ({"high": float("inf")}, "max", "finite"),
        ({"low": -2 * MAX_BOUND}, "min", "[-1e+06, 1e+06]"),
        ({"points": 1}, "points", "[2, 1000]"),
        ({"points": 1001}, "points", "[2, 1000]"),
    ]
    for kwargs, field, words in cases:
        with pytest.raises(InvalidInputError, match=None) as caught:
            curve(mse, **kwargs)
        assert caught.value.field == field
        assert words in str(caught.value), (kwargs, str(caught.value))


def test_bad_options_are_the_engines_errors() -> None:
    with pytest.raises(InvalidOptionError, match="delta"):
        curve(resolve("huber"), {"delta": -1})
    with pytest.raises(InvalidOptionError, match="takes no options"):
        curve(resolve("mse"), {"delta": 1})


@pytest.mark.parametrize("spec", TORCH_LOSSES, ids=lambda s: s.name)
def test_every_torch_loss_has_a_finite_curve(spec: LossSpec) -> None:
    data = curve(spec, points=21)
    assert data.series and all(np.isfinite(ys).any() for _, ys in data.series)


def test_a_torch_curve_is_the_engines_numbers() -> None:
    mse = dict(curve(resolve("mse"), low=-2, high=2, points=5).series)
    torch_mse = dict(curve(resolve("torch.mse_loss"), low=-2, high=2, points=5).series)
    assert mse.keys() == torch_mse.keys()
    for label, ys in mse.items():
        np.testing.assert_array_equal(torch_mse[label], ys)
    ce = dict(curve(resolve("torch.cross_entropy"), low=-1, high=1, points=2).series)
    assert ce.keys() == {"y_true = 0 (class index)", "y_true = 1 (class index)"}
