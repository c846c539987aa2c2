"""Admission's bookkeeping, as plain code (no ASGI): what the requests in progress in one worker
hold, and what a body is charged. :mod:`app.api.gate` applies it to each request.

- **large requests** (a body over ``LOSSD_LARGE_BODY_BYTES``, known from Content-Length, or counted
  while a chunked body arrives; a compressed body always counts as large) need one of
  ``LOSSD_MAX_CONCURRENT_LARGE`` permits;
- **in-flight bytes**: the bodies of the requests in progress may hold at most
  ``LOSSD_MAX_INFLIGHT_BYTES``, except that a request finding no other one holding bytes is
  always taken (so any body up to ``LOSSD_MAX_BODY_BYTES`` can run, on its own). A request is
  charged the bytes of its body that have *arrived*, its claim growing with each chunk (a
  compressed body: its bytes as they inflate; an NDJSON stream: its longest line,
  :class:`LineMeter`), which is what it holds in memory. Charging what a body declares would
  let one connection that declares 64 MiB and sends a byte hold the whole budget; a body that
  declares more than fits now is refused before it is read (:meth:`Ticket.check`), so a client
  still learns early. Bodies of at most ``small_body_bytes`` (64 KiB) are not charged: the
  routes decode them one at a time on the event loop (``/v2`` on the thread pool, 40 at most),
  so they cannot add up, and a large body is not kept out by the trickle of small requests
  beside it;
- **pace** (:class:`Pace`): what a body holds, it holds only as long as it keeps arriving: each
  gap at most ``LOSSD_BODY_TIMEOUT_S``, and, after ``LOSSD_BODY_GRACE_S``, on average at least
  ``LOSSD_BODY_MIN_RATE`` bytes/s (so a body of N bytes has grace + N / rate seconds in all,
  not counting the time the application keeps a chunk before asking for the next). A stream is
  long-lived by design: no total, but its line in progress (what it holds) must arrive at that
  rate, and between lines only the gap applies.

Decoding multiplies memory (a JSON body is parsed into Python objects before it becomes NumPy
arrays): peak RSS per worker is about 70 MB + F x max(LOSSD_MAX_INFLIGHT_BYTES,
LOSSD_MAX_BODY_BYTES), with F measured at 2 for binary tensors, 5 for JSON of full-precision
floats, 17-26 for JSON of short numbers and 31 for /v2 JSON ``data`` of one-digit integers; the
docs/memory.md states the bound.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    """The settings admission works with (per worker process)."""

    large_body_bytes: int
    max_concurrent_large: int
    max_inflight_bytes: int
    max_body_bytes: int
    body_timeout_s: float
    body_min_rate: int
    body_grace_s: float
    #: Bodies up to this size are not charged: the routes decode them one at a time (see the
    #: module's doc), so this is the size up to which they do (``bodies.INLINE_BODY_BYTES``).
    small_body_bytes: int


class Admission:
    """The permits and bytes held by the requests of this process. All of them run on one event
    loop and each change is synchronous, so there is nothing to lock."""

    def __init__(self, limits: AdmissionLimits) -> None:
        self.limits = limits
        self.large = 0  # large requests in progress
        self.inflight_bytes = 0  # bytes charged to the requests in progress

    def ticket(self) -> Ticket:
        """An empty claim for one request."""
        return Ticket(self)


class Ticket:
    """What one request holds: its charged bytes and maybe a large permit."""

    __slots__ = ("admission", "charge", "large")

    def __init__(self, admission: Admission) -> None:
        self.admission = admission
        self.charge = 0
        self.large = False

    def check(self, charge: int, large: bool) -> str | None:
        """Why a claim of ``charge`` bytes (and a large permit when ``large``) would be refused
        now, or None; nothing is claimed."""
        adm, limits = self.admission, self.admission.limits
        if large and not self.large and adm.large >= limits.max_concurrent_large:
            return (
                f"{adm.large} large requests are in progress, the most this worker takes "
                "(LOSSD_MAX_CONCURRENT_LARGE)"
            )
        if charge <= limits.small_body_bytes:
            return None
        others = adm.inflight_bytes - self.charge  # bytes held by other requests
        if charge > self.charge and others > 0 and others + charge > limits.max_inflight_bytes:
            return (
                f"request bodies in progress hold {adm.inflight_bytes / MiB:.1f} MiB and this one "
                f"needs {charge / MiB:.1f} MiB of this worker's budget of "
                f"{limits.max_inflight_bytes / MiB:.1f} MiB (LOSSD_MAX_INFLIGHT_BYTES)"
            )
        return None

    def claim(self, charge: int, large: bool) -> str | None:
        """Grow the claim to ``charge`` bytes (and a large permit when ``large``); on refusal, why
        (the claim is then unchanged)."""
        refusal = self.check(charge, large)
        if refusal is not None:
            return refusal
        adm = self.admission
        if large and not self.large:
            self.large = True
            adm.large += 1
        if charge > self.charge and charge > adm.limits.small_body_bytes:
            adm.inflight_bytes += charge - self.charge
            self.charge = charge
        return None

    def release(self) -> None:
        """Give everything back (idempotent)."""
        self.admission.inflight_bytes -= self.charge
        self.admission.large -= self.large
        self.charge = 0
        self.large = False


class Pace:
    """When the next bytes of one body must arrive (see the module's doc): within ``gap_s`` of
    the application asking for them, and, from ``grace_s`` after the body (or a stream's line)
    began, at an average of ``min_rate`` bytes/s over the time the application was asking (what
    it spent between two chunks is :meth:`exclude`d). Times are the event loop's clock."""

    __slots__ = ("counted", "gap_s", "grace_s", "min_rate", "since")

    def __init__(self, limits: AdmissionLimits, now: float | None) -> None:
        self.gap_s = limits.body_timeout_s
        self.grace_s = limits.body_grace_s
        self.min_rate = limits.body_min_rate
        self.since = now  # when the bytes counted began to arrive; None: only the gap applies
        self.counted = 0

    def deadline(self, now: float) -> tuple[float, bool]:
        """When the next bytes are due, and whether that is the minimum rate's deadline (rather
        than the gap's)."""
        gap = now + self.gap_s
        if self.since is None:
            return gap, False
        paced = self.since + self.grace_s + self.counted / self.min_rate
        return (paced, True) if paced < gap else (gap, False)

    def arrived(self, size: int) -> None:
        """``size`` more bytes of the body arrived."""
        self.counted += size

    def exclude(self, seconds: float) -> None:
        """Leave ``seconds`` out of the rate's time: the application took them before asking for
        more of the body, which waited in the socket meanwhile (only the gap counts from the
        moment it asks)."""
        if self.since is not None:
            self.since += seconds

    def follow_line(self, now: float, pending: int, ended: bool) -> None:
        """A stream's line in progress now has ``pending`` bytes: the rate applies to it, from
        the chunk it began in; with no line in progress, only the gap does. ``ended``: a line
        ended in this chunk, so the one in progress (most chunks end part-way through a line)
        began in it."""
        if pending == 0:
            self.since = None
        elif self.since is None or ended:
            self.since = now
        self.counted = pending


class LineTooLongError(Exception):
    """A line of an NDJSON body passed the line limit; ``line`` is its number, from 1."""

    def __init__(self, line: int, limit: int) -> None:
        super().__init__(f"line {line} is longer than {limit} bytes")
        self.line = line
        self.limit = limit


class LineMeter:
    """The longest line of an NDJSON body seen so far (what a stream holds in memory), each line
    bounded by ``limit`` bytes (its newline not counted; no bound by default): :meth:`feed` raises
    :class:`LineTooLongError` as soon as a line passes it, before the rest of the line arrives."""

    __slots__ = ("current", "limit", "lines", "longest")

    def __init__(self, limit: int = sys.maxsize) -> None:
        self.limit = limit
        self.current = 0  # bytes of the line not finished yet
        self.longest = 0  # of the finished lines
        self.lines = 0  # finished lines

    def feed(self, chunk: bytes) -> int:
        """Account for ``chunk``; the longest line so far, the unfinished one included."""
        first = chunk.find(b"\n")
        if first < 0:
            self.current += len(chunk)
        else:
            last = chunk.rfind(b"\n")
            longest = self.current + first
            self._check(longest, self.lines + 1)
            # Only a chunk whose inner part is longer than any line so far can hold a longer
            # line; while every line is within the limit, so is then every inner line.
            if last - first - 1 > max(self.longest, longest):
                sizes = list(map(len, chunk[first + 1 : last].split(b"\n")))
                inner = max(sizes)
                if inner > self.limit:
                    over = next(i for i, size in enumerate(sizes) if size > self.limit)
                    raise LineTooLongError(self.lines + 2 + over, self.limit)
                longest = max(longest, inner)
            self.longest = max(self.longest, longest)
            self.lines += chunk.count(b"\n", first, last + 1)
            self.current = len(chunk) - last - 1
        self._check(self.current, self.lines + 1)
        return max(self.longest, self.current)

    def _check(self, size: int, line: int) -> None:
        if size > self.limit:
            raise LineTooLongError(line, self.limit)
