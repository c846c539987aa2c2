"""Every name the design (DESIGN.md section 3) and the R seed (seed 001) promise resolves to the
right loss, in any case; unknown names get close suggestions.

The tables below are written out from those documents, not generated from the registry.
"""

from __future__ import annotations

import os

import pytest

from app.losses import LOSSES, UnknownLossError, all_names, resolve

# DESIGN.md section 3: canonical name -> the other names listed for it.
DESIGN_TABLE: dict[str, list[str]] = {
    "mean_squared_error": ["mse", "MSE"],
    "mean_absolute_error": ["mae", "MAE"],
    "mean_absolute_percentage_error": ["mape", "MAPE"],
    "mean_squared_logarithmic_error": ["msle", "MSLE"],
    "squared_hinge": [],
    "hinge": [],
    "categorical_hinge": [],
    "log_cosh": ["logcosh"],
    "categorical_crossentropy": [],
    "sparse_categorical_crossentropy": [],
    "binary_crossentropy": ["bce", "BCE"],
    "kl_divergence": ["kullback_leibler_divergence", "kld", "KLD"],
    "poisson": [],
    "cosine_similarity": ["cosine_proximity", "cosine"],
    "huber": ["huber_loss"],
    "binary_focal_crossentropy": [],
    "categorical_focal_crossentropy": [],
    "dice": [],
    "tversky": [],
}

# The Keras 3 class names (keras.losses.<Class>).
CLASS_NAMES: dict[str, str] = {
    "MeanSquaredError": "mean_squared_error",
    "MeanAbsoluteError": "mean_absolute_error",
    "MeanAbsolutePercentageError": "mean_absolute_percentage_error",
    "MeanSquaredLogarithmicError": "mean_squared_logarithmic_error",
    "SquaredHinge": "squared_hinge",
    "Hinge": "hinge",
    "CategoricalHinge": "categorical_hinge",
    "LogCosh": "log_cosh",
    "CategoricalCrossentropy": "categorical_crossentropy",
    "SparseCategoricalCrossentropy": "sparse_categorical_crossentropy",
    "BinaryCrossentropy": "binary_crossentropy",
    "KLDivergence": "kl_divergence",
    "Poisson": "poisson",
    "CosineSimilarity": "cosine_similarity",
    "Huber": "huber",
    "BinaryFocalCrossentropy": "binary_focal_crossentropy",
    "CategoricalFocalCrossentropy": "categorical_focal_crossentropy",
    "Dice": "dice",
    "Tversky": "tversky",
}

# Seed 001 (the R interface): every loss_ name it lists.
R_NAMES: dict[str, str] = {
    "loss_mean_squared_error": "mean_squared_error",
    "loss_mean_absolute_error": "mean_absolute_error",
    "loss_mean_absolute_percentage_error": "mean_absolute_percentage_error",
    "loss_mean_squared_logarithmic_error": "mean_squared_logarithmic_error",
    "loss_squared_hinge": "squared_hinge",
    "loss_hinge": "hinge",
    "loss_categorical_hinge": "categorical_hinge",
    "loss_logcosh": "log_cosh",
    "loss_categorical_crossentropy": "categorical_crossentropy",
    "loss_sparse_categorical_crossentropy": "sparse_categorical_crossentropy",
    "loss_binary_crossentropy": "binary_crossentropy",
    "loss_kullback_leibler_divergence": "kl_divergence",
    "loss_poisson": "poisson",
    "loss_cosine_proximity": "cosine_similarity",
}

EVERY_NAME: dict[str, str] = {
    **{c: c for c in DESIGN_TABLE},
    **{a: c for c, aliases in DESIGN_TABLE.items() for a in aliases},
    **CLASS_NAMES,
    **R_NAMES,
    # "loss_ followed by any accepted name"
    **{f"loss_{c}": c for c in DESIGN_TABLE},
    **{f"loss_{a}": c for c, aliases in DESIGN_TABLE.items() for a in aliases},
    **{f"loss_{k}": c for k, c in CLASS_NAMES.items()},
}


def _variants(name: str) -> list[str]:
    return [name, name.lower(), name.upper(), name.swapcase(), f"  {name} "]


@pytest.mark.parametrize(("name", "canonical"), sorted(EVERY_NAME.items()))
def test_every_documented_name_resolves(name: str, canonical: str) -> None:
    for variant in _variants(name):
        assert resolve(variant).name == canonical, variant


def test_the_registry_holds_exactly_the_designed_losses() -> None:
    assert sorted(spec.name for spec in LOSSES) == sorted(DESIGN_TABLE)
    assert len({spec.name for spec in LOSSES}) == len(LOSSES)


def test_keras2_names() -> None:
    for keras2, canonical in [
        ("logcosh", "log_cosh"),
        ("kullback_leibler_divergence", "kl_divergence"),
        ("cosine_proximity", "cosine_similarity"),
        ("huber_loss", "huber"),
    ]:
        assert resolve(keras2).name == canonical
        assert resolve(f"loss_{keras2}").name == canonical


