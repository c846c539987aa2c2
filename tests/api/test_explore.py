"""/explore (app/api/explore.py): the page and its assets, served by lossd itself (no CDN), and
shipped in the wheel (pyproject's package data)."""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

from fastapi.testclient import TestClient

from app.api.explore import STATIC

ROOT = Path(__file__).resolve().parents[2]


def test_the_page_and_its_assets_are_same_origin(client: TestClient) -> None:
    page = client.get("/explore")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^"#]+)"', page.text)
    assert sorted(assets) == ["/docs", "/explore/assets/explore.css", "/explore/assets/explore.js"]
    for asset in assets:
        assert client.get(asset).status_code == 200
    script = client.get("/explore/assets/explore.js").text
    assert "http://" not in script and "https://" not in script and "//cdn" not in script
    for path in ("/v1/losses", "curve.svg"):
        assert path in script


def test_every_asset_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["app.api"]
    package = ROOT / "app" / "api"
    files = [p.relative_to(package).as_posix() for p in STATIC.iterdir() if p.is_file()]
    assert {"static/explore/index.html", "static/explore/explore.js"} <= set(files)
    for file in files:
        assert any(fnmatch(file, g) for g in globs), file
