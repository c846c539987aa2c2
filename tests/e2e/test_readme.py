"""The examples of the README and of the pages in ``docs/``, run against a live server so they
cannot go stale.

Convention: every fenced ```sh block whose first line starts with ``curl`` is an example talking
to ``http://127.0.0.1:8000``. If the next fenced block (blank lines aside) is a ```json block,
that is the expected output, compared as parsed JSON: the same keys, the same list lengths,
numbers within rel 1e-6. Each example runs with ``bash -c`` (pipes and heredocs work) against
the live server's URL and must exit 0. A page whose examples need a server with other settings
is left to its own test (``OWN_SERVER``).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
# docs pages whose curl examples need a differently configured server, and the test running them
OWN_SERVER = {"security.md": "tests/e2e/test_auth_live.py"}
README_URL = "http://127.0.0.1:8000"
FENCE = re.compile(r"^```\s*([\w+-]*)\s*$")
REL = 1e-6


@dataclass
class Example:
    line: int  # 1-based line of the opening ```sh fence
    script: str
    expected: str | None  # the following ```json block, if any
    page: str = "README.md"  # where it is, for messages


@dataclass
class _Block:
    lang: str
    start: int  # index of the opening fence line
    end: int  # index of the closing fence line
    text: str


def _blocks(markdown: str) -> list[_Block]:
    """Fenced code blocks (```lang ... ```) in order."""
    lines = markdown.splitlines()
    blocks: list[_Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        if j == len(lines):
            raise ValueError(f"unclosed code fence at line {i + 1}")
        blocks.append(_Block(opening.group(1).lower(), i, j, "\n".join(lines[i + 1 : j]) + "\n"))
        i = j + 1
    return blocks


def doc_example(page: str, lang: str, first_line: str) -> str:
    """The fenced ``lang`` block of ``docs/<page>`` whose first line starts with ``first_line``:
    an example another test runs (the XGBoost and Node examples of derivatives.md)."""
    blocks = _blocks((DOCS / page).read_text())
    found = [b.text for b in blocks if b.lang == lang and b.text.startswith(first_line)]
    assert len(found) == 1, (page, first_line, len(found))
    return found[0]


def examples(markdown: str, page: str = "README.md") -> list[Example]:
    """The curl examples of ``markdown`` with their expected JSON output (if given)."""
    lines = markdown.splitlines()
    blocks = _blocks(markdown)
    found = []
    for k, block in enumerate(blocks):
        if block.lang not in ("sh", "bash", "shell") or not block.text.startswith("curl"):
            continue
        expected = None
        if k + 1 < len(blocks):
            after = blocks[k + 1]
            between = lines[block.end + 1 : after.start]
            if after.lang == "json" and all(not line.strip() for line in between):
                expected = after.text
        found.append(Example(block.start + 1, block.text, expected, page))
    return found


def assert_json_matches(actual: Any, expected: Any, where: str = "$") -> None:
    """``actual`` equals ``expected``: same keys and lengths, numbers within rel ``REL``."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        assert set(actual) == set(expected), (
            f"{where}: keys differ: missing {sorted(set(expected) - set(actual))}, "
            f"unexpected {sorted(set(actual) - set(expected))}"
        )
        for key in expected:
            assert_json_matches(actual[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: expected a list, got {actual!r}"
        assert len(actual) == len(expected), f"{where}: {len(actual)} items, expected {expected}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_json_matches(a, e, f"{where}[{i}]")
    elif isinstance(expected, bool) or expected is None or isinstance(expected, str):
        assert actual == expected and type(actual) is type(expected), (
            f"{where}: {actual!r} != {expected!r}"
        )
    elif isinstance(expected, int | float):
        number = isinstance(actual, int | float) and not isinstance(actual, bool)
        assert number, f"{where}: expected a number, got {actual!r}"
        assert math.isclose(actual, expected, rel_tol=REL, abs_tol=0.0) or actual == expected, (
            f"{where}: {actual!r} != {expected!r} (rel {REL})"
        )
    else:  # pragma: no cover - json.loads makes nothing else
        raise TypeError(f"{where}: unexpected JSON value {expected!r}")


def run_example(example: Example, base_url: str) -> str:
    """Run the example with ``bash -c`` against ``base_url``, in a directory of its own (an
    example may write a file, e.g. ``curl -o``); its stdout."""
    script = "set -eo pipefail\n" + example.script.replace(README_URL, base_url)
    with tempfile.TemporaryDirectory() as workdir:
        proc = subprocess.run(
            ["bash", "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=workdir,
        )
    assert proc.returncode == 0, (
        f"{example.page} line {example.line} exited {proc.returncode}:\n{script}\n"
        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    return proc.stdout


# --- the real README and docs pages ----------------------------------------------------------


def pages() -> list[Path]:
    """README.md and every docs/*.md page, but those in ``OWN_SERVER``."""
    docs = sorted(p for p in DOCS.glob("*.md") if p.name not in OWN_SERVER)
    return [README, *docs]


def page_name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


EXAMPLES = [
    e for page in pages() if page.exists() for e in examples(page.read_text(), page_name(page))
]


def test_readme_and_docs_have_examples() -> None:
    assert README.exists(), f"{README} is missing"
    for page in ("README.md", "docs/api.md"):
        assert any(e.page == page for e in EXAMPLES), (
            f"{page} has no ```sh curl examples: nothing keeps it honest"
        )
    assert all(README_URL in e.script for e in EXAMPLES), [
        (e.page, e.line) for e in EXAMPLES if README_URL not in e.script
    ]
    for name, test in OWN_SERVER.items():  # those left out are run elsewhere
        assert (ROOT / test).exists(), (name, test)


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"{e.page}:{e.line}" for e in EXAMPLES])
def test_readme_example(example: Example, live_server: str) -> None:
    out = run_example(example, live_server)
    if example.expected is None:
        return
    where = f"{example.page} line {example.line}"
    try:
        actual = json.loads(out)
    except ValueError:
        pytest.fail(f"{where} did not print JSON:\n{out}")
    assert_json_matches(actual, json.loads(example.expected), where)


# --- the parser and the comparison themselves ------------------------------------------------

FIXTURE = """\
# demo

```sh
curl -s http://127.0.0.1:8000/v1/losses/mse -d '{}'
```
```json
{"a": 1}
```

```sh
make run
```

```sh
curl -s http://127.0.0.1:8000/healthz
```

Some text in between.

```json
{"not": "expected output"}
```

```bash
curl -s http://127.0.0.1:8000/v1/batch \\
  | python3 -c 'print(1)'
```

```json
[1]
```

```text
curl http://127.0.0.1:8000/ignored
```
"""


def test_parser_finds_curl_examples_and_their_outputs() -> None:
    found = examples(FIXTURE)
    assert [e.line for e in found] == [3, 14, 24]
    assert found[0].script == "curl -s http://127.0.0.1:8000/v1/losses/mse -d '{}'\n"
    assert found[0].expected == '{"a": 1}\n'
    assert found[1].expected is None  # prose stands between it and the json block
    assert found[2].script.endswith("| python3 -c 'print(1)'\n")
    assert found[2].expected == "[1]\n"  # a blank line between is fine


def test_parser_with_no_examples() -> None:
    assert examples("# nothing\n\n```text\ncurl http://x\n```\n") == []
    with pytest.raises(ValueError, match="unclosed"):
        examples("```sh\ncurl http://127.0.0.1:8000/\n")


def test_examples_run_against_the_given_url() -> None:
    example = Example(1, "echo http://127.0.0.1:8000/v1/losses | tr a-z A-Z\n", None)
    assert run_example(example, "http://127.0.0.1:1234") == "HTTP://127.0.0.1:1234/V1/LOSSES\n"
    with pytest.raises(AssertionError, match="exited 1"):
        run_example(Example(2, "false | cat\n", None), "http://x")  # pipefail


@pytest.mark.parametrize(
    ("actual", "expected"),
    [
        ({"a": 0.6666667, "b": [1, None, "x", True]}, {"a": 0.66666671, "b": [1, None, "x", True]}),
        ({"a": 1.0}, {"a": 1}),
        ({"a": 0.0}, {"a": 0}),
    ],
)
def test_comparison_accepts(actual: Any, expected: Any) -> None:
    assert_json_matches(actual, expected)


@pytest.mark.parametrize(
    ("actual", "expected"),
    [
        ({"a": 1, "extra": 2}, {"a": 1}),
        ({}, {"a": 1}),
        ({"a": 0.5}, {"a": 0.5001}),
        ([1, 2], [1, 2, 3]),
        ({"a": True}, {"a": 1}),
        ({"a": 1}, {"a": True}),
        ({"a": None}, {"a": 0}),
        ({"a": "1"}, {"a": 1}),
        ([[1]], [1]),
    ],
)
def test_comparison_rejects(actual: Any, expected: Any) -> None:
    with pytest.raises(AssertionError):
        assert_json_matches(actual, expected)
