"""The client installs alone: httpx and NumPy (and Dask for the extra), none of the server's
dependencies."""

from __future__ import annotations

import importlib.metadata
import importlib.util

import lossd_client


def test_the_servers_dependencies_are_not_installed() -> None:
    for module in ("fastapi", "pydantic", "starlette", "uvicorn", "simdjson", "keras"):
        assert importlib.util.find_spec(module) is None, f"{module} is importable"


def test_declared_dependencies() -> None:
    requires = importlib.metadata.requires("lossd-client") or []
    core = sorted(r.split(">")[0] for r in requires if "extra ==" not in r)
    assert core == ["httpx", "numpy"]
    dask = [r for r in requires if 'extra == "dask"' in r]
    assert len(dask) == 1 and dask[0].startswith("dask[array,distributed]")


def test_version_and_typing_marker() -> None:
    assert lossd_client.__version__ == importlib.metadata.version("lossd-client") == "0.1.0"
    files = importlib.metadata.files("lossd-client") or []
    assert importlib.util.find_spec("lossd_client") is not None
    package_dir = lossd_client.__path__[0]
    import os

    assert os.path.exists(os.path.join(package_dir, "py.typed")) or any(
        str(f).endswith("py.typed") for f in files
    )
