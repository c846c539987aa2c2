"""What one request tells the observability middleware: its id, its loss, the values evaluated.

The middleware creates an :class:`Observation` per request and makes it current for the request's
whole context (its task, and the worker threads it offloads to). The route layer fills it in with
:func:`observation`, so nothing has to parse a body a second time::

    observation().loss = spec.name                     # the request's loss label
    observation().evaluated(spec.name, y_pred_array)   # after each completed evaluation
"""

from __future__ import annotations

import os
import random
import re
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol

#: A client's ``X-Request-ID`` is kept when it is 1 to 128 visible ASCII characters (no spaces,
#: no control characters); anything else is replaced by a generated id.
SANE_REQUEST_ID = re.compile(rb"[\x21-\x7e]{1,128}")


class _Sized(Protocol):
    @property
    def size(self) -> int: ...


@dataclass(slots=True)
class Observation:
    """One request as the metrics and the request log see it.

    ``loss`` is the canonical name of the loss the request evaluates (empty when none), the
    ``loss`` label of ``lossd_http_requests_total``. ``elements`` counts, per canonical loss, the
    values of ``y_pred`` in every evaluation the engine completed (a (2, 3) ``y_pred`` is 6).
    """

    request_id: str
    loss: str = ""
    elements: dict[str, int] = field(default_factory=dict)

    def evaluated(self, loss: str, y_pred: _Sized | None) -> None:
        """Count one completed evaluation of ``loss`` (canonical name) on ``y_pred``."""
        if y_pred is not None:
            self.elements[loss] = self.elements.get(loss, 0) + y_pred.size


CURRENT: ContextVar[Observation | None] = ContextVar("lossd_observation", default=None)


def observation() -> Observation:
    """The current request's observation; outside a request, a detached one nobody reads."""
    return CURRENT.get() or Observation("")


def current_request_id() -> str | None:
    """The id of the request being handled, if any (for log lines written during it)."""
    obs = CURRENT.get()
    return obs.request_id if obs is not None else None


def request_id(header: bytes | None) -> str:
    """The client's ``X-Request-ID`` when it is sane, else a new one (a uuid4 in hex)."""
    if header is not None and SANE_REQUEST_ID.fullmatch(header):
        return header.decode("ascii")
    return new_request_id()


# A request id needs to be unique, not secret (a client may send any id it likes): 122 random
# bits from a generator of this process, seeded from os.urandom and again in a forked child, cost
# a tenth of uuid.uuid4() (an os.urandom call and a UUID object per request).
_ids = random.Random()
os.register_at_fork(after_in_child=_ids.seed)
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))  # version and variant bits, as uuid.UUID sets
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_request_id() -> str:
    """A new request id: a random uuid4 as 32 lowercase hex digits (``uuid.uuid4().hex``)."""
    # to_bytes().hex(), not a format spec: half the cost, the same 32 digits
    return (_ids.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET).to_bytes(16).hex()
