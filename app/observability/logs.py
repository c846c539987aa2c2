"""Log lines on stdout, JSON (one object per line) or text, through the standard logging module.

Every record of the ``lossd`` loggers goes to stdout: the request log (``lossd.access``, one line
per request) and the rest (``lossd``: unexpected errors with their traceback). A record written
while a request is handled carries that request's id.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import select
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from app.observability.context import current_request_id

LOGGER = "lossd"
ACCESS_LOGGER = "lossd.access"
#: Request lines queued at most (see RequestLog.write): a bound should a loop stop before the
#: flush it was to run.
MAX_QUEUED_LINES = 256
#: The most bytes POSIX keeps whole in one write to a pipe (Linux: 4096).
PIPE_BUF = select.PIPE_BUF


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """A request line's fields, or the current request's id for any other record."""
    fields: dict[str, Any] | None = getattr(record, "fields", None)
    if fields is not None:
        return fields
    request_id = current_request_id()
    return {} if request_id is None else {"request_id": request_id}


# (second, its "YYYY-MM-DDTHH:MM:SS"), replaced as a whole: threads may log at the same time.
_second: tuple[int, str] = (0, "1970-01-01T00:00:00")


def iso_time(created: float) -> str:
    """``datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")``, the date
    and time formatted once per second: isoformat is most of a JSON line's formatting."""
    global _second
    second = int(created)
    micros = round((created - second) * 1e6)  # as fromtimestamp rounds: half to even
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    cached, text = _second
    if second != cached:
        text = datetime.fromtimestamp(second, UTC).isoformat()[:19]
        _second = (second, text)
    return f"{text}.{micros // 1000:03d}+00:00"


# --- Escaping: whatever a client sends (a path decoded from %0d%0a, a header), a log line stays
# one line of printable text, so nobody can forge a line or hide one (a carriage return, an ANSI
# escape). Python's str.isprintable is the test: C0 and C1 controls, DEL, the Unicode line and
# paragraph separators and format characters are all non-printable. Checking a line costs one
# C scan; only a line that fails it is escaped character by character.


def _escape_char(char: str) -> str:
    """``char`` as a JSON escape (``\\n``, ``\\u2028``; a surrogate pair past the BMP)."""
    code = ord(char)
    if code > 0xFFFF:
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return _SHORT_ESCAPES.get(char) or f"\\u{code:04x}"


_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def printable(text: str) -> str:
    """``text`` with every non-printable character written as its JSON escape. Inside a JSON
    string the escape reads back as the character; in a text line it shows what was sent."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape_char(c) for c in text)


class JsonFormatter(logging.Formatter):
    """``{"time": ..., "level": ..., "logger": ..., "message": ..., <fields>}`` on one line.

    orjson escapes the C0 controls, not DEL, the C1 controls (NEL breaks a line for some
    readers) or U+2028/U+2029: :func:`printable` escapes those, which stay valid JSON."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": iso_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        return _json_line(line)

    @staticmethod
    def request_line(created: float, fields: dict[str, Any]) -> str:
        """What :meth:`format` makes of a request record created at ``created`` with
        ``fields``, without the record: the request log's direct path (:class:`RequestLog`)."""
        line = {
            "time": iso_time(created),
            "level": "info",
            "logger": ACCESS_LOGGER,
            "message": "request",
            **fields,
        }
        return _json_line(line)


def _json_line(line: dict[str, Any]) -> str:
    """``line`` as one line of printable JSON. orjson escapes the C0 controls, so an all-ASCII
    line (the usual one; ``isascii`` is a flag of the string, not a scan) is printable unless it
    holds a DEL: one search for it rather than :func:`printable`'s check of every character."""
    text = orjson.dumps(line, default=str).decode()
    if text.isascii() and "\x7f" not in text:
        return text
    return printable(text)


