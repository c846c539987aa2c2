"""The ``lossd`` command line: ``serve`` (the HTTP server), ``losses`` (the catalogue) and
``eval`` (evaluate a loss on local files through the same engine as the server).

Exit status: 0 on success, 1 when the work itself fails (a bad file, tensors the loss cannot take,
an unknown loss), 2 for a usage error (argparse's convention).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import textwrap
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import SecretStr, ValidationError

from app import __version__
from app.errors import CLI, report
from app.losses import CATALOGUE, REDUCTIONS, LossError, LossSpec, evaluate
from app.observability.serve import prepare_metrics_dir, uvicorn_logging
from app.results import dumps, evaluation_fields
from app.runtime import exit_zero_on_sigterm, restart_with_huge_pages
from app.settings import Settings, get_settings

ENV_PREFIX = "LOSSD_"

# Settings a user commonly sets get a `serve` flag; every other setting is read from its LOSSD_*
# variable only (and listed in `lossd serve --help`).
SERVE_FLAGS: tuple[str, ...] = (
    "host",
    "port",
    "workers",
    "log_level",
    "max_body_bytes",
    "max_elements",
    "max_batch_items",
)

SERVE_EXAMPLES = """\
examples:
  lossd serve                                  # 127.0.0.1:8000, settings from LOSSD_* variables
  lossd serve --host 0.0.0.0 --port 9000 --workers 4
  LOSSD_MAX_ELEMENTS=1000000 lossd serve --log-level warning
"""

LOSSES_EXAMPLES = """\
examples:
  lossd losses
  lossd losses --json | python3 -m json.tool
"""

EVAL_EXAMPLES = """\
Files: .npy (NumPy), .csv (one sample per row, comma-separated numbers; a first row of names is
a header and skipped) or .json (nested lists, or one number for --sample-weight). FILE - reads
standard input (one of the three at most), its format recognised from its content. The result
has the same fields as POST /v1/losses/{name}.

examples:
  lossd eval mse --y-true y_true.csv --y-pred y_pred.csv
  python3 predict.py | lossd eval mse --y-true y_true.csv --y-pred -
  lossd eval huber --y-true t.npy --y-pred p.npy --option delta=0.5 --json
  lossd eval bce --y-true t.json --y-pred logits.json --option from_logits=true \\
      --sample-weight w.csv --reduction sum --dtype float64
  lossd eval bce --y-true t.csv --y-pred logits.csv --option from_logits=true \\
      --reduction sum --gradient --hessian-diagonal     # an XGBoost objective's numbers
"""


class CliError(Exception):
    """A failure reported as one line on stderr with exit status 1."""


# --------------------------------------------------------------------------------------------
# lossd serve


def env_name(field: str) -> str:
    """A settings field's variable: ``max_body_bytes`` -> ``LOSSD_MAX_BODY_BYTES``."""
    return ENV_PREFIX + field.upper()


def _field_help(name: str) -> str:
    field = Settings.model_fields[name]
    description = (field.description or "").rstrip(".")
    return f"{description} [env {env_name(name)}, default {_default_text(name)}]".lstrip()


def _default_text(name: str) -> str:
    default = Settings.model_fields[name].default
    if isinstance(default, SecretStr):  # never print a secret, even a default one
        return "''" if not default.get_secret_value() else "(secret)"
    return repr(default)


def _add_setting_flag(parser: argparse.ArgumentParser, name: str) -> None:
    """A ``--flag`` for settings field ``name``, typed and with choices from its annotation."""
    annotation = Settings.model_fields[name].annotation
    kwargs: dict[str, Any] = {"default": None, "help": _field_help(name)}
    if typing.get_origin(annotation) is typing.Literal:
        kwargs["choices"] = list(typing.get_args(annotation))
    elif annotation in (int, float):
        kwargs["type"] = annotation
        kwargs["metavar"] = "N"
    parser.add_argument("--" + name.replace("_", "-"), **kwargs)


def _env_only_settings() -> str:
    """The epilog lines listing every setting that has no flag (empty when there is none)."""
    lines = [
        textwrap.fill(
            f"{env_name(name)} (default {_default_text(name)})"
            + (f": {field.description}" if field.description else ""),
            width=92,
            initial_indent="  ",
            subsequent_indent="      ",
        )
        for name, field in Settings.model_fields.items()
        if name not in SERVE_FLAGS
    ]
    if not lines:
        return ""
    return "settings without a flag (environment only):\n" + "\n".join(lines) + "\n\n"


