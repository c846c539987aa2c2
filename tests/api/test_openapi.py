"""The committed OpenAPI contract matches what the app serves, and reads well for SDKs."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from app.api.openapi_export import render

SPEC = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def test_committed_spec_is_current() -> None:
    assert SPEC.read_text() == render(), "openapi/openapi.json is stale: run `make openapi`"


def test_served_spec_equals_committed(client: TestClient) -> None:
    assert client.get("/openapi.json").json() == json.loads(SPEC.read_text())


def test_operation_ids_are_clean_and_bodies_documented() -> None:
    spec = json.loads(SPEC.read_text())
    ops = {op["operationId"]: op for path in spec["paths"].values() for op in path.values()}
    assert {
        "list_losses",
        "get_loss",
        "evaluate_loss",
        "evaluate_batch",
        "evaluate_stream",
        "healthz",
        "readyz",
    } <= set(ops)
    body = ops["evaluate_loss"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/EvaluateRequest"}
    assert "application/x-ndjson" in ops["evaluate_stream"]["requestBody"]["content"]
    for status in ("404", "415", "422"):
        content = ops["evaluate_loss"]["responses"][status]["content"]
        assert list(content) == ["application/problem+json"]
    schemas = spec["components"]["schemas"]
    assert {"EvaluateRequest", "EvaluateResponse", "Problem", "BatchRequest", "LossInfo"} <= set(
        schemas
    )
    for name in ("EvaluateRequest", "EvaluateResponse", "LossInfo"):
        for field, prop in schemas[name]["properties"].items():
            assert "examples" in prop or "$ref" in prop or "anyOf" in prop or "default" in prop, (
                name,
                field,
            )
