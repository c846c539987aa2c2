"""Swagger UI (app/api/docs.py) served from the installed package, without a CDN."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_docs_are_served_without_a_cdn(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text and "/docs/assets/swagger-ui-bundle.js" in page.text
    assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200


def test_redoc_is_served_without_a_cdn(client: TestClient) -> None:
    page = client.get("/redoc")
    assert page.status_code == 200
    assert "cdn" not in page.text and "googleapis" not in page.text
    assert "/redoc/assets/redoc.standalone.js" in page.text
    bundle = client.get("/redoc/assets/redoc.standalone.js")
    assert bundle.status_code == 200 and "javascript" in bundle.headers["content-type"]
    assert len(bundle.content) > 500_000  # the whole bundle, not a stub
