"""The requests of the load test, their expected status and, for a sample, the expected answer.

Every expected number is derived by hand here, not taken from lossd:

- the seed example (y_true [[0, 1, 1], [0, 0, 1]], y_pred [[1, 1, 0], [1, 0, 1]]): squared errors
  per sample (1 + 0 + 1) / 3 = 2/3 and (1 + 0 + 0) / 3 = 1/3, mean 1/2;
- binary cross-entropy of logit 0 against label 1 or 0: -log(sigmoid(0)) = log 2;
- mean absolute error of [[1, 0]] vs [[0, 0]]: (1 + 0) / 2 = 1/2;
- the big body: y_true all 0 and y_pred all 0.123456789, so every squared error, and their mean,
  is 0.123456789^2.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SEED_TRUE = [[0, 1, 1], [0, 0, 1]]
SEED_PRED = [[1, 1, 0], [1, 0, 1]]
BIG_PRED = 0.123456789
BIG_ROW = 1000  # values per row of the big tensors

Check = Callable[[Any], bool]


def close(actual: Any, expected: float, rel: float = 1e-5) -> bool:
    """``actual`` is a number within ``rel`` of ``expected`` (float32 answers)."""
    return isinstance(actual, int | float) and math.isclose(actual, expected, rel_tol=rel)


@dataclass(frozen=True)
class Kind:
    """One kind of request: what to send, the status it must get and how to check its answer."""

    name: str
    path: str
    body: bytes
    status: int
    content_type: str = "application/json"
    check: Check | None = None  # for a 200 answer's JSON
    big: bool = False


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def big_body(mib: float) -> bytes:
    """An MSE request of about ``mib`` MiB: rows of BIG_ROW zeros against BIG_ROW x BIG_PRED."""
    zeros = "[" + ",".join(["0"] * BIG_ROW) + "]"
    preds = "[" + ",".join([repr(BIG_PRED)] * BIG_ROW) + "]"
    rows = max(1, int(mib * 1024 * 1024 / (len(zeros) + len(preds) + 2)))
    y_true = "[" + ",".join([zeros] * rows) + "]"
    y_pred = "[" + ",".join([preds] * rows) + "]"
    return f'{{"y_true":{y_true},"y_pred":{y_pred}}}'.encode()


def _seed_mse(body: Any) -> bool:
    return close(body["mean"], 0.5) and all(
        close(a, e) for a, e in zip(body["per_sample"], [2 / 3, 1 / 3], strict=True)
    )


def _batch(body: Any) -> bool:
    first, second = body["results"]
    return (
        first["status"] == 200
        and close(first["results"][0]["mean"], 0.5)  # mae
        and close(first["results"][1]["mean"], math.log(2))  # bce from logits
        and second["status"] == 404  # one bad item fails alone
    )


def _v2(body: Any) -> bool:
    outputs = {o["name"]: o["data"] for o in body["outputs"]}
    return close(outputs["mean"][0], 0.5)


def kinds(big_mib: float) -> list[Kind]:
    """Every kind of request of the mix."""
    seed = {"y_true": SEED_TRUE, "y_pred": SEED_PRED}
    return [
        Kind("eval", "/v1/losses/mse", _json(seed), 200, check=_seed_mse),
        Kind(
            "eval_logits",
            "/v1/losses/binary_crossentropy",
            _json({"y_true": [[1, 0]], "y_pred": [[0, 0]], "options": {"from_logits": True}}),
            200,
            check=lambda b: close(b["mean"], math.log(2)),
        ),
        Kind(
            "batch",
            "/v1/batch",
            _json(
                {
                    "items": [
                        {
                            "id": "a",
                            "y_true": [[1, 0]],
                            "y_pred": [[0, 0]],
                            "loss": [
                                "mae",
                                {"name": "bce", "options": {"from_logits": True}},
                            ],
                        },
                        {"id": "b", "loss": "no_such_loss", "y_true": [[0]], "y_pred": [[1]]},
                    ]
                }
            ),
            200,
            check=_batch,
        ),
        Kind(
            "v2",
            "/v2/models/mse/infer",
            _json(
                {
                    "inputs": [
                        {"name": "y_true", "shape": [2, 3], "datatype": "FP32", "data": SEED_TRUE},
                        {"name": "y_pred", "shape": [2, 3], "datatype": "FP32", "data": SEED_PRED},
                    ]
                }
            ),
            200,
            check=_v2,
        ),
        Kind(
            "stream",
            "/v1/losses/mse/stream",
            _json({"y_true": SEED_TRUE[:1], "y_pred": SEED_PRED[:1]})
            + b"\n"
            + _json({"y_true": SEED_TRUE[1:], "y_pred": SEED_PRED[1:]})
            + b"\n",
            200,
            content_type="application/x-ndjson",
            check=lambda b: close(b["mean"], 0.5) and b["chunks"] == 2,
        ),
        Kind("bad_json", "/v1/losses/mse", b'{"y_true": [[0, 1]', 400),
        Kind("bad_loss", "/v1/losses/no_such_loss", _json(seed), 404),
        Kind("bad_type", "/v1/losses/mse", _json(seed), 415, content_type="text/plain"),
        Kind(
            "bad_shape",
            "/v1/losses/mse",
            _json({"y_true": [[0, 1, 1]], "y_pred": [[1, 1]]}),
            422,
        ),
        Kind(
            "big",
            "/v1/losses/mse",
            big_body(big_mib),
            200,
            check=lambda b: close(b["mean"], BIG_PRED**2),
            big=True,
        ),
    ]


#: How often each kind comes in one round of the schedule (100 requests); ``big`` is added once
#: every ``big_every`` requests.
WEIGHTS = {
    "eval": 30,
    "eval_logits": 10,
    "batch": 15,
    "v2": 10,
    "stream": 10,
    "bad_json": 5,
    "bad_loss": 5,
    "bad_type": 5,
    "bad_shape": 10,
}


def schedule(big_every: int) -> list[str]:
    """The cycle of kinds every wrk thread walks: the weighted round, interleaved, repeated to
    ``big_every`` requests with one big body among them."""
    round_: list[str] = []
    remaining = dict(WEIGHTS)
    while any(remaining.values()):  # interleave: one of each kind still due, in turn
        for name in WEIGHTS:
            if remaining[name]:
                round_.append(name)
                remaining[name] -= 1
    cycle = (round_ * (big_every // len(round_) + 1))[: big_every - 1]
    return [*cycle, "big"]


def write_manifest(directory: Path, big_mib: float, big_every: int) -> Path:
    """Write each body to ``directory`` and the manifest mixed.lua reads; return its path."""
    lines = []
    for kind in kinds(big_mib):
        body_file = directory / f"{kind.name}.body"
        body_file.write_bytes(kind.body)
        lines.append("\t".join([kind.name, "POST", kind.path, kind.content_type, str(body_file)]))
    lines.append("schedule\t" + ",".join(schedule(big_every)))
    manifest = directory / "manifest.tsv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest
