"""Property-based fuzzing of a live server from the committed ``openapi/openapi.json``.

schemathesis generates requests from the contract, positive (schema-valid) and negative
(schema-violating bodies, parameters and headers), in its examples, coverage and fuzzing phases,
sends them to a real uvicorn process and checks every response against the contract: no 5xx,
only documented status codes and content types (``application/problem+json`` for v1 errors),
bodies and headers matching their schemas, schema-violating requests refused. The run is
deterministic (fixed seed, derandomized Hypothesis, no example database) and bounded by
``max_examples`` per operation and phase; ``conftest.py`` prints the number of cases.

What is not checked, and why:

- ``positive_data_acceptance`` (a schema-valid request must get a 2xx): JSON Schema cannot say
  that ``y_true`` and ``y_pred`` have matching shapes or that an option belongs to the loss, so
  a schema-valid request may rightly get a 422 (or a 404 for an unknown loss name).
- ``negative_data_rejection`` on ``POST /v1/batch`` only: a batch answers 200 with a problem in
  the slot of each bad item, by design, so a schema-violating item is not a 4xx for the whole
  call. :func:`check_batch_rejects_items` checks the item-level rejection instead.

Non-JSON bodies: the NDJSON stream gets each generated body as a one-line stream (the
serializer below). The v2 binary extension (JSON header + raw bytes) is not in the contract's
request body, only its JSON form; tests/e2e/test_v2_tritonclient.py covers the binary form.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from tests.fuzz.conftest import CASES, OPERATIONS

# A wall-time bound per operation, far above what one takes (~2 s here) and far below CI's budget.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "openapi" / "openapi.json"
#: Examples per operation and phase: ~17 operations make well over 1000 cases in all.
MAX_EXAMPLES = 100

schema = schemathesis.openapi.from_path(SPEC)
schema.config.seed = 20240601
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], deterministic=True
)


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx: schemathesis.SerializationContext, value: Any) -> bytes:
    """One generated body as a one-line NDJSON stream (stdlib json: integers past 64 bits)."""
    return json.dumps(value).encode() + b"\n"


def is_negative(case: schemathesis.Case) -> bool:
    """Whether any part of the request was generated to violate the schema."""
    return case.meta is not None and case.meta.generation.mode is GenerationMode.NEGATIVE


def check_batch_rejects_items(case: schemathesis.Case, response: Any) -> None:
    """A schema-violating batch must be refused whole (4xx) or item by item (a non-200 slot)."""
    if case.operation.path != "/v1/batch" or not is_negative(case) or response.status_code != 200:
        return
    statuses = [r["status"] for r in response.json()["results"]]
    assert any(s != 200 for s in statuses), (
        f"schema-violating batch answered 200 with every item 200: {case.as_curl_command()}"
    )


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_spec(case: schemathesis.Case, live_server: str) -> None:
    CASES["negative" if is_negative(case) else "positive"] += 1
    OPERATIONS.add(case.operation.label)
    response = case.call(base_url=live_server, timeout=60)
    CASES[f"status {response.status_code // 100}xx"] += 1
    excluded = [positive_data_acceptance]
    if case.operation.path == "/v1/batch":
        excluded.append(negative_data_rejection)
    case.validate_response(response, excluded_checks=excluded)
    check_batch_rejects_items(case, response)


#: The issue's floor for one CI run.
MIN_CASES = 1000


def test_fuzz_run_sent_enough_cases() -> None:
    """Runs after the generated tests (pytest keeps a module's order): the whole run must have
    sent at least ``MIN_CASES`` cases, both kinds. Skipped when only some operations ran (-k)."""
    expected = {op.ok().label for op in schema.get_all_operations()}
    if expected != OPERATIONS:
        pytest.skip(f"only {len(OPERATIONS)} of {len(expected)} operations ran")
    assert CASES["positive"] + CASES["negative"] >= MIN_CASES, dict(CASES)
    assert CASES["positive"] > 0 and CASES["negative"] > 0, dict(CASES)
