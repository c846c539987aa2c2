"""Process concerns, apart from the web layer: exit signals and malloc tuning.

The app's lifespan (:mod:`app.main`), ``lossd serve`` (:mod:`app.cli`) and the worker supervisor
(:mod:`app.supervisor`) use these; nothing here imports a web framework.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any


def on_exit_signal(callback: Callable[[], None]) -> None:
    """Call ``callback`` as soon as SIGTERM or SIGINT arrives, then let the handler already in
    place (uvicorn's graceful shutdown) run. uvicorn reports the shutdown to the application only
    once every connection has closed; this is how ``/readyz`` turns 503 while requests drain.
    Signals can only be handled in the main thread: elsewhere (a test client) this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)

        def handler(
            signum: int, frame: FrameType | None, previous: Any = previous, sig: int = sig
        ) -> None:
            callback()
            if callable(previous):
                previous(signum, frame)
            elif previous == signal.SIG_DFL:  # nobody else handles it: do what it would have
                signal.signal(sig, signal.SIG_DFL)
                signal.raise_signal(sig)

        signal.signal(sig, handler)


@contextmanager
def exit_zero_on_sigterm() -> Iterator[None]:
    """Around ``uvicorn.run``: uvicorn re-raises SIGTERM once its graceful shutdown is over,
    which would end the process with status 143; exit 0 instead, a clean stop."""

    def stop(signum: int, frame: FrameType | None) -> None:
        sys.exit(0)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


#: mallopt's M_ARENA_MAX (glibc's malloc.h).
M_ARENA_MAX = -8
MALLOC_ARENAS = 2


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas at ``arenas``; whether the cap was set.

    glibc gives threads that contend for malloc arenas of their own, up to 8 per core, and keeps
    what each arena once held. Large bodies are decoded in the thread pool, a different thread
    each time, so a worker's RSS kept growing towards the sum of their peaks, not the peak of
    what runs at once: the load test (20 MiB bodies among small requests, 2 workers) measured
    2.7 GiB with the default arenas and 0.9 GiB with 2, for the same traffic. An
    explicit ``MALLOC_ARENA_MAX`` in the environment wins; other C libraries are left alone.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    if not hasattr(libc, "gnu_get_libc_version"):  # glibc's mallopt only
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, arenas))
