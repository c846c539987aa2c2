"""Log lines on stdout, JSON (one object per line) or text, through the standard logging module.

Every record of the ``lossd`` loggers goes to stdout: the request log (``lossd.access``, one line
per request) and the rest (``lossd``: unexpected errors with their traceback). A record written
while a request is handled carries that request's id.
"""

from __future__ import annotations

import copy
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from app.observability.context import current_request_id

LOGGER = "lossd"
ACCESS_LOGGER = "lossd.access"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """A request line's fields, or the current request's id for any other record."""
    fields: dict[str, Any] | None = getattr(record, "fields", None)
    if fields is not None:
        return fields
    request_id = current_request_id()
    return {} if request_id is None else {"request_id": request_id}


class JsonFormatter(logging.Formatter):
    """``{"time": ..., "level": ..., "logger": ..., "message": ..., <fields>}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """``<time> <LEVEL> <logger>: <message> key=value ...``; values with spaces are quoted."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        pairs = (f"{key}={_text(value)}" for key, value in _fields(record).items())
        return " ".join((super().formatMessage(record), *pairs))


def _text(value: Any) -> str:
    if value is None:
        return "-"
    text = str(value)
    return orjson.dumps(text).decode() if not text or any(c in text for c in ' "=') else text


class StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler on whatever ``sys.stdout`` is when it writes (so redirections, pytest's
    capture included, see the lines)."""

    @property
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


def formatter(log_format: str) -> logging.Formatter:
    """The formatter for ``LOSSD_LOG_FORMAT``: ``json`` or ``text``."""
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure_logging(level: str, log_format: str) -> None:
    """Send the ``lossd`` loggers to stdout in ``log_format`` at ``level``, and silence uvicorn's
    access log, which our request log replaces (as ``uvicorn --no-access-log`` would)."""
    logger = logging.getLogger(LOGGER)
    for old in [h for h in logger.handlers if isinstance(h, StdoutHandler)]:
        logger.removeHandler(old)
    handler = StdoutHandler()
    handler.setFormatter(formatter(log_format))
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
    access = logging.getLogger("uvicorn.access")
    access.handlers = []
    access.propagate = False


def uvicorn_log_config(log_format: str) -> dict[str, Any]:
    """uvicorn's logging configuration with its own lines (start-up, shutdown, errors, on
    stderr) in ``log_format`` too. ``lossd serve`` passes it; plain uvicorn keeps its format."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    if log_format == "json":
        config["formatters"]["default"] = {"()": f"{__name__}.JsonFormatter"}
    return config