class TextFormatter(logging.Formatter):
    """``<time> <LEVEL> <logger>: <message> key=value ...``; values with spaces, quotes, ``=``,
    backslashes or non-printable characters are quoted and escaped as JSON strings, so a value
    reads back exactly and a record is one line. A traceback follows its record indented by four
    spaces, each of its lines escaped: only a record starts a line at the first column."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        pairs = (f"{key}={_text(value)}" for key, value in _fields(record).items())
        return " ".join((printable(super().formatMessage(record)), *pairs))

    def format(self, record: logging.LogRecord) -> str:
        """``logging.Formatter.format`` with the traceback indented and escaped. It is formatted
        here, not read from ``record.exc_text``: another handler may have cached it raw there."""
        record.message = record.getMessage()
        record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        if record.exc_info:
            line += _indented(self.formatException(record.exc_info))
        elif record.exc_text:
            line += _indented(record.exc_text)
        if record.stack_info:
            line += _indented(self.formatStack(record.stack_info))
        return line


def _indented(text: str) -> str:
    """``text`` on lines of their own after a record, each indented and escaped."""
    return "".join(f"\n    {printable(line)}" for line in text.splitlines())


def _text(value: Any) -> str:
    if value is None:
        return "-"
    text = str(value)
    if text and text.isprintable() and not any(c in text for c in ' "=\\'):
        return text
    return printable(orjson.dumps(text).decode())


class StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler on whatever ``sys.stdout`` is when it writes (so redirections, pytest's
    capture included, see the lines)."""

    @property
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass

    def __init__(self) -> None:
        super().__init__()
        # Request lines queued by queue_line, not on stdout yet, oldest first (see RequestLog).
        self.pending: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Write and flush one line, after the request lines still queued so that the order
        stays (``StreamHandler.emit`` without a second lock and lookups of the stream for its
        flush). Called under the handler's lock, by :meth:`handle`."""
        try:
            line = self.format(record)
            stream = sys.stdout
            if self.pending:
                self._write_pending(stream)
            stream.write(line + self.terminator)
            stream.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def queue_line(self, line: str) -> bool:
        """Queue a formatted request line for the next :meth:`flush`; whether it is the only
        one queued (then the caller arranges that flush)."""
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            self.pending.append(line)
            return len(self.pending) == 1

    def flush(self) -> None:
        """Write the queued lines and flush stdout."""
        with self.lock:  # type: ignore[union-attr]
            stream = sys.stdout
            if self.pending:
                self._write_pending(stream)
            stream.flush()

    def _write_pending(self, stream: TextIO) -> None:
        """Write the queued lines, as many to a write as fit in PIPE_BUF bytes: a write to a
        pipe that size or smaller is never interleaved with other processes' writes, and the
        workers of ``lossd serve --workers N`` share their stdout. (A line longer than that is
        written alone, as it always was.)"""
        terminator = self.terminator
        lines, self.pending = self.pending, []
        chunk: list[str] = []
        size = 0
        for line in lines:
            # bytes at most: a line that is not ASCII counts 4 bytes a character (UTF-8)
            n = (len(line) if line.isascii() else 4 * len(line)) + len(terminator)
            if chunk and size + n > PIPE_BUF:
                stream.write("".join(chunk))
                chunk, size = [], 0
            chunk.append(line + terminator)
            size += n
        if chunk:
            stream.write("".join(chunk))


def formatter(log_format: str) -> logging.Formatter:
    """The formatter for ``LOSSD_LOG_FORMAT``: ``json`` or ``text``."""
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure_logging(level: str, log_format: str) -> None:
    """Send the ``lossd`` loggers to stdout in ``log_format`` at ``level``, and silence uvicorn's
    access log, which our request log replaces (as ``uvicorn --no-access-log`` would)."""
    logger = logging.getLogger(LOGGER)
    for old in [h for h in logger.handlers if isinstance(h, StdoutHandler)]:
        old.flush()  # its queued request lines
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
    that handler: a JSON line, formatted from the fields, is queued and written with the other
    lines of the same event-loop iteration; a text line goes in a record holding only what the
    formatter reads. ``Logger.info`` would also walk the stack for the caller's file and line
    and look up the process, thread and module names, which no line prints: more than half of
    the cost of a line. Any other set-up (a handler, filter or formatter added by whoever embeds
    the app) gets full records through ``logging`` as before.
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
        created = time.time()
        if type(handler.formatter) is JsonFormatter:
            # The default format needs no record at all: the line straight from the fields
            # (a record and Handler.handle's filter and emit calls were a fifth of the line's
            # cost). The line is queued and written with the others of this event-loop
            # iteration, in one write, once the loop has run what is ready now: with stdout
            # unbuffered (PYTHONUNBUFFERED=1, as the image runs lossd) every write is a write(2),
            # about 5% of a probe's CPU on a busy server. A stdout replaced in the process
            # (pytest's capture, redirect_stdout) gets its line at once: whoever replaced it
            # may read it from another thread as soon as the response is out.
            first = handler.queue_line(JsonFormatter.request_line(created, fields))
            if sys.stdout is not sys.__stdout__ or len(handler.pending) >= MAX_QUEUED_LINES:
                self._flush(handler)  # the bound: should a loop stop before its flush ran
            elif first:
                self._flush_soon(handler)
            return
        handler.handle(self._record(created, fields))

    def _flush_soon(self, handler: StdoutHandler) -> None:
        """Flush ``handler`` once the running event loop has run what is ready now (outside an
        event loop, at once)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._flush(handler)
            return
        loop.call_soon(self._flush, handler)

    def _flush(self, handler: StdoutHandler) -> None:
        """Write the queued lines; a failure is reported as Handler.handleError reports it."""
        try:
            handler.flush()
        except RecursionError:
            raise
        except Exception:
            handler.handleError(self._record(time.time(), {}))

    @staticmethod
    def _record(created: float, fields: dict[str, Any]) -> logging.LogRecord:
        """A record holding only what lossd's formatters read (see the class's doc)."""
        record = logging.LogRecord.__new__(logging.LogRecord)
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
        return record

    def _direct_handler(self) -> StdoutHandler | None:
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
    stderr) in ``log_format`` too, escaped like lossd's: the traceback uvicorn logs for a 500
    may carry what a client sent. ``lossd serve`` passes it; plain uvicorn keeps its format."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    name = "JsonFormatter" if log_format == "json" else "TextFormatter"
    config["formatters"]["default"] = {"()": f"{__name__}.{name}"}
    return config
