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
from collections.abc import Callable, Iterator, Mapping
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


def _glibc_mallopt() -> Any:
    """glibc's ``mallopt`` (typed), or None under another C library."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    if not hasattr(libc, "gnu_get_libc_version"):  # glibc's mallopt only
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt


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
    mallopt = _glibc_mallopt()
    return mallopt is not None and bool(mallopt(M_ARENA_MAX, arenas))


#: mallopt's M_TRIM_THRESHOLD and M_MMAP_THRESHOLD (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Free memory at the top of a heap glibc keeps rather than returning it to the kernel.
TRIM_THRESHOLD = 64 * 1024 * 1024
#: Blocks from this size up are mapped on their own (and unmapped when freed): body buffers.
MMAP_THRESHOLD = 16 * 1024 * 1024


def keep_freed_memory(
    trim_threshold: int = TRIM_THRESHOLD, mmap_threshold: int = MMAP_THRESHOLD
) -> bool:
    """Fix glibc's trim and mmap thresholds (64 MiB and 16 MiB); whether they were set.

    By default both follow the largest block freed so far (the trim threshold is twice the mmap
    threshold, 8 MiB after a 1000 x 1000 float32 array): a computation whose temporaries free
    more than that at once has the heap trimmed behind it, and its next run takes every page of
    its fresh temporaries from the kernel again, a page fault per 4 KiB, which costs more than
    the arithmetic that fills them (a loss's derivatives: up to eight 4 MB buffers; see
    docs/derivatives.md, "Cost"). Fixed, a worker keeps up to 64 MiB of freed heap per arena for
    its next request, while blocks of 16 MiB and more (large bodies and their arrays) are still
    mapped and returned to the kernel as soon as they are freed (docs/memory.md). Either
    variable in the environment (``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_MMAP_THRESHOLD_``) leaves
    both as they are: the operator's choice stands.
    """
    if {"MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"} & set(os.environ):
        return False
    mallopt = _glibc_mallopt()
    if mallopt is None:
        return False
    # mmap first: fixing either threshold stops glibc adjusting the other.
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(
        mallopt(M_TRIM_THRESHOLD, trim_threshold)
    )


#: glibc's tunable (2.35 and later) that has malloc ask the kernel for transparent huge pages
#: (``madvise(MADV_HUGEPAGE)``) on the memory it maps; older versions ignore it.
HUGE_PAGES_TUNABLE = "glibc.malloc.hugetlb=1"


def huge_page_environment(environ: Mapping[str, str]) -> dict[str, str] | None:
    """``environ`` with ``GLIBC_TUNABLES`` set to :data:`HUGE_PAGES_TUNABLE`, or None when a
    restart would change nothing: not Linux with glibc, or ``GLIBC_TUNABLES`` already set (the
    operator's choice stands, and a restarted process finds it set).

    Why: a large body is gathered into a buffer that glibc maps afresh (past the 16 MiB mmap
    threshold), and every 4 KiB page of it faults on first touch: 20,000 faults and 70 ms for an
    80 MB body here, 34 ms with huge pages, and 1e7 float32 pairs over /v2 went from 13-19 to
    9 ns a pair, the JSON ones from 135-150 to 103 ns, with the same peak RSS (T3, P5). Tunables
    are read when a process starts, so ``lossd serve`` restarts itself once with it set."""
    if "GLIBC_TUNABLES" in environ or _glibc_mallopt() is None:
        return None
    return {**environ, "GLIBC_TUNABLES": HUGE_PAGES_TUNABLE}


def restart_with_huge_pages() -> None:
    """Replace this process by the same command with :func:`huge_page_environment`'s
    environment (same PID, so a supervisor sees nothing), when that changes anything; else
    return. Call it before anything starts (no thread, socket or output yet)."""
    environ = huge_page_environment(os.environ)
    if environ is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, environ)
