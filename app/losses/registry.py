"""The registry: every loss, the names it answers to, its options, formula and documentation.

Names resolve case-insensitively: the Keras 3 function name (canonical), Keras 2 and short
aliases, the Keras 3 class name, and the R interface's ``loss_`` prefix before any of those.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.losses import margin, overlap, probabilistic, regression, similarity
from app.losses.errors import UnknownLossError
from app.losses.options import OptionSpec
from app.losses.probabilistic import sparse_valid_mask

LossFn = Callable[..., Any]

FROM_LOGITS = OptionSpec(
    "from_logits",
    "boolean",
    False,
    "Treat y_pred as logits (unnormalised scores) instead of probabilities.",
)
LABEL_SMOOTHING = OptionSpec(
    "label_smoothing",
    "number",
    0.0,
    "Move this share of each target's mass evenly over the classes.",
    minimum=0.0,
    maximum=1.0,
)
CLASS_AXIS = OptionSpec("axis", "integer", -1, "The class axis, reduced to give per-sample losses.")
MEAN_AXIS = OptionSpec("axis", "integer", -1, "The axis averaged to give per-sample losses.")
GAMMA = OptionSpec(
    "gamma",
    "number",
    2.0,
    "Focusing exponent: higher values down-weight easy examples more.",
    minimum=0.0,
)
FOCAL_ALPHA = OptionSpec(
    "alpha", "number", 0.25, "Weight of the positive class.", minimum=0.0, maximum=1.0
)
CONVERT_BINARY_LABELS = OptionSpec(
    "convert_binary_labels",
    "boolean",
    False,
    "Keras 3 behaviour: when every label is 0 or 1, map them to -1 and 1 first. The default "
    "(false) uses y_true as given, as the seed documents and Keras 2 do.",
)
OVERLAP_AXES = OptionSpec(
    "axis",
    "axes",
    None,
    "Axes to reduce: null (Keras's default) gives one value for the whole batch; e.g. [1, 2] "
    "gives one value per sample.",
)


@dataclass(frozen=True)
class LossSpec:
    """Everything lossd knows about one loss."""

    name: str
    fn: LossFn
    family: str
    class_name: str
    formula: str
    doc: str
    aliases: tuple[str, ...] = ()
    options: tuple[OptionSpec, ...] = ()
    sparse_labels: bool = False
    mask: Callable[..., Any] | None = field(default=None, repr=False)

    def describe(self) -> dict[str, Any]:
        """The catalogue entry: every public field, options as dicts (the API's ``LossInfo``
        and ``lossd losses --json``)."""
        return {
            "name": self.name,
            "aliases": list(self.aliases),
            "class_name": self.class_name,
            "family": self.family,
            "formula": self.formula,
            "doc": self.doc,
            "options": [dataclasses.asdict(o) for o in self.options],
            "sparse_labels": self.sparse_labels,
        }

    @property
    def names(self) -> tuple[str, ...]:
        """Every spelling that resolves to this loss (case aside), canonical first."""
        base = (self.name, *self.aliases, self.class_name)
        return base + tuple(f"loss_{n}" for n in base)


LOSSES: tuple[LossSpec, ...] = (
    LossSpec(
        "mean_squared_error",
        regression.mean_squared_error,
        "regression",
        "MeanSquaredError",
        "mean((y_true - y_pred)^2, axis=-1)",
        "Average squared difference; in squared units of the target.",
        aliases=("mse", "MSE"),
    ),
    LossSpec(
        "mean_absolute_error",
        regression.mean_absolute_error,
        "regression",
        "MeanAbsoluteError",
        "mean(|y_true - y_pred|, axis=-1)",
        "Average absolute difference; in units of the target.",
        aliases=("mae", "MAE"),
    ),
    LossSpec(
        "mean_absolute_percentage_error",
        regression.mean_absolute_percentage_error,
        "regression",
        "MeanAbsolutePercentageError",
        "100 * mean(|y_true - y_pred| / max(|y_true|, 1e-7), axis=-1)",
        "Average absolute difference relative to the target, in percent. Zero targets "
        "divide by 1e-7.",
        aliases=("mape", "MAPE"),
    ),
    LossSpec(
        "mean_squared_logarithmic_error",
        regression.mean_squared_logarithmic_error,
        "regression",
        "MeanSquaredLogarithmicError",
        "mean((log(max(y_pred, 1e-7) + 1) - log(max(y_true, 1e-7) + 1))^2, axis=-1)",
        "Squared difference of log(1 + x): penalises relative rather than absolute error.",
        aliases=("msle", "MSLE"),
    ),
    LossSpec(
        "squared_hinge",
        margin.squared_hinge,
        "margin",
        "SquaredHinge",
        "mean(max(1 - y_true * y_pred, 0)^2, axis=-1)",
        "Squared hinge for labels in {-1, 1}. y_true is used as given unless "
        "convert_binary_labels is set (Keras 3 maps {0, 1} labels to {-1, 1}).",
        options=(CONVERT_BINARY_LABELS,),
    ),
    LossSpec(
        "hinge",
        margin.hinge,
        "margin",
        "Hinge",
        "mean(max(1 - y_true * y_pred, 0), axis=-1)",
        "Hinge (SVM) loss for labels in {-1, 1}. y_true is used as given unless "
        "convert_binary_labels is set (Keras 3 maps {0, 1} labels to {-1, 1}).",
        options=(CONVERT_BINARY_LABELS,),
    ),
    LossSpec(
        "categorical_hinge",
        margin.categorical_hinge,
        "margin",
        "CategoricalHinge",
        "max(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)",
        "Multi-class hinge: the best wrong-class score must trail the true-class score by 1.",
    ),
    LossSpec(
        "log_cosh",
        regression.log_cosh,
        "regression",
        "LogCosh",
        "mean(x + softplus(-2x) - log(2), axis=-1), x = y_pred - y_true",
        "log(cosh(error)), computed stably: like MSE/2 for small errors, like MAE for large ones.",
        aliases=("logcosh",),
    ),
    LossSpec(
        "categorical_crossentropy",
        probabilistic.categorical_crossentropy,
        "probabilistic",
        "CategoricalCrossentropy",
        "-sum(y_true * log(clip(y_pred / sum(y_pred), 1e-7, 1 - 1e-7)), axis)",
        "Cross-entropy for one-hot (or soft) targets, in nats.",
        options=(FROM_LOGITS, LABEL_SMOOTHING, CLASS_AXIS),
    ),
    LossSpec(
        "sparse_categorical_crossentropy",
        probabilistic.sparse_categorical_crossentropy,
        "probabilistic",
        "SparseCategoricalCrossentropy",
        "-log(clip(y_pred / sum(y_pred), 1e-7, 1 - 1e-7)[y_true])",
        "Cross-entropy for integer class labels (y_true has one axis fewer than y_pred, "
        "or a trailing axis of 1), in nats. ignore_class leaves samples out of the mean.",
        options=(
            FROM_LOGITS,
            OptionSpec(
                "ignore_class",
                "integer_or_null",
                None,
                "A label value whose samples contribute 0 and are left out of the mean.",
            ),
            CLASS_AXIS,
        ),
        sparse_labels=True,
        mask=sparse_valid_mask,
    ),
    LossSpec(
        "binary_crossentropy",
        probabilistic.binary_crossentropy,
        "probabilistic",
        "BinaryCrossentropy",
        "mean(-(y_true * log(p) + (1 - y_true) * log(1 - p)), axis), "
        "p = clip(y_pred, 1e-7, 1 - 1e-7)",
        "Log loss for independent binary targets, in nats. With from_logits it is "
        "computed with the exact log-sigmoid.",
        aliases=("bce", "BCE"),
        options=(FROM_LOGITS, LABEL_SMOOTHING, MEAN_AXIS),
    ),
    LossSpec(
        "kl_divergence",
        probabilistic.kl_divergence,
        "probabilistic",
        "KLDivergence",
        "sum(t * log(t / p), axis=-1), t = clip(y_true, 1e-7, 1), p = clip(y_pred, 1e-7, 1)",
        "Kullback-Leibler divergence of y_pred from y_true, in nats.",
        aliases=("kullback_leibler_divergence", "kld", "KLD"),
    ),
    LossSpec(
        "poisson",
        probabilistic.poisson,
        "probabilistic",
        "Poisson",
        "mean(y_pred - y_true * log(y_pred + 1e-7), axis=-1)",
        "Poisson negative log-likelihood (up to a constant) for count targets; "
        "y_pred is a rate (>= 0).",
    ),
    LossSpec(
        "cosine_similarity",
        similarity.cosine_similarity,
        "similarity",
        "CosineSimilarity",
        "-sum(l2_normalize(y_true) * l2_normalize(y_pred), axis)",
        "Negative cosine similarity: -1 when aligned, 0 when orthogonal.",
        aliases=("cosine_proximity", "cosine"),
        options=(OptionSpec("axis", "integer", -1, "The axis along which the cosine is taken."),),
    ),
    LossSpec(
        "huber",
        regression.huber,
        "regression",
        "Huber",
        "mean(0.5 x^2 if |x| <= delta else delta * |x| - 0.5 delta^2, axis=-1), "
        "x = y_pred - y_true",
        "Quadratic for small errors, linear beyond delta: robust to outliers.",
        aliases=("huber_loss",),
        options=(
            OptionSpec(
                "delta",
                "number",
                1.0,
                "Where the loss turns from quadratic to linear.",
                minimum=0.0,
                exclusive_minimum=True,
            ),
        ),
    ),
    LossSpec(
        "binary_focal_crossentropy",
        probabilistic.binary_focal_crossentropy,
        "probabilistic",
        "BinaryFocalCrossentropy",
        "mean(w * (1 - p_t)^gamma * bce, axis), p_t = y_true p + (1 - y_true)(1 - p)",
        "Binary cross-entropy down-weighted for well-classified examples (Lin et al., 2017).",
        options=(
            OptionSpec(
                "apply_class_balancing",
                "boolean",
                False,
                "Weight positives by alpha and negatives by 1 - alpha.",
            ),
            FOCAL_ALPHA,
            GAMMA,
            FROM_LOGITS,
            LABEL_SMOOTHING,
            MEAN_AXIS,
        ),
    ),
    LossSpec(
        "categorical_focal_crossentropy",
        probabilistic.categorical_focal_crossentropy,
        "probabilistic",
        "CategoricalFocalCrossentropy",
        "sum(-alpha * (1 - p)^gamma * y_true * log(p), axis), p as in categorical_crossentropy",
        "Categorical cross-entropy down-weighted for well-classified examples.",
        options=(FOCAL_ALPHA, GAMMA, FROM_LOGITS, LABEL_SMOOTHING, CLASS_AXIS),
    ),
    LossSpec(
        "dice",
        overlap.dice,
        "overlap",
        "Dice",
        "1 - 2 sum(y_true * y_pred) / (sum(y_true) + sum(y_pred) + 1e-7), over axis",
        "Soft Dice loss for segmentation masks. Reduces every axis unless axis is given.",
        options=(OVERLAP_AXES,),
    ),
    LossSpec(
        "tversky",
        overlap.tversky,
        "overlap",
        "Tversky",
        "1 - TP / (TP + alpha FP + beta FN + 1e-7), over axis",
        "Tversky loss: Dice with separate weights for false positives (alpha) and false "
        "negatives (beta). Follows the documented formula; Keras 3.15's code swaps alpha "
        "and beta.",
        options=(
            OptionSpec("alpha", "number", 0.5, "Weight of false positives.", minimum=0.0),
            OptionSpec("beta", "number", 0.5, "Weight of false negatives.", minimum=0.0),
            OVERLAP_AXES,
        ),
    ),
)

_BY_NAME: dict[str, LossSpec] = {n.lower(): spec for spec in LOSSES for n in spec.names}
_DISPLAY: dict[str, str] = {}
for _spec in LOSSES:
    for _name in _spec.names:
        _DISPLAY.setdefault(_name.lower(), _name)  # "mse" rather than "MSE" in suggestions


def resolve(name: str) -> LossSpec:
    """The loss ``name`` refers to (any accepted spelling, any case).

    Raises :class:`UnknownLossError` with up to three close matches.
    """
    spec = _BY_NAME.get(name.strip().lower())
    if spec is None:
        close = difflib.get_close_matches(name.strip().lower(), _BY_NAME, n=12, cutoff=0.6)
        suggestions: dict[str, str] = {}  # one spelling per loss, best match first
        for c in close:
            suggestions.setdefault(_BY_NAME[c].name, _DISPLAY[c])
        raise UnknownLossError(name, list(suggestions.values())[:3])
    return spec


def all_names() -> dict[str, str]:
    """Every accepted spelling mapped to its canonical name."""
    return {n: spec.name for spec in LOSSES for n in spec.names}
