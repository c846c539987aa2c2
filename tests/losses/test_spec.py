"""Each loss's spec is declared on its function (``@loss`` in ``app/losses/spec.py``) and the
registry lists every declared loss exactly once."""

from __future__ import annotations

import pytest

from app.losses import CATALOGUE, LOSSES, TORCH_LOSSES, regression
from app.losses.spec import declared, loss, spec_of


def test_each_spec_is_the_one_declared_on_its_function() -> None:
    for spec in LOSSES:
        assert spec_of(spec.fn) is spec
        assert spec.name == spec.fn.__name__
        assert spec.fn.__module__ == f"app.losses.{spec.family}"


def test_each_torch_spec_is_named_after_its_class() -> None:
    for spec in TORCH_LOSSES:
        assert spec_of(spec.fn) is spec
        assert spec.name == f"torch.nn.{spec.class_name}"
        assert spec.fn.__module__ == "app.losses.torch_nn"
        assert (spec.family, spec.flavour, spec.default_reduction) == ("torch", "torch", "mean")
    assert {s.flavour for s in LOSSES} == {"keras"}


def test_the_catalogue_lists_every_declared_loss_once() -> None:
    assert len(set(CATALOGUE)) == len(CATALOGUE)
    assert set(declared()) == set(CATALOGUE)


def test_a_function_is_declared_once() -> None:
    with pytest.raises(ValueError, match="already declared"):
        loss(class_name="X", formula="x", doc="x")(regression.mean_squared_error)


def test_an_undeclared_function_has_no_spec() -> None:
    with pytest.raises(LookupError, match="not declared"):
        spec_of(len)