def serve_settings(args: argparse.Namespace) -> Settings:
    """The settings for ``serve``: flags over ``LOSSD_*`` variables over defaults.

    Given flags are written back to ``os.environ`` because uvicorn imports ``app.main:app`` (in
    every worker process) and the app reads its settings from the environment.
    """
    overrides = {n: getattr(args, n) for n in SERVE_FLAGS if getattr(args, n) is not None}
    try:
        Settings(**overrides)  # validate before touching the environment
    except ValidationError as exc:
        raise SettingsError(exc) from None
    for name, value in overrides.items():
        os.environ[env_name(name)] = str(value)
    get_settings.cache_clear()
    return get_settings()


class SettingsError(Exception):
    """Invalid settings (from a flag or a LOSSD_* variable): a usage error, exit status 2."""

    def __init__(self, exc: ValidationError) -> None:
        problems = "; ".join(f"{_setting(str(e['loc'][0]))}: {e['msg']}" for e in exc.errors())
        super().__init__(f"invalid settings: {problems}")


def _setting(name: str) -> str:
    """``LOSSD_PORT / --port``, or the variable alone for a setting without a flag."""
    flag = f" / --{name.replace('_', '-')}" if name in SERVE_FLAGS else ""
    return env_name(name) + flag


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of ``uvicorn.run`` for ``settings`` (one place to add more)."""
    return {
        "host": settings.host,
        "port": settings.port,
        "workers": settings.workers,
        "log_level": settings.log_level,
        "timeout_graceful_shutdown": settings.graceful_timeout_s,  # SIGTERM: requests finish
        # httptools with a bound on request heads (size and time): see app/api/header_limits.py
        "http": "app.api.header_limits:HeaderLimitedProtocol",
        **uvicorn_logging(settings),
    }


def run_serve(args: argparse.Namespace) -> int:
    """Start uvicorn on ``app.main:app`` with the resolved settings (first restarting once with
    glibc's malloc on transparent huge pages, unless ``GLIBC_TUNABLES`` is set)."""
    settings = serve_settings(args)  # bad settings are refused before any restart
    restart_with_huge_pages()
    import uvicorn  # only here: `losses` and `eval` should not pay for importing the server

    prepare_metrics_dir(settings.workers)  # before uvicorn spawns the workers that inherit it

    options = uvicorn_options(settings)
    if settings.workers > 1:  # one SO_REUSEPORT socket per worker: see app/supervisor.py
        from app.supervisor import run_workers

        run_workers({k: v for k, v in options.items() if k != "workers"}, settings.workers)
        return 0
    with exit_zero_on_sigterm():  # after the graceful shutdown, exit 0 (uvicorn re-raises SIGTERM)
        uvicorn.run("app.main:app", **options)
    return 0


# --------------------------------------------------------------------------------------------
# lossd losses


def _option_text(spec: LossSpec) -> str:
    return ", ".join(f"{o.name}={json.dumps(o.default)}" for o in spec.options) or "-"


def _also(spec: LossSpec) -> tuple[str, ...]:
    return (*spec.aliases, spec.class_name) if spec.flavour == "keras" else spec.aliases


def run_losses(args: argparse.Namespace) -> int:
    """Print the catalogue: a table, or JSON with ``--json``."""
    specs = [s for s in CATALOGUE if args.flavour in (None, s.flavour)]
    if args.json:
        print(json.dumps({"losses": [s.describe() for s in specs]}, indent=2))
        return 0
    tables = []
    for flavour, header in (("keras", "name"), ("torch", "torch loss")):
        rows = [(header, "also accepted", "options (default)")]
        rows += [
            (s.name, ", ".join(_also(s)), _option_text(s)) for s in specs if s.flavour == flavour
        ]
        if len(rows) > 1:
            tables.append(_table(rows))
    print("\n\n".join(tables))
    print("\nAny name resolves in any case; a Keras name also with a loss_ prefix (R).")
    return 0


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


# --------------------------------------------------------------------------------------------
# lossd eval


STDIN = Path("-")


def read_tensor(path: Path) -> Any:
    """The numbers in ``path`` (.npy, .csv or .json; ``-``: standard input) as an array or
    nested lists."""
    if path == STDIN:
        return _read_stdin()
    suffix = path.suffix.lower()
    readers = {".npy": _read_npy, ".csv": _read_csv, ".json": _read_json}
    if suffix not in readers:
        raise CliError(
            f"{path}: unsupported file type {suffix or '(none)'!r}; use .npy, .csv or .json"
        )
    try:
        return readers[suffix](path)
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror or exc}") from None


