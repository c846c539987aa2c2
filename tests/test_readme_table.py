"""The loss tables: docs/losses.md lists every name that resolves, and nothing that does not, with
each loss's options; the README's compact list names every loss, in catalogue order."""

from __future__ import annotations

import re
from pathlib import Path

from app.losses import CATALOGUE, LOSSES, all_names

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
LOSSES_PAGE = ROOT / "docs" / "losses.md"


def table_rows() -> list[list[str]]:
    """The cells of each row of docs/losses.md's table (rows starting with a name)."""
    rows = [line for line in LOSSES_PAGE.read_text().splitlines() if line.startswith("| `")]
    return [row.split("|")[1:-1] for row in rows]


def table_names() -> set[str]:
    # every name column (all but options): backticked words (torch's with dots)
    return {n for row in table_rows() for cell in row[:4] for n in re.findall(r"`([\w.]+)`", cell)}


def test_losses_page_lists_every_accepted_name() -> None:
    assert table_names() == set(all_names())


def test_losses_page_lists_each_loss_with_its_options() -> None:
    listed = [
        (re.findall(r"`([\w.]+)`", row[0])[0], re.findall(r"`(\w+)`", row[4]))
        for row in table_rows()
    ]
    assert listed == [(spec.name, [o.name for o in spec.options]) for spec in CATALOGUE]


def test_readme_names_every_loss_in_catalogue_order() -> None:
    section = README.read_text().split("\n## The losses\n", 1)[1].split("\n## ", 1)[0]
    listed = section.strip().split("\n\n", 1)[0]  # the first paragraph: the names only
    assert re.findall(r"`(\w+)`", listed) == [spec.name for spec in LOSSES]
    assert "docs/losses.md" in section
