"""What ``lossd serve`` does for observability before uvicorn starts, in the parent process,
before any worker exists (prometheus-client reads ``PROMETHEUS_MULTIPROC_DIR`` in each worker)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from app.observability.logs import uvicorn_log_config
from app.settings import Settings

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_metrics_dir(workers: int) -> str | None:
    """Make ``/metrics`` add up across ``workers`` processes; returns the directory used, if any.

    With ``PROMETHEUS_MULTIPROC_DIR`` set: the directory is created if missing and emptied of
    the previous run's ``*.db`` files (stale counters would otherwise be added to the new ones).
    Unset with more than one worker: a fresh temporary directory is created, exported for the
    workers to inherit and removed when the server exits. Unset with one worker: nothing to do.
    """
    path = os.environ.get(MULTIPROCESS_ENV)
    if path:
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        return path
    if workers <= 1:
        return None
    path = tempfile.mkdtemp(prefix="lossd-metrics-")
    os.environ[MULTIPROCESS_ENV] = path
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def uvicorn_logging(settings: Settings) -> dict[str, Any]:
    """``uvicorn.run`` options: no uvicorn access log (lossd writes its own request log) and
    uvicorn's own lines in ``LOSSD_LOG_FORMAT``."""
    return {"access_log": False, "log_config": uvicorn_log_config(settings.log_format)}