def _read_stdin() -> Any:
    """Standard input in the format its first bytes show: .npy's magic string, JSON's ``[`` (or
    a number, for a sample weight), else CSV."""
    data = sys.stdin.buffer.read()
    name = Path("<stdin>")
    if data.startswith(b"\x93NUMPY"):
        return _read_npy(name, io.BytesIO(data))
    text = data.decode("utf-8", errors="replace")
    stripped = text.lstrip()
    if stripped.startswith("[") or (stripped and _is_float(stripped.strip())):
        return _parse_json(name, text)
    return _parse_csv(name, io.StringIO(text, newline=""))


def _read_npy(path: Path, source: Any = None) -> Any:
    try:
        return np.load(path if source is None else source, allow_pickle=False)
    except ValueError as exc:  # not a .npy file, or an object array
        raise CliError(f"{path}: not a numeric .npy file ({exc})") from None


def _read_csv(path: Path) -> list[list[float]]:
    with path.open(newline="") as f:
        return _parse_csv(path, f)


def _parse_csv(path: Path, f: Any) -> list[list[float]]:
    """One sample per row; blank lines are skipped; every row needs the same number of values.
    A first row with no number in it (column names) is a header, skipped."""
    rows: list[list[float]] = []
    header = True  # until the first non-blank row
    for line_no, row in enumerate(csv.reader(f), start=1):
        if not any(cell.strip() for cell in row):
            continue
        if header:
            header = False
            if not any(_is_float(cell) for cell in row):
                continue
        try:
            values = [float(cell) for cell in row]
        except ValueError:
            bad = next(c for c in row if not _is_float(c))
            raise CliError(f"{path}: line {line_no}: {bad.strip()!r} is not a number") from None
        if rows and len(values) != len(rows[0]):
            raise CliError(
                f"{path}: line {line_no} has {len(values)} values, the first row has {len(rows[0])}"
            )
        rows.append(values)
    if not rows:
        raise CliError(f"{path}: no rows")
    return rows


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_json(path: Path) -> Any:
    return _parse_json(path, path.read_text())


