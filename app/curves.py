"""Loss curves: which picture each loss gets, and its numbers from the engine.

A curve plots one loss against one varied number ``x`` (a prediction, or one component of a
predicted vector) for a few fixed ``y_true`` values. Each loss has a *recipe*: the ``y_true``
values, how ``x`` becomes a ``y_pred`` sample (for a vector loss the other components are held
fixed, and the subtitle says how), and a default range for ``x``. The loss values themselves
come from the engine (:func:`app.losses.grid.evaluate_grid`), so a curve shows what a request
returns. Pure: no HTTP, no SVG (``app/plot.py`` draws a :class:`CurveData`).

Two losses draw the same picture only when they are the same function on it (:data:`IDENTICAL`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.losses import InvalidInputError, LossSpec
from app.losses.grid import evaluate_grid
from app.losses.numerics import FloatArray
from app.losses.options import bind_options
from app.plot import Chart, Series

#: How many points a curve takes: default and bounds.
DEFAULT_POINTS, MIN_POINTS, MAX_POINTS = 200, 2, 1000
#: The largest |min| and |max| of a range: past it a float32 loss means little.
MAX_BOUND = 1e6
#: Pairs of losses that are the same function on their default pictures, and why.
IDENTICAL: dict[frozenset[str], str] = {
    frozenset({"categorical_crossentropy", "sparse_categorical_crossentropy"}): (
        "sparse labels are class indices: label 0 is the one-hot row [1, 0, 0]"
    ),
    frozenset({"dice", "tversky"}): "Tversky with alpha = beta = 0.5 (its default) is Dice",
}
#: Probabilities: an open interval clear of the cross-entropies' clipping at 1e-7.
PROBABILITY = (0.01, 0.99)
LOGITS = (-6.0, 6.0)
SCORES = (-3.0, 3.0)

Build = Callable[[FloatArray], FloatArray]


@dataclass(frozen=True)
class Recipe:
    """How one loss is pictured: ``y_true`` values (legend label, sample), how the varied
    number becomes ``y_pred`` rows, what the x axis shows, what is held fixed, the default
    range."""

    y_trues: tuple[tuple[str, tuple[float, ...]], ...]
    build: Build
    x_label: str
    subtitle: str
    domain: tuple[float, float]


@dataclass(frozen=True)
class CurveData:
    """A computed curve: ``xs`` and one series of loss values per ``y_true``, with its words."""

    loss: str
    title: str
    subtitle: str
    x_label: str
    xs: FloatArray
    series: tuple[tuple[str, FloatArray], ...]

    def chart(self) -> Chart:
        """The curve as a :class:`~app.plot.Chart` for :func:`app.plot.render_svg`."""
        return Chart(
            title=self.title,
            subtitle=self.subtitle,
            x_label=self.x_label,
            y_label="loss",
            xs=self.xs.tolist(),
            series=[Series(label, ys.tolist()) for label, ys in self.series],
        )


def _scalar(xs: FloatArray) -> FloatArray:
    return xs[:, np.newaxis]


def _share(xs: FloatArray) -> FloatArray:
    """``[p, (1 - p) / 2, (1 - p) / 2]``: p on class 0, the rest shared by classes 1 and 2."""
    rest = (1.0 - xs) / 2.0
    return np.stack([xs, rest, rest], axis=1)


def _fixed(*others: float) -> Build:
    """``[x, *others]``: the first component varies, the others are held at ``others``."""

    def build(xs: FloatArray) -> FloatArray:
        return np.column_stack([xs, *(np.full_like(xs, v) for v in others)])

    return build


def _labels(*values: float, name: str = "y_true") -> tuple[tuple[str, tuple[float, ...]], ...]:
    return tuple((f"{name} = {v:g}", (v,)) for v in values)


def _vectors(*rows: tuple[float, ...]) -> tuple[tuple[str, tuple[float, ...]], ...]:
    return tuple((f"y_true = [{', '.join(f'{v:g}' for v in row)}]", row) for row in rows)


ONE_HOT = _vectors((1, 0, 0), (0, 1, 0))
CLASS_INDICES = tuple((f"y_true = {i} (class index)", (float(i),)) for i in (0, 1))
SCALAR = "y_true and y_pred are single values"


def _classes(y_trues: tuple[tuple[str, tuple[float, ...]], ...], logits: bool) -> Recipe:
    """Three classes, class 0's prediction varied: a probability shared out, or a logit."""
    if logits:
        return Recipe(
            y_trues, _fixed(0.0, 0.0), "y_pred[0] (logit)", "3 classes; logits [x, 0, 0]", LOGITS
        )
    return Recipe(
        y_trues, _share, "y_pred[0] = p", "3 classes; y_pred = [p, (1-p)/2, (1-p)/2]", PROBABILITY
    )


