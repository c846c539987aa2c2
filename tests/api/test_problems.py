"""problem+json for what no route answers (app/api/problems.py): unknown paths and methods."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.helpers import assert_problem


def test_unknown_route_and_method_are_problems(client: TestClient) -> None:
    assert_problem(client.get("/v1/nothing"), 404)
    assert_problem(client.delete("/v1/losses/mse"), 405)


def test_titles_from_slugs_keep_acronyms() -> None:
    from app.api.problems import title

    assert title("malformed-json") == "Malformed JSON"
    assert title("ndjson-line-too-long") == "NDJSON line too long"
    assert title("too-many-elements") == "Too many elements"
