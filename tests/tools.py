"""Outside programs the tests drive (node, chromium, nginx, wrk, java, ...).

A developer without one of them gets a skip that says how to install it; CI (``CI`` set, as
``.ci/run`` runs) gets a failure instead, because ``.ci/system-deps.sh`` installs them all and a
silently skipped check is a check that never runs.
"""

from __future__ import annotations

import os
import shutil

import pytest


def require_executable(name: str, install_hint: str) -> str:
    """The absolute path of ``name`` on PATH; skip (or fail under CI) when it is missing."""
    path = shutil.which(name)
    if path is not None:
        return path
    message = f"{name} is not on PATH ({install_hint})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; .ci/system-deps.sh should have installed it", pytrace=False)
    pytest.skip(message)
