"""Generate the SDKs from ``openapi/openapi.json`` and build the Node toolchain, with a cache.

Everything lands under ``build/sdk/`` (git-ignored):

- ``typescript/``: the ``typescript-fetch`` client (openapi-generator, Java);
- ``python/lossd_sdk/``: the ``openapi-python-client`` client;
- ``node-toolchain/``: ``npm ci`` of ``tests/sdk/typescript/package*.json`` (tsc, Node types);
- ``scenario-js/``: ``tests/sdk/typescript/scenario.ts`` compiled with the generated client.

Each directory carries a stamp: a hash of its inputs (spec, lock file, sources, tool versions).
A warm machine reuses a directory whose stamp matches and rebuilds nothing; a rebuild happens in a
fresh directory that replaces the old one only when complete, under a lock, so an interrupted or
concurrent run never leaves half a client behind. Every outside command has a time limit.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "openapi" / "openapi.json"
SDK_PAGE = ROOT / "docs" / "sdks.md"
BUILD = ROOT / "build" / "sdk"
TS_SOURCES = Path(__file__).resolve().parent / "typescript"
STAMP = ".lossd-build-key"
PYTHON_PACKAGE = "lossd_sdk"

# Bounds for a fresh machine (cold npm cache, first JVM start); a warm one needs none of it.
GENERATE_TIMEOUT_S = 300
NPM_TIMEOUT_S = 600
TSC_TIMEOUT_S = 300


def spec() -> dict[str, object]:
    """The committed OpenAPI document."""
    loaded: dict[str, object] = json.loads(SPEC.read_text())
    return loaded


def has_bearer_auth() -> bool:
    """Whether the contract declares the ``bearerAuth`` security scheme (``LOSSD_API_KEYS``)."""
    components = spec().get("components")
    schemes = components.get("securitySchemes", {}) if isinstance(components, dict) else {}
    return "bearerAuth" in schemes


def digest(*parts: bytes | str) -> str:
    """A short SHA-256 of ``parts``, each length-prefixed so that no two inputs collide."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()[:32]


