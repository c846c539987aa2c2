"""The committed OpenAPI contract matches what the app serves, and reads well for SDKs."""

from __future__ import annotations

import json
import re
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
        "listLosses",
        "getLoss",
        "evaluateLoss",
        "evaluateBatch",
        "evaluateStream",
        "healthz",
        "readyz",
        "serverMetadata",
        "serverLive",
        "serverReady",
        "modelMetadata",
        "modelReady",
        "modelInfer",
        "modelVersionMetadata",
        "modelVersionReady",
        "modelVersionInfer",
    } <= set(ops)
    body = ops["evaluateLoss"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/EvaluateRequest"}
    assert "application/x-ndjson" in ops["evaluateStream"]["requestBody"]["content"]
    for status in ("404", "415", "422"):
        content = ops["evaluateLoss"]["responses"][status]["content"]
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


def test_names_read_well_in_generated_code() -> None:
    """camelCase operation ids, each once, and schema names chosen by us, not by FastAPI
    (``Body_evaluate_loss_v1_...``) or by a generator de-duplicating (``Problem1``,
    ``getLoss_1``)."""
    spec = json.loads(SPEC.read_text())
    ids = [op["operationId"] for path in spec["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids)), ids
    tags = [tag["name"] for tag in spec["tags"]]  # each becomes an SDK class: LossesApi, ...
    assert {t for path in spec["paths"].values() for op in path.values() for t in op["tags"]} == {
        *tags
    }
    assert all(re.fullmatch(r"[a-z]+", tag) for tag in tags), tags
    for op_id in ids:
        assert re.fullmatch(r"[a-z]+(?:[A-Z][a-z0-9]*)*", op_id), op_id
    for name, schema in spec["components"]["schemas"].items():
        assert re.fullmatch(r"(?:[A-Z][a-z0-9]*)+", name), name
        assert not re.search(r"\d$", name), name
        assert schema.get("title", name) == name, (name, schema.get("title"))
