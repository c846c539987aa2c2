"""T2: the JSON tensor decoder alone, in-process, against ``orjson.loads`` + ``np.asarray``.

The decoder under test is a callable ``decode_body(body: bytes) -> dict[str, np.ndarray]`` that
turns a ``{"y_true": [[...]], "y_pred": [[...]]}`` body into float32 arrays (other keys may be
returned too; only ``y_true`` and ``y_pred`` are compared). It is looked up when the benchmark
runs, as ``module:function``, from ``LOSSD_BENCH_DECODER`` or else :data:`DEFAULT_DECODER`; when
that module or function does not exist the target is skipped with a "decoder not available" line.

Baseline B is what the service did before: ``orjson.loads`` (a Python float per number) then
``np.asarray(..., float32)`` per tensor. For reference the section also times pysimdjson's
``Array.as_buffer`` (a SIMD parser copying each tensor into a buffer, with no Python object per
number), which is no target.
"""

from __future__ import annotations

import importlib
import os
import statistics
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson

from bench import payloads
from bench.report import Section, Target
from bench.timing import interleaved, paired_ratio, timed

Arrays = dict[str, np.ndarray[Any, Any]]
Decoder = Callable[[bytes], Arrays]

DECODER_ENV = "LOSSD_BENCH_DECODER"
DEFAULT_DECODER = "app.api.json_tensors:decode_body"
TENSORS = ("y_true", "y_pred")
GOAL = 0.4


def find_decoder() -> tuple[Decoder | None, str]:
    """(the decoder, its ``module:function``), or (None, why it is not available)."""
    where = os.environ.get(DECODER_ENV) or DEFAULT_DECODER
    module_name, _, name = where.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            return None, f"no module {module_name}"
        raise  # the module exists but one of its imports does not: a real error
    decoder = getattr(module, name or "decode_body", None)
    if not callable(decoder):
        return None, f"{module_name} has no function {name or 'decode_body'}"
    return decoder, where


def baseline(body: bytes) -> Arrays:
    """B: ``orjson.loads`` + ``np.asarray(..., float32)`` of ``y_true`` and ``y_pred``."""
    data = orjson.loads(body)
    return {name: np.asarray(data[name], dtype=np.float32) for name in TENSORS}


def simdjson_reference(body: bytes) -> Arrays | None:
    """pysimdjson's ``Array.as_buffer`` per tensor (doubles, then float32), or None without
    pysimdjson. Trusts the body to be rectangular: a reference time, not a decoder."""
    try:
        import simdjson
    except ImportError:
        return None
    document = simdjson.Parser().parse(body)
    out: Arrays = {}
    for name in TENSORS:
        tensor = document[name]
        shape = (len(tensor), len(tensor[0]))
        flat = np.frombuffer(tensor.as_buffer(of_type="d"), dtype=np.float64)
        out[name] = flat.astype(np.float32).reshape(shape)
    return out


def check(decoded: Arrays, expected: Arrays, who: str) -> None:
    """Raise unless ``decoded`` holds exactly the expected float32 tensors."""
    for name in TENSORS:
        got = np.asarray(decoded[name])
        if got.shape != expected[name].shape or not np.array_equal(
            got.astype(np.float32), expected[name]
        ):
            raise AssertionError(f"{who} decoded {name} wrong: {got.dtype} {got.shape}")


def decoder_section(elements: int, repeats: int) -> Section:
    """T2 on two float32 tensors of ``elements`` values each (1000 columns)."""
    y_true, y_pred = payloads.tensors(elements)
    body = payloads.json_body(y_true, y_pred)
    shape = list(y_true.shape)
    expected = {"y_true": y_true, "y_pred": y_pred}
    section = Section(
        f"JSON tensor decoder, in-process: two {shape} float32 tensors, "
        f"{len(body) / 1e6:.1f} MB of JSON",
        figures=[("body", f"{len(body) / 1e6:.1f} MB")],
    )
    decoder, where = find_decoder()
    check(baseline(body), expected, "the baseline")
    contenders = {"B": timed(lambda: baseline(body))}
    if decoder is not None:
        check(decoder(body), expected, where)
        contenders["decoder"] = timed(lambda: decoder(body))
    reference = simdjson_reference(body)
    if reference is not None:
        check(reference, expected, "pysimdjson")
        contenders["simdjson"] = timed(lambda: simdjson_reference(body))
    times = interleaved(contenders, repeats)
    median = {name: statistics.median(t) for name, t in times.items()}
    section.figures.append(
        ("B: orjson.loads + np.asarray (float32)", f"{median['B'] * 1e3:.1f} ms")
    )
    if "simdjson" in median:
        section.figures.append(
            ("reference: pysimdjson Array.as_buffer", f"{median['simdjson'] * 1e3:.1f} ms")
        )
    if decoder is None:
        section.figures.append(("decoder", f"not available: {where}"))
        section.notes.append(f"T2 skipped; {DECODER_ENV}=module:function names another decoder")
        section.targets.append(
            Target("T2", "decoder vs B", f"decoder not available ({where})", f"<= {GOAL}x", None)
        )
        return section
    ratio = paired_ratio(times["decoder"], times["B"])
    section.figures.append((f"decoder: {where}", f"{median['decoder'] * 1e3:.1f} ms"))
    section.targets.append(
        Target("T2", "decoder vs B", f"{ratio:.2f}x B", f"<= {GOAL}x", ratio <= GOAL)
    )
    return section