def run(argv: Sequence[str | Path], *, cwd: Path, timeout: float, what: str) -> None:
    """Run a build command; fail the test with its output if it fails or overruns."""
    try:
        proc = subprocess.run(
            [str(a) for a in argv],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={
                **os.environ,
                "PATH": _path_with_venv(),
                "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1",  # we drive Debian's chromium
            },
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{what} took more than {timeout} s:\n{exc.stdout}\n{exc.stderr}")
    if proc.returncode != 0:
        pytest.fail(f"{what} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


def _path_with_venv() -> str:
    # The generators run ruff (openapi-python-client) and find java on PATH; the venv's bin may
    # not be on PATH when pytest is started as .venv/bin/python -m pytest.
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs in one tree build one after the other
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def cached(target: Path, key: str, build: Callable[[Path], None]) -> Path:
    """``target``, built by ``build(fresh_dir)`` unless its stamp already equals ``key``."""
    stamp = target / STAMP
    with _locked(target.parent):
        if stamp.is_file() and stamp.read_text() == key:
            return target
        fresh = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            build(fresh)
            (fresh / STAMP).write_text(key)
            if target.exists():
                shutil.rmtree(target)
            fresh.rename(target)
        finally:
            shutil.rmtree(fresh, ignore_errors=True)
    return target


def tool_version(distribution: str) -> str:
    """The installed version of a Python tool; skip (fail under CI) when it is missing."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        message = f"{distribution} is not installed (pip install -e '.[dev]')"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


def _script(name: str) -> Path:
    return Path(sys.executable).parent / name


# --- TypeScript ----------------------------------------------------------------------------

# docs/sdks.md's commands are these, with -i/-o (--path/--output-path) in that order.
TS_GENERATOR_ARGS = ("generate", "-g", "typescript-fetch")


def typescript_client() -> Path:
    """``build/sdk/typescript``: the typescript-fetch client of the committed spec."""
    version = tool_version("openapi-generator-cli")
    key = digest(SPEC.read_bytes(), version, *TS_GENERATOR_ARGS)

    def generate(out: Path) -> None:
        argv = [_script("openapi-generator-cli"), *TS_GENERATOR_ARGS, "-i", SPEC, "-o", out]
        run(argv, cwd=ROOT, timeout=GENERATE_TIMEOUT_S, what="openapi-generator-cli")

    return cached(BUILD / "typescript", key, generate)


def npm_ci(sources: Path, target: Path) -> Path:
    """``target``: ``npm ci`` of the package.json and package-lock.json in ``sources``."""
    package, lock = sources / "package.json", sources / "package-lock.json"
    key = digest(package.read_bytes(), lock.read_bytes())

    def install(out: Path) -> None:
        shutil.copy(package, out)
        shutil.copy(lock, out)
        argv = ["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"]
        run(argv, cwd=out, timeout=NPM_TIMEOUT_S, what=f"npm ci ({sources.name})")

    return cached(target, key, install)


def node_toolchain() -> Path:
    """``build/sdk/node-toolchain``: the pinned TypeScript and Node types."""
    return npm_ci(TS_SOURCES, BUILD / "node-toolchain")


def readme_blocks(lang: str) -> list[str]:
    """The ```lang code blocks of docs/sdks.md (the README links it), in order."""
    text = SDK_PAGE.read_text()
    return re.findall(rf"^```{lang}\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def compiled_scenario() -> Path:
    """``build/sdk/scenario-js/scenario.js``: scenario.ts and the client, compiled by tsc, with
    docs/sdks.md's TypeScript example (``readme.ts``, type-checked: the build fails if it does not
    compile against the generated client)."""
    client, toolchain = typescript_client(), node_toolchain()
    scenario = TS_SOURCES / "scenario.ts"
    readme_ts = "".join(readme_blocks("ts")).replace('"./build/sdk/typescript"', '"./client"')
    key = digest(
        (client / STAMP).read_text(),
        (toolchain / STAMP).read_text(),
        scenario.read_bytes(),
        readme_ts,
    )

    def compile_(out: Path) -> None:
        shutil.copytree(client, out / "src" / "client")  # scenario.ts imports "./client"
        shutil.copy(scenario, out / "src")
        (out / "src" / "readme.ts").write_text(readme_ts)
        tsconfig = {
            "compilerOptions": {
                "target": "ES2022",
                "module": "commonjs",
                "lib": ["ES2022", "DOM"],  # the client is typed against fetch's DOM types
                "types": ["node"],
                "typeRoots": [str(toolchain / "node_modules" / "@types")],
                "strict": True,
                "skipLibCheck": True,
                "rootDir": "src",
                "outDir": ".",
            },
            "files": ["src/scenario.ts", "src/readme.ts"],
        }
        (out / "tsconfig.json").write_text(json.dumps(tsconfig, indent=2))
        tsc = toolchain / "node_modules" / "typescript" / "bin" / "tsc"
        run(["node", tsc, "-p", "tsconfig.json"], cwd=out, timeout=TSC_TIMEOUT_S, what="tsc")

    return cached(BUILD / "scenario-js", key, compile_) / "scenario.js"


# --- Python --------------------------------------------------------------------------------

PY_GENERATOR_ARGS = ("generate", "--meta", "none", "--overwrite")


def python_client() -> Path:
    """``build/sdk/python``: a directory to put on ``sys.path`` to import ``lossd_sdk``."""
    version = tool_version("openapi-python-client")
    key = digest(SPEC.read_bytes(), version, *PY_GENERATOR_ARGS)

    def generate(out: Path) -> None:
        package = out / PYTHON_PACKAGE
        argv = [_script("openapi-python-client"), *PY_GENERATOR_ARGS]
        argv += ["--path", SPEC, "--output-path", package]
        run(argv, cwd=ROOT, timeout=GENERATE_TIMEOUT_S, what="openapi-python-client")
        if not (package / "__init__.py").is_file():
            pytest.fail(f"openapi-python-client wrote no package at {package}")

    return cached(BUILD / "python", key, generate)
