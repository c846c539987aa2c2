"""The README's loss table lists every name that resolves, and nothing that does not."""

from __future__ import annotations

import re
from pathlib import Path

from app.losses import all_names

README = Path(__file__).resolve().parents[1] / "README.md"


def table_names() -> set[str]:
    text = README.read_text()
    section = text.split("## The losses", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    # every name column (all but options): backticked words
    return {n for row in rows for cell in row.split("|")[1:5] for n in re.findall(r"`(\w+)`", cell)}


def test_readme_lists_every_accepted_name() -> None:
    assert table_names() == set(all_names())
