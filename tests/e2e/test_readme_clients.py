"""The client examples of the README and the docs pages (Node ``fetch``, Python, R), run against a
live server with the output they show.

Convention: a fenced ```js, ```python or ```r block followed (blank lines aside) by a ```json or
```text block is an example and its output. It runs as written, with ``127.0.0.1:8000`` replaced
by the live server's address: ```js with ``node`` (saved as an ES module, as the README says),
```python with this interpreter, ```r with ``Rscript``. A ```json output is compared as parsed
JSON (numbers within rel 1e-6), a ```text output line by line (trailing spaces aside).
Code blocks without an output block (the SDK examples, the retry loop) are run elsewhere.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.test_readme import ROOT, _blocks, assert_json_matches, page_name, pages
from tests.helpers import require_executable

pytestmark = pytest.mark.e2e

ADDRESS = "127.0.0.1:8000"
LANGUAGES = {"js": ".mjs", "python": ".py", "r": ".R"}
RUN_TIMEOUT_S = 60


@dataclass
class ClientExample:
    page: str
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    output_lang: str
    output: str


def client_examples(markdown: str, page: str = "README.md") -> list[ClientExample]:
    lines = markdown.splitlines()
    blocks = _blocks(markdown)
    found = []
    for block, after in itertools.pairwise(blocks):
        if block.lang not in LANGUAGES or after.lang not in ("json", "text"):
            continue
        if any(line.strip() for line in lines[block.end + 1 : after.start]):
            continue  # prose in between: not its output
        found.append(
            ClientExample(page, block.start + 1, block.lang, block.text, after.lang, after.text)
        )
    return found


EXAMPLES = [e for page in pages() for e in client_examples(page.read_text(), page_name(page))]


def test_the_readme_shows_an_example_per_language() -> None:
    shown = {e.lang for e in EXAMPLES if e.page == "README.md"}
    assert shown == set(LANGUAGES), shown
    assert all(ADDRESS in e.code for e in EXAMPLES), [
        (e.page, e.line) for e in EXAMPLES if ADDRESS not in e.code
    ]


def test_the_readme_has_a_merge_example() -> None:
    (merge,) = [e for e in EXAMPLES if e.page == "README.md" and 'sum(s["count"]' in e.code]
    merged, whole, naive = (line.split(":")[1].strip() for line in merge.output.splitlines())
    assert merged == whole != naive  # as shown; test_readme_client_example runs it


def command(example: ClientExample, path: Path) -> list[str]:
    if example.lang == "js":
        return [require_executable("node", "Node.js >= 18, for its global fetch"), str(path)]
    if example.lang == "r":
        hint = "apt-get install r-base-core r-cran-httr2 r-cran-jsonlite"
        return [require_executable("Rscript", hint), "--vanilla", str(path)]
    return [sys.executable, str(path)]


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"{e.page}:{e.line}:{e.lang}" for e in EXAMPLES])
def test_readme_client_example(example: ClientExample, live_server: str, tmp_path: Path) -> None:
    if "tritonclient" in example.code:
        pytest.importorskip("tritonclient.http")
    path = tmp_path / f"example{LANGUAGES[example.lang]}"
    path.write_text(example.code.replace(ADDRESS, live_server.removeprefix("http://")))
    proc = subprocess.run(
        command(example, path),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    where = f"{example.page} line {example.line} ({example.lang})"
    assert proc.returncode == 0, f"{where} exited {proc.returncode}:\n{proc.stderr}"
    if example.output_lang == "json":
        assert_json_matches(json.loads(proc.stdout), json.loads(example.output), where)
    else:
        got = [line.rstrip() for line in proc.stdout.strip().splitlines()]
        assert got == [line.rstrip() for line in example.output.strip().splitlines()], where


def test_the_convention() -> None:
    markdown = (
        "```js\nconsole.log(1)\n```\n\n```json\n1\n```\n"
        "```python\nprint(2)\n```\ntext\n```text\n2\n```\n"
        "```r\ncat(3)\n```\n```text\n3\n```\n```sh\necho\n```\n```text\n\n```\n"
    )
    found = client_examples(markdown, "x.md")
    assert [(e.lang, e.line, e.output_lang, e.output) for e in found] == [
        ("js", 1, "json", "1\n"),
        ("r", 15, "text", "3\n"),
    ]