def _parse_json(path: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CliError(f"{path}: not valid JSON ({exc})") from None


def parse_option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE read as JSON (``true``, ``0.5``, ``[1, 2]``, ``null``); a value
    that is not JSON stays a string, which the engine then rejects with a clear message."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def human_report(result: dict[str, Any]) -> str:
    """The result as a small table: one line per sample, then the totals."""
    shape = tuple(result["shape"])
    header = [
        f"loss       {result['loss']}",
        f"dtype      {result['dtype']}",
        f"reduction  {result['reduction']}",
        f"shape      {list(shape)}",
        "",
    ]
    rows = [("sample", "loss")]
    for flat, value in enumerate(result["per_sample"]):
        index = np.unravel_index(flat, shape) if shape else ()
        rows.append((",".join(str(int(i)) for i in index) or "-", _text(value)))
    totals = [
        "",
        f"mean   {_text(result['mean'])}",
        f"sum    {_text(result['sum'])}",
        f"count  {_text(result['count'])}",
        f"value  {_text(result['value'])}",
    ]
    if result["non_finite"]:
        totals.append(f"non-finite per-sample values: {result['non_finite']}")
    return "\n".join([*header, _table(rows), *totals, *_derivative_lines(result)])


#: The derivative fields of a result, with their table headings.
_DERIVATIVES = (("gradient", "gradient"), ("hessian_diagonal", "hessian diagonal"))


def _derivative_lines(result: dict[str, Any]) -> list[str]:
    """With --gradient/--hessian-diagonal: one line per y_pred element, then the non-finite
    counts; nothing otherwise."""
    asked = [(field, title) for field, title in _DERIVATIVES if field in result]
    if not asked:
        return []
    shape = tuple(result["y_pred_shape"])
    rows = [("y_pred", *(title for _, title in asked))]
    for flat in range(int(np.prod(shape))):
        index = np.unravel_index(flat, shape)
        cells = (_text(result[field][flat]) for field, _ in asked)
        rows.append((",".join(str(int(i)) for i in index), *cells))
    lines = ["", f"derivatives of {_derived_value(result['reduction'])} by y_pred element", ""]
    lines.append(_table(rows))
    for field, title in asked:
        if result[f"{field}_non_finite"]:
            lines.append(f"non-finite {title} values: {result[f'{field}_non_finite']}")
    return lines


def _derived_value(reduction: str) -> str:
    return "sum (reduction none)" if reduction == "none" else "value"


def _text(value: Any) -> str:
    return "nan/inf" if value is None or not np.isfinite(value) else str(value)


def run_eval(args: argparse.Namespace) -> int:
    """Evaluate a loss on local files and print the result."""
    options: dict[str, Any] = {}
    for key, value in args.option:
        if key in options:
            raise CliError(f"option {key!r} given twice")
        options[key] = value
    if [args.y_true, args.y_pred, args.sample_weight].count(STDIN) > 1:
        raise CliError("only one of --y-true, --y-pred and --sample-weight can read stdin (-)")
    y_true = read_tensor(args.y_true)
    y_pred = read_tensor(args.y_pred)
    weights = None if args.sample_weight is None else read_tensor(args.sample_weight)
    try:
        evaluation = evaluate(
            args.name,
            y_true,
            y_pred,
            sample_weight=weights,
            options=options,
            reduction=args.reduction,
            dtype=args.dtype,
            gradient=args.gradient,
            hessian_diagonal=args.hessian_diagonal,
        )
    except LossError as exc:
        raise CliError(report(exc, CLI).detail) from None
    result = evaluation_fields(evaluation)
    print(dumps(result).decode() if args.json else human_report(result))
    return 0


# --------------------------------------------------------------------------------------------
# the parser


def build_parser() -> argparse.ArgumentParser:
    """The ``lossd`` parser with its three subcommands."""
    parser = argparse.ArgumentParser(
        prog="lossd",
        description="lossd evaluates Keras loss functions: as an HTTP service (serve) or "
        "locally on files (eval). `lossd COMMAND --help` explains each command.",
    )
    parser.add_argument("--version", action="version", version=f"lossd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    raw = argparse.RawDescriptionHelpFormatter

    serve = sub.add_parser(
        "serve",
        help="run the HTTP server",
        description="Run the HTTP server (uvicorn). Each flag overrides its LOSSD_* variable,\n"
        "which overrides the default.",
        epilog=_env_only_settings() + SERVE_EXAMPLES,
        formatter_class=raw,
    )
    for name in SERVE_FLAGS:
        _add_setting_flag(serve, name)
    serve.set_defaults(run=run_serve)

    losses = sub.add_parser(
        "losses",
        help="list every loss with its aliases and options",
        description="List every loss: canonical name, the other names it answers to and its "
        "options with their defaults.",
        epilog=LOSSES_EXAMPLES,
        formatter_class=raw,
    )
    losses.add_argument("--json", action="store_true", help="print the catalogue as JSON")
    losses.add_argument(
        "--flavour", choices=("keras", "torch"), help="only the losses of this flavour"
    )
    losses.set_defaults(run=run_losses)

    ev = sub.add_parser(
        "eval",
        help="evaluate a loss on local files",
        description="Evaluate loss NAME (any accepted name, any case) on tensors read from files, "
        "locally, with the server's engine. Prints the per-sample losses, mean, sum and count.",
        epilog=EVAL_EXAMPLES,
        formatter_class=raw,
    )
    ev.add_argument("name", metavar="NAME", help="the loss, e.g. mse, huber, BinaryCrossentropy")
    ev.add_argument(
        "--y-true", required=True, type=Path, metavar="FILE", help="the targets (- for stdin)"
    )
    ev.add_argument(
        "--y-pred", required=True, type=Path, metavar="FILE", help="the predictions (- for stdin)"
    )
    ev.add_argument(
        "--sample-weight", type=Path, metavar="FILE", help="optional per-sample weights"
    )
    ev.add_argument(
        "--option",
        action="append",
        default=[],
        type=parse_option,
        metavar="KEY=VALUE",
        help="a loss option, VALUE as JSON (e.g. delta=0.5, from_logits=true); repeatable",
    )
    ev.add_argument(
        "--reduction",
        choices=REDUCTIONS,
        default=None,
        help="what `value` holds, in the loss's flavour (default: the loss's own, "
        "sum_over_batch_size or torch's mean)",
    )
    ev.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        default="float32",
        help="computation dtype (default: %(default)s)",
    )
    ev.add_argument(
        "--gradient",
        action="store_true",
        help="also print d value / d y_pred for every y_pred element (of the sum for reduction "
        "none)",
    )
    ev.add_argument(
        "--hessian-diagonal",
        action="store_true",
        help="also print d^2 value / d y_pred_i^2 for every y_pred element",
    )
    ev.add_argument("--json", action="store_true", help="print the result as one JSON object")
    ev.set_defaults(run=run_eval)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lossd`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # `lossd` alone: what it can do, not an error
        parser.print_help()
        return 0
    try:
        status: int = args.run(args)
    except SettingsError as exc:
        parser.exit(2, f"lossd {args.command}: error: {exc}\n")  # a usage error
    except CliError as exc:
        print(f"lossd {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())
