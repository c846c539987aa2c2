"""Several uvicorn workers, each accepting on its own ``SO_REUSEPORT`` socket.

Why not ``uvicorn.run(workers=N)``: there every worker accepts from one shared listening socket,
and asyncio accepts every pending connection on each wake-up, so connections that arrive together
(a client pool or a proxy opening its keep-alive connections) all land on whichever worker woke
first. Measured with 16 wrk connections and 2 workers: the server used 1.0 of the 2 cores and
served 1.0-1.1x one worker's requests. With one socket per worker the kernel spreads new
connections over the workers by their address hash.

The supervisor starts the workers, forwards SIGTERM and SIGINT to them (each finishes its
in-flight requests: uvicorn's graceful shutdown), replaces a worker that dies, and returns once
all have stopped.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import time
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

from app.runtime import exit_zero_on_sigterm

logger = logging.getLogger("uvicorn.error")

APP = "app.main:app"
#: How often the supervisor looks for dead workers, in seconds.
POLL_S = 0.5


def reuseport_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` that other workers may bind too (SO_REUSEPORT)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def _die_with_supervisor() -> None:
    """Ask Linux to SIGTERM this process when its parent dies (a SIGKILLed supervisor must not
    leave workers holding the port); a no-op elsewhere."""
    pr_set_pdeathsig = 1  # <linux/prctl.h>
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def run_worker(options: dict[str, Any]) -> None:
    """One worker process: uvicorn on its own socket (the target of each spawned process)."""
    import uvicorn

    # Its own process group: a Ctrl-C in the terminal reaches only the supervisor, which sends
    # each worker one SIGTERM (a second signal would make uvicorn skip the graceful shutdown).
    os.setpgrp()
    _die_with_supervisor()
    config = uvicorn.Config(APP, **options)
    sock = reuseport_socket(config.host, config.port, config.backlog)
    with exit_zero_on_sigterm():
        uvicorn.Server(config).run(sockets=[sock])


def run_workers(options: dict[str, Any], workers: int) -> None:
    """Run ``workers`` worker processes with uvicorn ``options`` until SIGTERM or SIGINT."""
    # Bind once here first: a port already taken fails now, in the foreground, with one error.
    probe = reuseport_socket(options["host"], options["port"], 1)
    probe.close()
    context = multiprocessing.get_context("spawn")  # no forked copy of the parent's state
    stopping = False

    def start() -> BaseProcess:
        process = context.Process(target=run_worker, args=(options,), name="lossd-worker")
        process.start()
        return process

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    processes = [start() for _ in range(workers)]
    logger.info("started %d workers: %s", workers, [p.pid for p in processes])
    try:
        while not stopping:
            time.sleep(POLL_S)
            for i, process in enumerate(processes):
                if not stopping and not process.is_alive():
                    code = process.exitcode
                    logger.error("worker %s exited with %s; starting another", process.pid, code)
                    processes[i] = start()
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: the worker's graceful shutdown
        for process in processes:
            process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
