"""Where a large JSON request's time goes in the server: py-spy on a live ``lossd serve``.

    python -m bench.profile_json [--elements 1000000] [--requests 8]

Starts lossd, samples it with py-spy (``pip install py-spy``; it needs ptrace, so root or
``kernel.yama.ptrace_scope=0``) while the client posts the 1M-pair MSE body a few times, then
prints the functions with the most samples, by themselves (self) and with their callees
(inclusive), as a share of the samples of busy threads. C functions called from Python (orjson's
parser, NumPy) count as their Python caller's self time.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import payloads, servers
from bench.client import Client

JSON = {"Content-Type": "application/json"}
# Threads waiting for work are sampled too; they are not time spent on a request.
IDLE = {"Condition.wait", "Queue.get", "WorkerThread.run", "Thread._bootstrap_inner"}


def summarize(folded: str, top: int = 20) -> str:
    """Self and inclusive shares per function from py-spy's raw (folded) output."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in folded.splitlines():
        stack, _, count = line.rpartition(" ")
        names = [re.sub(r" \(.*?\)$", "", frame).strip() for frame in stack.split(";")]
        if not names or names[-1] in IDLE:
            continue
        n = int(count)
        total += n
        own[names[-1]] += n
        for name in set(names):
            inclusive[name] += n
    out = [f"{total} busy samples", "self:"]
    out += [f"  {c / total:6.1%}  {name}" for name, c in own.most_common(top)]
    out.append("inclusive:")
    out += [f"  {c / total:6.1%}  {name}" for name, c in inclusive.most_common(top * 2)]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=int, default=1_000_000, help="pairs per request")
    parser.add_argument("--requests", type=int, default=8)
    args = parser.parse_args()
    beside = Path(sys.executable).with_name("py-spy")  # the virtualenv's, when not on PATH
    py_spy = shutil.which("py-spy") or (str(beside) if beside.exists() else None)
    if py_spy is None:
        raise SystemExit("py-spy is not installed: pip install py-spy")
    body = payloads.json_body(*payloads.tensors(args.elements))
    with servers.lossd() as server, tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "profile.txt"
        client = Client()
        url = server.url + "/v1/losses/mse"
        client.request("POST", url, body, JSON)  # warm up before sampling
        spy = subprocess.Popen(
            [py_spy, "record", "-p", str(server.pid), "-f", "raw", "-r", "500", "-o", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)  # py-spy attaches
        timing = client.time(url, body, JSON, args.requests, warmup=0)
        client.close()
        spy.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
        spy.wait(timeout=30)
        print(f"{args.requests} requests of {len(body) / 1e6:.1f} MB, median {timing.median:.3f} s")
        print(summarize(out.read_text()))


if __name__ == "__main__":
    main()
