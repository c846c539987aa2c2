"""What an error means to a client: one mapping for every protocol and the CLI.

An engine error (:class:`~app.losses.LossError`) or a request the schema refuses becomes one
:class:`ErrorReport`: status, problem slug, detail and where each thing went wrong. Each protocol
only formats that report: problem+json on /v1 (``app.api.problems``), ``{"error": detail}`` on
/v2, a line on the CLI's stderr. The protocols differ only in what they call things (v2 calls a
loss a *model*, options *parameters*, tensors *inputs*): a :class:`Vocabulary` holds those names,
and the wording is this module's alone. Like :mod:`app.results`, it lives outside the web layer
so that the CLI may import it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from app.losses import CATALOGUE, LossError, UnknownLossError
from app.losses.errors import did_you_mean
from app.losses.options import SHOWN_CHARS

#: A place in a request: object keys and list indices, from its root.
Location = tuple[str | int, ...]
TENSORS = frozenset({"y_true", "y_pred", "sample_weight"})
SETTINGS = frozenset({"dtype", "reduction"})


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """How one protocol names the parts of a request, and its status for invalid input.

    ``tensor``, ``option`` and ``setting`` are format strings of a field's name; ``pointers``
    says whether places are JSON pointers (``/items/0/y_pred``) or dotted (``inputs[0].shape``);
    ``options_field`` is where a loss's options go (``options``, ``parameters``).
    """

    loss: str
    tensor: str
    option: str
    setting: str
    invalid_status: int
    pointers: bool
    options_field: str

    def where(self, location: Sequence[str | int]) -> str:
        """``location`` written as this protocol writes a place in a request."""
        if self.pointers:
            return pointer(*location)
        text = ""
        for part in location:
            text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
        return text

    def field(self, field: str) -> str:
        """An engine error's ``field`` (``y_pred``, ``options.delta``, ``dtype``) in words."""
        if field.startswith("options."):
            return self.option.format(field.removeprefix("options."))
        if field in SETTINGS:
            return self.setting.format(field)
        if field in TENSORS:
            return self.tensor.format(field)
        return field


#: /v1: problem+json whose ``errors`` hold JSON pointers; fields named as in the body.
V1 = Vocabulary(
    loss="loss",
    tensor="{}",
    option="options.{}",
    setting="{}",
    invalid_status=422,
    pointers=True,
    options_field="options",
)
#: /v2, the Open Inference Protocol: losses are models, tensors inputs, options parameters, and
#: every invalid request is a 400.
V2 = Vocabulary(
    loss="model",
    tensor="input {!r}",
    option="parameter {!r}",
    setting="parameter {!r}",
    invalid_status=400,
    pointers=False,
    options_field="parameters",
)
#: ``lossd eval``: options come from ``--option NAME=VALUE``.
CLI = Vocabulary(
    loss="loss",
    tensor="{}",
    option="option {!r}",
    setting="{}",
    invalid_status=1,
    pointers=False,
    options_field="--option",
)


@dataclass(frozen=True, slots=True)
class ErrorReport:
    """One refused request, before any protocol formats it: ``errors`` holds
    ``(location, message)`` pairs, each location from the request's root."""

    status: int
    slug: str
    detail: str
    errors: tuple[tuple[Location, str], ...]
    suggestions: tuple[str, ...] | None = None


def report(error: LossError, words: Vocabulary = V1, prefix: Location = ()) -> ErrorReport:
    """The one mapping of an engine error: status, slug, detail and location.

    ``prefix`` locates the part of the request the error is about: the loss name itself for an
    unknown loss (the path's ``name`` when there is no prefix), else the object holding the
    tensors or options (``items/3`` in a batch). The detail names the field in ``words``
    (``options.delta: ...``, ``parameter 'delta': ...``) and the index of a bad value, unless
    the message already starts with that name (``y_pred has shape [3, 2] but ...``).
    """
    if isinstance(error, UnknownLossError):
        detail = f"unknown {words.loss} {error.name!r}{did_you_mean(error.suggestions)}"
        where = prefix or ("path", "name")
        return ErrorReport(
            404, "unknown-loss", detail, ((where, detail),), tuple(error.suggestions)
        )
    name = words.field(error.field)
    if error.index:
        name += f" at index {list(error.index)}"
    named = not name or error.message.startswith(name)
    detail = error.message if named else f"{name}: {error.message}"
    slug = "invalid-option" if error.field.startswith("options") else "invalid-input"
    fields = error.field.split(".") if error.field else []
    location = (*prefix, *fields, *error.index)
    return ErrorReport(words.invalid_status, slug, detail, ((location, error.message),))


