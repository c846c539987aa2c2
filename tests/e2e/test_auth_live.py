"""API keys and CORS on a real server: the examples of docs/security.md, "Authentication and
CORS", run as written, and NVIDIA's Triton client, which must pass a key and show lossd's 401
message."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import numpy as np
import pytest

from tests.e2e.conftest import ServerProcess
from tests.e2e.test_readme import DOCS, Example, _blocks, assert_json_matches, run_example
from tests.helpers import SEED_PRED, SEED_TRUE

pytestmark = pytest.mark.e2e

KEYS = "key-for-team-a,key-for-team-b"
ORIGIN = "https://dashboard.example.com"
PAGE = DOCS / "security.md"
SECTION = "## Authentication and CORS"


def section_examples() -> list[tuple[Example, str | None]]:
    """The section's ```sh blocks that call curl, each with the block after it (its expected
    output, ```json or ```text) and that block's language."""
    text = PAGE.read_text()
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    offset = text[:start].count("\n")
    blocks = _blocks(text[start:end])
    found = []
    for k, block in enumerate(blocks):
        if block.lang != "sh" or "curl" not in block.text:
            continue
        after = blocks[k + 1] if k + 1 < len(blocks) else None
        expected = after.text if after and after.lang in ("json", "text") else None
        example = Example(offset + block.start + 1, block.text, expected, "docs/security.md")
        found.append((example, after.lang if expected is not None and after else None))
    return found


EXAMPLES = section_examples()


@pytest.fixture(scope="module")
def keyed_server(start_process: Callable[..., ServerProcess]) -> ServerProcess:
    return start_process(env={"LOSSD_API_KEYS": KEYS, "LOSSD_CORS_ORIGINS": ORIGIN})


def test_the_section_has_runnable_examples() -> None:
    assert len(EXAMPLES) >= 3
    assert all(lang is not None for _, lang in EXAMPLES)


@pytest.mark.parametrize(("example", "lang"), EXAMPLES, ids=[f"line{e.line}" for e, _ in EXAMPLES])
def test_readme_auth_example(keyed_server: ServerProcess, example: Example, lang: str) -> None:
    out = run_example(example, keyed_server.url)
    assert example.expected is not None
    if lang == "json":
        assert_json_matches(json.loads(out), json.loads(example.expected))
    else:  # header lines, in any case and order
        lines = {line.strip().lower() for line in out.splitlines()}
        for line in example.expected.splitlines():
            assert line.strip().lower() in lines, (line, out)


def test_triton_client_passes_a_key_and_shows_the_401(keyed_server: ServerProcess) -> None:
    http = pytest.importorskip("tritonclient.http")
    from tritonclient.utils import InferenceServerException

    y_true = np.array(SEED_TRUE, dtype=np.float32)
    y_pred = np.array(SEED_PRED, dtype=np.float32)
    inputs = []
    for name, array in (("y_true", y_true), ("y_pred", y_pred)):
        tensor = http.InferInput(name, list(array.shape), "FP32")
        tensor.set_data_from_numpy(array, binary_data=True)
        inputs.append(tensor)
    client = http.InferenceServerClient(url=keyed_server.url.removeprefix("http://"))
    try:
        assert client.is_server_ready()  # the probes need no key
        result = client.infer("mse", inputs, headers={"Authorization": "Bearer key-for-team-b"})
        np.testing.assert_allclose(result.as_numpy("per_sample"), [2 / 3, 1 / 3], rtol=1e-6)
        with pytest.raises(InferenceServerException, match=re.escape("needs an API key")):
            client.infer("mse", inputs)
        with pytest.raises(InferenceServerException, match="API key is not valid"):
            client.infer("mse", inputs, headers={"Authorization": "Bearer key-for-team-c"})
    finally:
        client.close()
