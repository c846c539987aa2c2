"""clients/python/README.md: every Python block runs against a live lossd, in order, in one
namespace, and prints exactly the text block that follows it."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"```python\n(.*?)```\n(?:```text\n(.*?)```)?", re.S)


def test_readme_examples_print_what_the_readme_says(url: str) -> None:
    blocks = BLOCK.findall(README.read_text())
    assert len(blocks) >= 4
    namespace: dict[str, object] = {}
    checked = 0
    for code, expected in blocks:
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            exec(compile(code.replace("http://127.0.0.1:8000", url), "README", "exec"), namespace)
        if expected:
            assert output.getvalue() == expected, code
            checked += 1
    assert checked >= 4


@pytest.mark.parametrize("page", ["python-client.md", "dask.md"])
def test_docs_pages_exist_and_link_back(page: str) -> None:
    text = (README.parents[2] / "docs" / page).read_text()
    assert "clients/python" in text or "lossd_client" in text