def malformed_json(message: str, prefix: Location = ()) -> ErrorReport:
    """A body (or NDJSON line) that is not JSON: 400 in every protocol."""
    message = message.removeprefix("Invalid JSON: ")
    return ErrorReport(400, "malformed-json", f"malformed JSON: {message}", ((prefix, message),))


# --- requests the schema refuses (Pydantic's errors) ----------------------------------------

#: How many of a request's errors the detail spells out (all are in a problem's ``errors``).
DETAIL_ERRORS = 3
#: Every option name of every loss: such a name beside the tensors belongs in the options.
OPTION_NAMES = frozenset(option.name for spec in CATALOGUE for option in spec.options)
# Pydantic names the union member it tried inside ``loc`` ("str", "list[union[str,LossRef]]",
# "function-after[...]"); those are not places in the request body.
_UNION_LABELS = re.compile(r"^(str|int|float|bool|none|list|dict)$|[\[\]]")
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")
_OUTSIDE_BODY = ("query", "path", "header")


def validation_report(
    errors: Sequence[Mapping[str, Any]],
    words: Vocabulary = V1,
    prefix: Location = (),
    fields: Collection[str] = (),
) -> ErrorReport:
    """The one mapping of Pydantic's errors: 400 for malformed JSON, else the protocol's status
    for invalid input, each error located from the request's root (``prefix`` locates the
    validated object in it; ``fields`` are the names that object takes, for hints).

    Two mistakes get a hint instead of Pydantic's words, first: an option sent beside the
    tensors rather than inside the options, and a camelCase field (``yPred``), whose "missing"
    twin (``y_pred``) is then not reported as well.
    """
    if errors and errors[0].get("type") == "json_invalid":
        return malformed_json(str(errors[0].get("msg", "")), prefix)
    located = [(_location(err, prefix), err) for err in errors]
    missing = {loc for loc, err in located if err.get("type") == "missing"}
    hints: list[tuple[Location, str]] = []
    plain: list[tuple[Location, str]] = []
    renamed: set[Location] = set()
    for loc, err in located:
        hint = _hint(loc, err, words, prefix, fields, missing)
        if hint is not None:
            hints.append((loc, hint[0]))
            renamed |= hint[1]
        else:
            plain.append((loc, str(err.get("msg", "invalid value"))))
    items = hints + [item for item in plain if item[0] not in renamed]
    lines = [
        f"{words.where(loc) or ('/' if words.pointers else 'request')}: {m}" for loc, m in items
    ]
    more = f" (and {len(items) - DETAIL_ERRORS} more)" if len(items) > DETAIL_ERRORS else ""
    detail = "; ".join(lines[:DETAIL_ERRORS]) + more if items else "invalid request"
    return ErrorReport(words.invalid_status, "invalid-input", detail, tuple(items))


def _hint(
    loc: Location,
    err: Mapping[str, Any],
    words: Vocabulary,
    prefix: Location,
    fields: Collection[str],
    missing: set[Location],
) -> tuple[str, set[Location]] | None:
    """A field the object does not take, explained: (message, the locations it stands for)."""
    if err.get("type") != "extra_forbidden" or not loc or not isinstance(loc[-1], str):
        return None
    name, parent = loc[-1], loc[:-1]
    snake = _CAMEL.sub(r"_\1", name).lower()
    if snake != name and (snake in fields or (*parent, snake) in missing):
        return f'unknown field "{name}"; did you mean "{snake}"?', {(*parent, snake)}
    if name in OPTION_NAMES and parent == tuple(prefix):
        in_body = not fields or words.options_field in fields
        return option_hint(name, err.get("input"), words, in_body=in_body), set()
    return None


def option_hint(name: str, value: Any, words: Vocabulary, *, in_body: bool = True) -> str:
    """Where an option sent beside the tensors belongs, with the request that works: inside
    the body's options (a stream line's own options, too; or the query's)."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = "..."
    example = f'{{"{name}": {text if len(text) <= SHOWN_CHARS else "..."}}}'
    field = words.options_field
    if not in_body:
        return f'"{name}" is an option: send it in the query, ?{field}={example}'
    return f'"{name}" is an option: send it inside "{field}", {{"{field}": {example}}}'


def _location(err: Mapping[str, Any], prefix: Location) -> Location:
    loc = tuple(p for p in err.get("loc", ()) if p != "body" and not _is_union_label(p))
    return loc if loc and loc[0] in _OUTSIDE_BODY else (*prefix, *loc)


def _is_union_label(part: str | int) -> bool:
    return isinstance(part, str) and bool(_UNION_LABELS.search(part))


def pointer(*parts: str | int) -> str:
    """A JSON pointer from path parts, escaping ``~`` and ``/`` (RFC 6901)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)
