"""Admission's bookkeeping (app/api/accounting.py), without any request: permits, the byte
budget, what is checked and what is charged, streams' lines, a body's pace."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.api.accounting import (
    Admission,
    AdmissionLimits,
    LineMeter,
    LineTooLongError,
    Pace,
    Ticket,
)

LIMITS = AdmissionLimits(
    large_body_bytes=100,
    max_concurrent_large=2,
    max_inflight_bytes=1000,
    max_body_bytes=5000,
    body_timeout_s=1.0,
    body_min_rate=100,
    body_grace_s=2.0,
    small_body_bytes=10,
)


def test_large_permits_are_limited_and_given_back() -> None:
    adm = Admission(LIMITS)
    a, b, c = Ticket(adm), Ticket(adm), Ticket(adm)
    assert a.claim(200, True) is None
    assert b.claim(200, True) is None
    refusal = c.claim(200, True)
    assert refusal is not None and "LOSSD_MAX_CONCURRENT_LARGE" in refusal
    assert (adm.large, adm.inflight_bytes) == (2, 400)  # the refused claim took nothing
    a.release()
    a.release()  # idempotent
    assert c.claim(200, True) is None
    b.release()
    c.release()
    assert (adm.large, adm.inflight_bytes) == (0, 0)


def test_the_byte_budget_is_a_hard_cap_but_for_a_request_alone() -> None:
    adm = Admission(LIMITS)
    a, b, c = Ticket(adm), Ticket(adm), Ticket(adm)
    assert a.claim(600, True) is None
    assert b.claim(300, False) is None  # 900 of 1000
    refusal = c.claim(200, False)
    assert refusal is not None and "LOSSD_MAX_INFLIGHT_BYTES" in refusal
    a.release()
    assert c.claim(200, False) is None  # 500 now
    b.release()
    c.release()
    # Alone, a request is taken whatever its size: it could never run otherwise...
    big, small = Ticket(adm), Ticket(adm)
    assert big.claim(4000, True) is None
    # ...and nothing charged comes in beside it.
    assert small.claim(50, False) is not None
    # Tiny bodies are not charged: they are decoded one at a time.
    for _ in range(100):
        assert Ticket(adm).claim(10, False) is None
    assert adm.inflight_bytes == 4000


def test_a_claim_grows_as_a_chunked_body_arrives() -> None:
    adm = Admission(LIMITS)
    first, second = Ticket(adm), Ticket(adm)
    assert first.claim(600, True) is None
    assert second.claim(50, False) is None
    assert second.claim(300, False) is None  # 950 of 1000
    refusal = second.claim(500, True)  # over the budget while `first` runs
    assert refusal is not None
    assert (second.charge, second.large, adm.large, adm.inflight_bytes) == (300, False, 1, 900)
    first.release()
    assert second.claim(500, True) is None  # alone now
    second.release()
    assert (adm.large, adm.inflight_bytes) == (0, 0)


@pytest.mark.parametrize(
    ("chunks", "longest"),
    [
        ([b"abc"], 3),
        ([b"ab", b"cd\nx"], 4),
        ([b"a\nbbbbbb\ncc"], 6),
        ([b"a\n", b"bbb", b"bbb\n", b"c"], 6),
        ([b"\n\n\n"], 0),
        ([b"aaaa\nb\n", b"cc\nddddddd"], 7),
        ([b"aa\n" * 100 + b"b" * 50 + b"\n" + b"c\n" * 100], 50),
    ],
)
def test_line_meter_tracks_the_longest_line(chunks: list[bytes], longest: int) -> None:
    meter = LineMeter()
    seen = [meter.feed(chunk) for chunk in chunks]
    assert seen[-1] == longest
    whole = b"".join(chunks)
    assert seen[-1] == max(len(line) for line in whole.split(b"\n"))


@pytest.mark.parametrize(
    ("chunks", "line"),
    [
        ([b"abcdef"], 1),  # the first line, unfinished
        ([b"abcdef\nab"], 1),  # the head of a chunk
        ([b"ab\nabcdef"], 2),  # its tail
        ([b"a\nb\nabcdef\nc\n"], 3),  # an inner line
        ([b"a\nbb", b"bb", b"bb\n"], 2),  # across chunks: refused before its end arrives
        ([b"a\n\n\n", b"abc", b"abc"], 4),
    ],
)
def test_line_meter_names_the_first_line_over_its_limit(chunks: list[bytes], line: int) -> None:
    meter = LineMeter(limit=5)
    with pytest.raises(LineTooLongError) as raised:
        for chunk in chunks:
            meter.feed(chunk)
    assert (raised.value.line, raised.value.limit) == (line, 5)


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(st.integers(0, 12), min_size=1, max_size=30),
    cuts=st.lists(st.integers(0, 400), max_size=12),
    limit=st.integers(0, 10),
)
def test_line_meter_refuses_at_the_first_chunk_a_line_passes_the_limit(
    lines: list[int], cuts: list[int], limit: int
) -> None:
    """Against a reference reading every prefix whole: the meter refuses exactly when some line
    of the body received so far is over the limit, naming the first such line."""
    body = b"\n".join(b"x" * n for n in lines)
    bounds = sorted({0, len(body), *(c for c in cuts if c < len(body))})
    meter = LineMeter(limit)
    for start, end in itertools.pairwise(bounds):
        sizes = [len(line) for line in body[:end].split(b"\n")]
        over = [number for number, size in enumerate(sizes, start=1) if size > limit]
        if over:
            with pytest.raises(LineTooLongError) as raised:
                meter.feed(body[start:end])
            assert raised.value.line == over[0]
            return
        assert meter.feed(body[start:end]) == max(sizes)


def test_a_check_claims_nothing() -> None:
    """What a body declares is checked before it is read, but only what arrives is charged: one
    connection declaring the whole budget holds nothing while its bytes do not come."""
    adm = Admission(LIMITS)
    declared = adm.ticket()
    assert declared.check(1000, True) is None
    declared.claim(0, True)  # the permit is taken, no bytes
    assert (adm.large, adm.inflight_bytes) == (1, 0)
    other = adm.ticket()
    assert other.claim(900, True) is None  # the declared 1000 bytes did not keep it out
    refusal = declared.check(1000, True)
    assert refusal is not None and "LOSSD_MAX_INFLIGHT_BYTES" in refusal
    assert declared.claim(50, True) is None  # what has arrived still fits
    assert declared.claim(200, True) is not None  # growing past the budget is refused
    assert (adm.large, adm.inflight_bytes) == (2, 950)
    for ticket in (declared, other):
        ticket.release()
    assert (adm.large, adm.inflight_bytes) == (0, 0)


def test_a_body_must_keep_its_pace_once_its_grace_is_over() -> None:
    pace = Pace(LIMITS, now=100.0)  # gap 1 s, grace 2 s, 100 bytes/s
    assert pace.deadline(100.0) == (101.0, False)  # the gap comes first
    pace.arrived(50)
    assert pace.deadline(101.9) == (102.5, True)  # 2 s + 50 bytes at 100 bytes/s
    pace.arrived(1000)
    assert pace.deadline(103.0) == (104.0, False)  # ahead of the rate: the gap again
    assert pace.deadline(112.4) == (112.5, True)  # a trickle falls behind: the rate cuts it


def test_a_streams_pace_follows_its_line_in_progress() -> None:
    pace = Pace(dataclasses.replace(LIMITS, body_timeout_s=30.0), now=None)
    assert pace.deadline(500.0) == (530.0, False)  # between lines, only the gap
    pace.follow_line(500.0, 30, ended=False)  # a line began
    assert pace.deadline(500.5) == (500.0 + 2 + 0.3, True)
    pace.follow_line(501.0, 80, ended=False)  # it grew
    assert pace.deadline(501.0) == (500.0 + 2 + 0.8, True)
    pace.follow_line(502.0, 0, ended=True)  # it ended: the next one starts its own grace
    assert pace.deadline(520.0) == (550.0, False)
    pace.follow_line(520.0, 10, ended=False)
    assert pace.deadline(520.0) == (520.0 + 2 + 0.1, True)
    pace.follow_line(521.0, 40, ended=True)  # it ended and another began in the same chunk
    assert pace.deadline(521.0) == (521.0 + 2 + 0.4, True)


def test_time_the_application_keeps_a_chunk_is_not_the_clients() -> None:
    pace = Pace(LIMITS, now=100.0)  # gap 1 s, grace 2 s, 100 bytes/s
    pace.arrived(50)
    assert pace.deadline(101.0) == (102.0, False)
    pace.exclude(5.0)  # the application evaluated for 5 s before asking for more
    assert pace.deadline(106.0) == (107.0, False)  # as at 101.0: the gap, not a late rate
    assert pace.deadline(107.4) == (107.5, True)  # 5 s + 2 s + 50 bytes at 100 bytes/s
    between_lines = Pace(LIMITS, now=None)
    between_lines.exclude(5.0)  # nothing to shift: only the gap applies
    assert between_lines.deadline(110.0) == (111.0, False)
