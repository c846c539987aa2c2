"""Log lines on stdout, JSON (one object per line) or text, through the standard logging module.

Every record of the ``lossd`` loggers goes to stdout: the request log (``lossd.access``, one line
per request) and the rest (``lossd``: unexpected errors with their traceback). A record written
while a request is handled carries that request's id.
"""

from __future__ import annotations

import copy
import logging
import sys
import time
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


class RequestLog:
    """The request log: one ``lossd.access`` record per request, at level info.

    With the loggers as :func:`configure_logging` leaves them (the ``lossd`` logger's one
    :class:`StdoutHandler` with a formatter of ours, no filter anywhere), a line goes straight to
    that handler in a record holding only what those formatters read. ``Logger.info`` would also
    walk the stack for the caller's file and line and look up the process, thread and module
    names, which no line prints: more than half of the cost of a line. Any other set-up (a
    handler, filter or formatter added by whoever embeds the app) gets full records through
    ``logging`` as before.
    """

    def __init__(self) -> None:
        self.logger = logging.getLogger(ACCESS_LOGGER)
        self.parent = logging.getLogger(LOGGER)

    def enabled(self) -> bool:
        """Whether a request line would be written at all (checked before building one)."""
        return self.logger.isEnabledFor(logging.INFO)

    def write(self, fields: dict[str, Any]) -> None:
        """Write one request line with ``fields`` (call only when :meth:`enabled`)."""
        handler = self._direct_handler()
        if handler is None:
            self.logger.info("request", extra={"fields": fields})
            return
        record = logging.LogRecord.__new__(logging.LogRecord)
        created = time.time()
        record.__dict__.update(
            name=ACCESS_LOGGER,
            msg="request",
            args=(),
            levelname="INFO",
            levelno=logging.INFO,
            created=created,
            msecs=int((created - int(created)) * 1000) + 0.0,  # as LogRecord computes it
            exc_info=None,
            exc_text=None,
            stack_info=None,
            fields=fields,
        )
        handler.handle(record)

    def _direct_handler(self) -> logging.Handler | None:
        """The handler every request line reaches, when it is ours alone; else None."""
        access, parent = self.logger, self.parent
        if (
            access.handlers
            or access.filters
            or access.disabled
            or not access.propagate
            or access.parent is not parent
            or parent.filters
            or parent.disabled
            or parent.propagate
            or len(parent.handlers) != 1
        ):
            return None
        handler = parent.handlers[0]
        if (
            type(handler) is not StdoutHandler
            or handler.filters
            or handler.level > logging.INFO
            or type(handler.formatter) not in (JsonFormatter, TextFormatter)
        ):
            return None
        return handler


def uvicorn_log_config(log_format: str) -> dict[str, Any]:
    """uvicorn's logging configuration with its own lines (start-up, shutdown, errors, on
    stderr) in ``log_format`` too. ``lossd serve`` passes it; plain uvicorn keeps its format."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    if log_format == "json":
        config["formatters"]["default"] = {"()": f"{__name__}.JsonFormatter"}
    return config
