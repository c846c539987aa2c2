"""The engine's one exception hierarchy.

Every error names the input it is about (``field``: ``y_true``, ``y_pred``, ``sample_weight``,
``options.<name>``, ``reduction``, ``dtype`` or ``loss``), an optional index path inside it, and a
message a person can act on. The HTTP layer turns these into problem+json; the engine knows
nothing of HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence


class LossError(Exception):
    """Base class of every error the engine raises on purpose."""

    def __init__(self, message: str, *, field: str = "", index: Sequence[int] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.index = tuple(index)


class UnknownLossError(LossError):
    """A loss name that resolves to nothing; ``suggestions`` holds the closest valid names."""

    def __init__(self, name: str, suggestions: Sequence[str]) -> None:
        super().__init__(f"unknown loss {name!r}{did_you_mean(suggestions)}", field="loss")
        self.name = name
        self.suggestions = list(suggestions)


class InvalidInputError(LossError):
    """Tensors that cannot be evaluated: wrong shape or rank, empty, non-finite, bad labels."""


class InvalidOptionError(LossError):
    """An option the loss does not take, of the wrong type, or out of range."""


def did_you_mean(suggestions: Sequence[str]) -> str:
    """``"; did you mean 'mse', 'msle'?"``, or nothing without suggestions."""
    return f"; did you mean {', '.join(repr(s) for s in suggestions)}?" if suggestions else ""