def _binary(logits: bool) -> Recipe:
    if logits:
        return Recipe(_labels(0, 1), _scalar, "y_pred (logit)", SCALAR, LOGITS)
    return Recipe(_labels(0, 1), _scalar, "y_pred (probability)", SCALAR, PROBABILITY)


def recipe(spec: LossSpec, options: Mapping[str, Any]) -> Recipe:
    """The picture of ``spec`` with its bound ``options`` (``from_logits`` changes it)."""
    logits = bool(options.get("from_logits", False))
    name = spec.name
    if name in ("mean_squared_error", "mean_absolute_error", "log_cosh", "huber"):
        return Recipe(_labels(-1, 0, 1), _scalar, "y_pred", SCALAR, SCORES)
    if name == "mean_absolute_percentage_error":
        return Recipe(_labels(0.5, 1, 2), _scalar, "y_pred", SCALAR, SCORES)
    if name == "mean_squared_logarithmic_error":
        return Recipe(_labels(0, 1, 3), _scalar, "y_pred", SCALAR, (0.0, 5.0))
    if name == "poisson":
        return Recipe(_labels(0, 1, 3), _scalar, "y_pred (rate)", SCALAR, (0.05, 5.0))
    if name in ("hinge", "squared_hinge"):
        return Recipe(_labels(-1, 0, 1), _scalar, "y_pred (score)", SCALAR, SCORES)
    if name == "categorical_hinge":
        return Recipe(
            ONE_HOT,
            _fixed(0.5, -0.5),
            "y_pred[0] (score)",
            "3 classes; y_pred = [x, 0.5, -0.5]",
            SCORES,
        )
    if name in ("binary_crossentropy", "binary_focal_crossentropy"):
        return _binary(logits)
    if name in ("categorical_crossentropy", "categorical_focal_crossentropy"):
        return _classes(ONE_HOT, logits)
    if name == "sparse_categorical_crossentropy":
        return _classes(CLASS_INDICES, logits)
    if name == "kl_divergence":
        return _classes(_vectors((0.6, 0.2, 0.2), (0.2, 0.4, 0.4)), logits=False)
    if name == "cosine_similarity":
        return Recipe(
            _vectors((1, 0), (0, 1), (-1, 1)),
            _fixed(1.0),
            "y_pred[0]",
            "2 components; y_pred = [x, 1]",
            SCORES,
        )
    if name in ("dice", "tversky"):
        return Recipe(
            _vectors((1, 1, 0), (0, 1, 1)),
            _fixed(0.8, 0.2),
            "y_pred[0]",
            "3 components; y_pred = [p, 0.8, 0.2]",
            (0.0, 1.0),
        )
    if spec.flavour == "torch":
        return _torch_recipe(spec.class_name, options)
    raise LookupError(f"no curve recipe for {name}")  # a new loss needs one (a test checks)