def test_no_name_is_ambiguous() -> None:
    owners: dict[str, set[str]] = {}
    for spec in LOSSES:
        for name in spec.names:
            owners.setdefault(name.lower(), set()).add(spec.name)
    clashes = {name: specs for name, specs in owners.items() if len(specs) > 1}
    assert clashes == {}


def test_all_names_covers_the_documented_names() -> None:
    names = {n.lower(): c for n, c in all_names().items()}
    for name, canonical in EVERY_NAME.items():
        assert names[name.lower()] == canonical


@pytest.mark.parametrize(
    ("typo", "expected"),
    [
        ("mean_sqaured_error", "mean_squared_error"),
        ("mean_absolut_error", "mean_absolute_error"),
        ("categorical_crossentropi", "categorical_crossentropy"),
        ("sparse_categorical_cross_entropy", "sparse_categorical_crossentropy"),
        ("binary_focal_crossentropy_", "binary_focal_crossentropy"),
        ("kl_divergance", "kl_divergence"),
        ("cosine_similarty", "cosine_similarity"),
        ("hubber", "huber"),
        ("tverski", "tversky"),
        ("squared_hing", "squared_hinge"),
        ("loss_mean_squared_eror", "mean_squared_error"),
        ("MeanSquaredErrors", "mean_squared_error"),
    ],
)
def test_unknown_names_suggest_the_closest(typo: str, expected: str) -> None:
    with pytest.raises(UnknownLossError) as info:
        resolve(typo)
    suggestions = info.value.suggestions
    assert 1 <= len(suggestions) <= 3
    # The best suggestion is a spelling of the intended loss.
    assert resolve(suggestions[0]).name == expected, suggestions
    assert len({resolve(s).name for s in suggestions}) == len(suggestions)  # one per loss


@pytest.mark.parametrize(
    ("name", "first", "flavours"),
    [
        # A bare torch class or function name is offered its full spelling first.
        ("CrossEntropyLoss", "torch.nn.CrossEntropyLoss", {"torch", "keras"}),
        ("kl_div", "torch.nn.functional.kl_div", {"torch", "keras"}),
        # A torch.-prefixed typo is matched among the torch losses only.
        ("torch.nn.crossentropy", "torch.nn.CrossEntropyLoss", {"torch"}),
        ("torch.msel", "torch.MSELoss", {"torch"}),
        # Any other name among Keras's only: 'mse', never 'torch.mse_loss'.
        ("msee", "mse", {"keras"}),
    ],
)
def test_suggestions_stay_in_the_flavour_the_name_asks_for(
    name: str, first: str, flavours: set[str]
) -> None:
    with pytest.raises(UnknownLossError) as info:
        resolve(name)
    suggestions = info.value.suggestions
    assert suggestions[0] == first, suggestions
    assert {resolve(s).flavour for s in suggestions} <= flavours


def test_a_name_close_to_no_keras_loss_gets_no_torch_suggestion() -> None:
    # 'no_such_loss' is within difflib's cutoff of 'torch.nll_loss''s tail, not of a Keras name.
    with pytest.raises(UnknownLossError) as info:
        resolve("no_such_loss")
    assert info.value.suggestions == []


@pytest.mark.parametrize("name", ["", "   ", "loss_", "keras.losses.mse", "crossentropy!!"])
def test_junk_names_are_unknown(name: str) -> None:
    with pytest.raises(UnknownLossError):
        resolve(name)


@pytest.mark.conformance
def test_class_names_exist_in_keras() -> None:
    os.environ.setdefault("KERAS_BACKEND", "numpy")
    keras = pytest.importorskip("keras")
    for spec in LOSSES:
        cls = getattr(keras.losses, spec.class_name, None)
        assert isinstance(cls, type), spec.class_name
        assert issubclass(cls, keras.losses.Loss), spec.class_name
        assert CLASS_NAMES[spec.class_name] == spec.name
        # And the canonical name is the Keras 3 function name.
        assert callable(getattr(keras.losses, spec.name)), spec.name


@pytest.mark.parametrize(
    "name",
    [
        "\u212ald",  # KELVIN SIGN K: str.lower() folds it to "k", so it resolved to kl_divergence
        "MS\u0130",  # LATIN CAPITAL LETTER I WITH DOT ABOVE: lowers to "i" + a combining dot
        "\uff4d\uff53\uff45",  # fullwidth "mse"
        "mse\u00a0",  # a no-break space: not stripped as an ASCII space is
    ],
)
def test_names_match_ascii_case_insensitively_only(name: str) -> None:
    with pytest.raises(UnknownLossError) as info:
        resolve(name)
    assert info.value.name == name


def test_ascii_case_and_spaces_still_fold() -> None:
    assert resolve(" KLD ").name == resolve("Kullback_Leibler_Divergence").name == "kl_divergence"
