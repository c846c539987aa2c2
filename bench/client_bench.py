"""C1 (``client``): a 1000x1000 MSE through the Python client (``clients/python``) against the
same request written by hand for ``/v2`` with Triton's binary extension.

Both sides start from the two NumPy arrays and end with the mean as a Python float: the hand
call builds its body (:func:`bench.payloads.binary_request`), posts it with httpx and reads the
mean from the binary answer; the client's ``evaluate`` does what it does (choose the transport,
encode, send, decode every output into an ``Evaluation``). One lossd serves both, with
keep-alive connections on each side, and the calls alternate round by round.

The client needs only httpx and NumPy, so it is imported from ``clients/python/src`` here
rather than installed into the benchmarks' venv.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import numpy as np
import orjson

from bench import payloads, servers
from bench.report import Section, Target
from bench.timing import interleaved, paired_ratio, timed

if TYPE_CHECKING:
    from bench.http_bench import Config

CLIENT_SRC = Path(__file__).resolve().parents[1] / "clients" / "python" / "src"
GOAL = 3.0


def _import_client() -> type:
    if str(CLIENT_SRC) not in sys.path:
        sys.path.insert(0, str(CLIENT_SRC))
    from lossd_client import Client

    return Client


def hand_binary_mean(http: httpx.Client, url: str, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The hand-written call: body by hand, one POST, the mean read from the binary answer."""
    body, headers = payloads.binary_request(y_true, y_pred)
    response = http.post(url + "/v2/models/mse/infer", content=body, headers=headers)
    response.raise_for_status()
    length = int(response.headers["inference-header-content-length"])
    header = orjson.loads(response.content[:length])
    offset = length
    for output in header["outputs"]:
        size = output["parameters"]["binary_data_size"]
        if output["name"] == "mean":
            return float(np.frombuffer(response.content, "<f4", count=1, offset=offset)[0])
        offset += size
    raise RuntimeError("no mean in the answer")


def client_vs_binary(cfg: Config) -> Section:
    """C1: the client's time / the hand-written binary call's, median of per-round ratios."""
    lossd_client = _import_client()
    y_true, y_pred = payloads.tensors(cfg.elements)
    expected = float(np.mean(np.square(y_pred.astype(np.float64) - y_true)))
    rounds = max(cfg.repeats * 3, 3)
    means: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(servers.lossd())
        http = stack.enter_context(httpx.Client(timeout=600))
        client = stack.enter_context(lossd_client(server.url, timeout=600))
        transport = client.evaluate("mse", y_true, y_pred).transport

        def by_hand() -> None:
            means["hand"] = hand_binary_mean(http, server.url, y_true, y_pred)

        def through_client() -> None:
            result = client.evaluate("mse", y_true, y_pred)
            assert result.mean is not None
            means["client"] = result.mean

        times = interleaved(
            {"hand": timed(by_hand), "client": timed(through_client)}, rounds, rotate=True
        )
    for name, mean in means.items():
        assert np.isclose(mean, expected, rtol=1e-5), (name, mean, expected)
    ratio = paired_ratio(times["client"], times["hand"])
    median = {name: float(np.median(t)) for name, t in times.items()}
    shape = list(y_true.shape)
    section = Section(
        f"Python client: MSE over two {shape} float32 tensors, client vs a hand-written /v2 call",
        figures=[
            ("hand-written /v2 binary call (body by hand, httpx, mean read)", _ms(median["hand"])),
            (f"lossd_client Client.evaluate (chose {transport})", _ms(median["client"])),
        ],
    )
    section.notes.append(
        f"rounds interleaved: {rounds} (order alternating); the ratio is the median of the "
        "per-round ratios"
    )
    section.targets.append(
        Target(
            "C1",
            "client vs hand-written binary /v2 call",
            f"{ratio:.2f}x",
            f"<= {GOAL:.0f}x",
            ratio <= GOAL,
        )
    )
    return section


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"
