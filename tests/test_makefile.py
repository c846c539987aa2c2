"""The Makefile's set-up: `make run` installs what serving needs, `make test` the rest, and a venv
made by another Python is rebuilt instead of failing on every run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def dry_run(target: str, venv: Path, *overrides: str) -> str:
    """What ``make -n TARGET`` would run with the venv at ``venv`` (a fresh path: no stamp yet, so
    the set-up recipes show too)."""
    return subprocess.run(
        ["make", "-n", "-C", str(ROOT), target, f"VENV={venv}", *overrides],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_make_run_installs_only_what_serving_needs(tmp_path: Path) -> None:
    recipe = dry_run("run", tmp_path / "venv")
    assert "pip install --quiet -e ." in recipe
    assert "[dev" not in recipe and "conformance" not in recipe


def test_make_test_adds_the_dev_and_conformance_extras(tmp_path: Path) -> None:
    recipe = dry_run("pytest", tmp_path / "venv")
    assert 'pip install --quiet -e ".[dev,conformance]"' in recipe


@pytest.mark.slow
@pytest.mark.e2e
def test_a_venv_made_by_another_python_is_rebuilt(tmp_path: Path) -> None:
    if shutil.which("make") is None or shutil.which("flock") is None:
        pytest.skip("needs make and flock")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    fake = venv / "bin" / "python"
    fake.write_text('#!/bin/sh\necho "(3, 10)"\n')  # what a venv of Python 3.10 answers
    fake.chmod(0o755)
    recipe = dry_run("run", venv).split()
    stamp = recipe[recipe.index("-f") + 1]  # the run stamp: `test -f <stamp> && exit 0`
    proc = subprocess.run(
        ["make", "-C", str(ROOT), stamp, f"VENV={venv}", f"PYTHON={sys.executable}"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "was made by Python (3, 10)" in proc.stdout
    version = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sys, app; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert version.strip() == str(sys.version_info[:2])


def test_make_test_runs_the_python_clients_suite_in_its_own_venv(tmp_path: Path) -> None:
    client_venv = tmp_path / "client-venv"
    recipe = dry_run("pytest", tmp_path / "venv", f"CLIENT_VENV={client_venv}")
    # built from clients/python alone (no -e . of the server), then its tests against servers
    # started with the project's Python
    assert 'pip install --quiet -e "./clients/python[dask,test]"' in recipe
    assert "cd clients/python && LOSSD_SERVER_PYTHON=" in recipe
    assert f"{client_venv}/bin/python -m pytest" in recipe
    typecheck = dry_run("typecheck", tmp_path / "venv", f"CLIENT_VENV={client_venv}")
    assert f"{client_venv}/bin/mypy" in typecheck
    lint = dry_run("lint", tmp_path / "venv")
    assert "ruff check app tests bench clients/python" in lint
