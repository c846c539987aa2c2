"""The registry: the catalogue of losses, in order, and the names each answers to.

Each loss declares its spec (aliases, class name, options, formula, doc) on its function with
``@loss`` (``spec.py``); this module lists those functions in catalogue order and resolves names.
Names resolve ASCII case-insensitively (``fold``): the Keras 3 function name (canonical), Keras 2
and short aliases, the Keras 3 class name, and the R interface's ``loss_`` prefix before any of
those; a PyTorch loss's ``torch.nn.<Class>`` (canonical), ``torch.nn.functional.<name>``,
``torch.<Class>`` and ``torch.<name>``.
"""

from __future__ import annotations

import difflib

from app.losses import margin, overlap, probabilistic, regression, similarity, torch_nn
from app.losses.errors import UnknownLossError
from app.losses.options import OptionSpec
from app.losses.spec import (
    CLASS_AXIS,
    CONVERT_BINARY_LABELS,
    FOCAL_ALPHA,
    FROM_LOGITS,
    GAMMA,
    LABEL_SMOOTHING,
    MEAN_AXIS,
    OVERLAP_AXES,
    LossFn,
    LossSpec,
    declared,
    spec_of,
)

__all__ = [
    "CATALOGUE",
    "CLASS_AXIS",
    "CONVERT_BINARY_LABELS",
    "FLAVOURS",
    "FOCAL_ALPHA",
    "FROM_LOGITS",
    "GAMMA",
    "LABEL_SMOOTHING",
    "LOSSES",
    "MEAN_AXIS",
    "OVERLAP_AXES",
    "TORCH_LOSSES",
    "LossFn",
    "LossSpec",
    "OptionSpec",
    "UnknownLossError",
    "all_names",
    "resolve",
]

# The Keras losses in catalogue order (DESIGN.md section 3's table).
LOSSES: tuple[LossSpec, ...] = tuple(
    spec_of(fn)
    for fn in (
        regression.mean_squared_error,
        regression.mean_absolute_error,
        regression.mean_absolute_percentage_error,
        regression.mean_squared_logarithmic_error,
        margin.squared_hinge,
        margin.hinge,
        margin.categorical_hinge,
        regression.log_cosh,
        probabilistic.categorical_crossentropy,
        probabilistic.sparse_categorical_crossentropy,
        probabilistic.binary_crossentropy,
        probabilistic.kl_divergence,
        probabilistic.poisson,
        similarity.cosine_similarity,
        regression.huber,
        probabilistic.binary_focal_crossentropy,
        probabilistic.categorical_focal_crossentropy,
        overlap.dice,
        overlap.tversky,
    )
)
# The PyTorch losses (flavour "torch", docs/torch.md), after the Keras ones in the catalogue.
TORCH_LOSSES: tuple[LossSpec, ...] = tuple(
    spec_of(fn)
    for fn in (
        torch_nn.mse_loss,
        torch_nn.l1_loss,
        torch_nn.smooth_l1_loss,
        torch_nn.huber_loss,
        torch_nn.binary_cross_entropy,
        torch_nn.binary_cross_entropy_with_logits,
        torch_nn.cross_entropy,
        torch_nn.nll_loss,
        torch_nn.kl_div,
        torch_nn.poisson_nll_loss,
        torch_nn.gaussian_nll_loss,
        torch_nn.soft_margin_loss,
        torch_nn.multilabel_soft_margin_loss,
        torch_nn.hinge_embedding_loss,
        torch_nn.multi_margin_loss,
    )
)
# Every loss: GET /v1/losses and `lossd losses` list it, names resolve in it.
CATALOGUE: tuple[LossSpec, ...] = LOSSES + TORCH_LOSSES
FLAVOURS: tuple[str, ...] = ("keras", "torch")

_unlisted = [s.name for s in declared() if s not in CATALOGUE]
if _unlisted:  # a function declared with @loss but left out of the catalogue above
    raise RuntimeError(f"losses declared but not in the catalogue: {_unlisted}")


def fold(name: str) -> str:
    """``name`` as the registry keys it: ASCII spaces stripped, ASCII letters lower-cased, and
    nothing else touched. ``str.lower`` would fold Unicode too (KELVIN SIGN to ``k``), so a name
    no client typed on purpose would resolve; a non-ASCII name stays unknown instead."""
    return name.strip(" \t\r\n").translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


_BY_NAME: dict[str, LossSpec] = {fold(n): spec for spec in CATALOGUE for n in spec.names}
if len(_BY_NAME) != sum(len({fold(n) for n in spec.names}) for spec in CATALOGUE):
    raise RuntimeError("two losses answer to the same name")
_DISPLAY: dict[str, str] = {}
for _spec in CATALOGUE:
    for _name in _spec.names:
        _DISPLAY.setdefault(fold(_name), _name)  # "mse" rather than "MSE" in suggestions


def resolve(name: str) -> LossSpec:
    """The loss ``name`` refers to (any accepted spelling, ASCII case-insensitively).

    Raises :class:`UnknownLossError` with up to three close matches.
    """
    key = fold(name)
    spec = _BY_NAME.get(key)
    if spec is None:
        raise UnknownLossError(name, _suggestions(key))
    return spec


def _suggestions(key: str) -> list[str]:
    """Up to three spellings close to the unknown (folded) name ``key``, one per loss.

    Matches stay in the flavour the name asks for (``torch.`` names among the torch losses, the
    rest among Keras's), so ``no_such_loss`` is not offered ``torch.nll_loss``; a bare torch
    name (``CrossEntropyLoss``) is offered its full spelling first.
    """
    torch_names = key.startswith("torch.")
    pool = [n for n in _BY_NAME if n.startswith("torch.") == torch_names]
    exact_tail = [] if torch_names else [n for n in _BY_NAME if n.endswith("." + key)]
    close = exact_tail + difflib.get_close_matches(key, pool, n=12, cutoff=0.6)
    suggestions: dict[str, str] = {}  # one spelling per loss, best match first
    for c in close:
        suggestions.setdefault(_BY_NAME[c].name, _DISPLAY[c])
    return list(suggestions.values())[:3]


def all_names() -> dict[str, str]:
    """Every accepted spelling mapped to its canonical name."""
    return {n: spec.name for spec in CATALOGUE for n in spec.names}