def _torch_recipe(class_name: str, options: Mapping[str, Any]) -> Recipe:
    """The picture of a PyTorch loss (``y_pred`` is torch's input)."""
    if class_name in ("MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "GaussianNLLLoss"):
        return Recipe(_labels(-1, 0, 1), _scalar, "y_pred", SCALAR, SCORES)
    if class_name in ("BCELoss", "BCEWithLogitsLoss"):
        return _binary(logits=class_name == "BCEWithLogitsLoss")
    if class_name == "MultiLabelSoftMarginLoss":
        return _binary(logits=True)
    if class_name == "CrossEntropyLoss":
        return _classes(CLASS_INDICES, logits=True)
    if class_name == "NLLLoss":
        fixed = math.log(0.25)
        return Recipe(
            CLASS_INDICES,
            _fixed(fixed, fixed),
            "y_pred[0] (log-probability)",
            "3 classes; y_pred = [x, log 0.25, log 0.25]",
            (-5.0, 0.0),
        )
    if class_name == "KLDivLoss":
        fixed = math.log(0.25)
        return Recipe(
            _vectors((0.6, 0.2, 0.2), (0.2, 0.4, 0.4)),
            _fixed(fixed, fixed),
            "y_pred[0] (log-probability)",
            "3 components; y_pred = [x, log 0.25, log 0.25]",
            (-5.0, 0.0),
        )
    if class_name == "PoissonNLLLoss":
        if options.get("log_input", True):
            return Recipe(_labels(0, 1, 3), _scalar, "y_pred (log rate)", SCALAR, (-3.0, 3.0))
        return Recipe(_labels(0, 1, 3), _scalar, "y_pred (rate)", SCALAR, (0.05, 5.0))
    if class_name == "SoftMarginLoss":
        return Recipe(_labels(-1, 1), _scalar, "y_pred (score)", SCALAR, SCORES)
    if class_name == "HingeEmbeddingLoss":
        return Recipe(_labels(-1, 1), _scalar, "y_pred (distance)", SCALAR, (0.0, 3.0))
    if class_name == "MultiMarginLoss":
        return Recipe(
            CLASS_INDICES,
            _fixed(0.5, -0.5),
            "y_pred[0] (score)",
            "3 classes; y_pred = [x, 0.5, -0.5]",
            SCORES,
        )
    raise LookupError(f"no curve recipe for torch.nn.{class_name}")


def check_range(
    low: float, high: float, points: int, given: tuple[float | None, float | None] = (0.0, 0.0)
) -> None:
    """Refuse a range or point count a curve cannot be drawn from, naming the parameter.
    ``given`` is what the client sent for min and max: a None there was the loss's default,
    which the message then says (``min=5`` alone is refused because of max's default)."""
    for field, value in (("min", low), ("max", high)):
        if not math.isfinite(value) or abs(value) > MAX_BOUND:
            raise InvalidInputError(
                f"{field} must be a finite number in [-{MAX_BOUND:g}, {MAX_BOUND:g}], "
                f"got {value!r}",
                field=field,
            )
    if not low < high:
        default = ", the default"
        low_note = default if given[0] is None else ""
        high_note = default if given[1] is None else ""
        raise InvalidInputError(
            f"min ({low:g}{low_note}) must be less than max ({high:g}{high_note})", field="min"
        )
    if not MIN_POINTS <= points <= MAX_POINTS:
        raise InvalidInputError(
            f"points must be in [{MIN_POINTS}, {MAX_POINTS}], got {points}", field="points"
        )


def curve(
    spec: LossSpec,
    options: Mapping[str, Any] | None = None,
    low: float | None = None,
    high: float | None = None,
    points: int = DEFAULT_POINTS,
) -> CurveData:
    """The curve of ``spec`` with ``options`` over ``[low, high]`` (the recipe's default range
    where omitted) at ``points`` evenly spaced values. Raises a
    :class:`~app.losses.LossError` for bad options or a bad range.

    >>> from app.losses import resolve
    >>> c = curve(resolve("mse"), low=-2, high=2, points=5)
    >>> c.xs.tolist(), dict(c.series)["y_true = 0"].tolist()
    ([-2.0, -1.0, 0.0, 1.0, 2.0], [4.0, 1.0, 0.0, 1.0, 4.0])
    """
    bound = bind_options(spec.name, spec.options, options)
    pic = recipe(spec, bound)
    given = (low, high)
    low = pic.domain[0] if low is None else low
    high = pic.domain[1] if high is None else high
    check_range(low, high, points, given)
    xs = np.linspace(low, high, points)
    preds = pic.build(xs)
    series = tuple(
        (label, evaluate_grid(spec, y_true, preds, options=options))
        for label, y_true in pic.y_trues
    )
    changed = ", ".join(f"{k}={_shown(v)}" for k, v in bound.items() if v != _default(spec, k))
    title = spec.name + (f" ({changed})" if changed else "")
    return CurveData(spec.name, title, pic.subtitle, pic.x_label, xs, series)


def _default(spec: LossSpec, option: str) -> Any:
    return next(o.default for o in spec.options if o.name == option)


def _shown(value: Any) -> str:
    """An option's value as the query writes it (JSON: ``true``, ``[1, 2]``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(map(str, value)) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)
