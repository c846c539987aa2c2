"""Loss options: their declared types, defaults and ranges, and checking what a client sent."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from app.losses.errors import InvalidOptionError
from app.losses.tensors import to_array

OptionType = Literal["boolean", "number", "integer", "integer_or_null", "axes", "tensor"]


@dataclass(frozen=True)
class OptionSpec:
    """One option a loss takes. ``minimum``/``maximum`` bound numbers (``exclusive_minimum`` for
    a strict lower bound). ``axes`` takes null, an integer or a list of distinct integers;
    ``tensor`` null, a number or (nested) lists of numbers, as a float64 array (a torch loss's
    ``weight``, ``pos_weight`` or ``var``), at least ``minimum`` when that is set."""

    name: str
    type: OptionType
    default: Any
    doc: str
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False

    def check(self, value: Any) -> Any:
        """Return ``value`` in canonical form, or raise :class:`InvalidOptionError`."""
        field = f"options.{self.name}"
        if self.type == "boolean":
            if not isinstance(value, bool):
                raise InvalidOptionError(
                    f"{self.name} must be true or false, got {shown(value)}", field=field
                )
            return value
        if self.type == "integer_or_null" and value is None:
            return None
        if self.type in ("integer", "integer_or_null"):
            return _integer(value, self.name, field)
        if self.type == "tensor":
            return None if value is None else self._tensor(value, field)
        if self.type == "axes":
            if value is None:
                return None
            if isinstance(value, list | tuple):
                axes = tuple(_integer(v, self.name, field) for v in value)
                if not axes or len(set(axes)) != len(axes):
                    raise InvalidOptionError(
                        f"{self.name} must be null, an integer or a non-empty list of distinct "
                        f"integers, got {shown(list(value))}",
                        field=field,
                    )
                return axes
            return _integer(value, self.name, field)
        return self._number(value, field)

    def _tensor(self, value: Any, field: str) -> Any:
        # An array comes from a /v2 input of the same name.
        if isinstance(value, bool) or not isinstance(
            value, int | float | list | tuple | np.ndarray
        ):
            raise InvalidOptionError(
                f"{self.name} must be a number or a list of numbers, got {shown(value)}",
                field=field,
            )
        array = to_array(value, field, "float64", min_rank=0)
        if self.minimum is not None and array.size and float(array.min()) < self.minimum:
            raise InvalidOptionError(
                f"{self.name} must be >= {self.minimum:g} everywhere, got {float(array.min())!r}",
                field=field,
            )
        return array

    def _number(self, value: Any, field: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not _finite(value):
            raise InvalidOptionError(
                f"{self.name} must be a finite number, got {shown(value)}", field=field
            )
        low_ok = self.minimum is None or (
            value > self.minimum if self.exclusive_minimum else value >= self.minimum
        )
        high_ok = self.maximum is None or value <= self.maximum
        if not (low_ok and high_ok):
            raise InvalidOptionError(
                f"{self.name} must be {self.range_text()}, got {shown(value)}", field=field
            )
        return float(value)

    def range_text(self) -> str:
        """The allowed range in words, e.g. ``in [0, 1]`` or ``> 0``."""
        if self.minimum is not None and self.maximum is not None:
            return f"in [{self.minimum:g}, {self.maximum:g}]"
        if self.minimum is not None:
            return f"{'>' if self.exclusive_minimum else '>='} {self.minimum:g}"
        return "any finite number"


#: Integer options (axes, a class label) are NumPy indices: beyond int64 they mean nothing.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: Longest ``repr`` of a client's value echoed back in a message.
SHOWN_CHARS = 40


def shown(value: Any) -> str:
    """``repr(value)``, cut short: a 400-digit literal is not echoed back whole."""
    text = repr(value)
    if len(text) <= SHOWN_CHARS:
        return text
    digits = f" ({len(text)} digits)" if isinstance(value, int) else ""
    return f"{text[: SHOWN_CHARS - 10]}...{digits}"


def _finite(value: int | float) -> bool:
    # JSON integers are unbounded: float(10**400) raises OverflowError, which is out of range.
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _integer(value: Any, name: str, field: str) -> int:
    # JSON has one number type: accept 2.0 as 2, but never 2.5 or true.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidOptionError(f"{name} must be an integer, got {shown(value)}", field=field)
    if not INT64_MIN <= value <= INT64_MAX:
        raise InvalidOptionError(
            f"{name} is out of range: an integer of 64 bits is expected, got {shown(value)}",
            field=field,
        )
    return value


def bind_options(
    loss: str, specs: tuple[OptionSpec, ...], given: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Check ``given`` against ``specs`` and fill in defaults. Unknown names are an error that
    lists what the loss does take."""
    known = {spec.name: spec for spec in specs}
    given = dict(given or {})
    unknown = sorted(set(given) - set(known))
    if unknown:
        takes = f"its options are {', '.join(sorted(known))}" if known else "it takes no options"
        raise InvalidOptionError(
            f"{loss} does not take the option {unknown[0]!r}; {takes}",
            field=f"options.{unknown[0]}",
        )
    return {
        name: spec.check(given[name]) if name in given else spec.default
        for name, spec in known.items()
    }
