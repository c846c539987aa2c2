"""The reference derivatives: JAX autodiff of Keras 3's own losses, in float64.

Run as ``KERAS_BACKEND=jax python -m tests.derivatives.jax_reference CASES OUT`` (the tests do so
in a subprocess: Keras fixes its backend per process, and the rest of the suite runs Keras on
its NumPy backend). ``CASES`` is an ``.npz`` file written by ``test_against_jax.py``: for case
``i``, ``i/spec`` (JSON: Keras class name, constructor kwargs, reduction), ``i/y_true``,
``i/y_pred`` and optionally ``i/sample_weight``, already expressed as Keras takes them (the
spec's ``move_axis``: move that axis of ``y_pred`` last inside the differentiated function). ``OUT``
gets ``i/value``, ``i/gradient`` and ``i/hessian_diagonal`` (float64; of the sum for reduction
``none``), or ``i/error``.

Float64 throughout: ``jax_enable_x64``, and Keras's ``BIT64_TO_BIT32_DTYPE`` map emptied, without
which Keras converts float64 inputs to float32 (and its JAX ``mean`` computes in float32), so
the reference would only be float32-exact. ``test_reference_is_float64_exact`` checks the result
against a hand derivation (MSE).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any
from unittest import mock

import numpy as np


def main(cases_path: str, out_path: str) -> None:
    if os.environ.get("KERAS_BACKEND") != "jax":
        raise SystemExit("run with KERAS_BACKEND=jax")
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import keras
    from keras.src.backend.common import dtypes as keras_dtypes

    cases = np.load(cases_path)
    ids = sorted({k.split("/")[0] for k in cases.files}, key=int)
    out: dict[str, Any] = {}
    with mock.patch.object(keras_dtypes, "BIT64_TO_BIT32_DTYPE", {}):
        for i in ids:
            spec = json.loads(str(cases[f"{i}/spec"]))
            y_true = jnp.asarray(cases[f"{i}/y_true"], dtype=jnp.float64)
            y_pred = np.asarray(cases[f"{i}/y_pred"], dtype=np.float64)
            key = f"{i}/sample_weight"
            weight = jnp.asarray(cases[key], dtype=jnp.float64) if key in cases.files else None
            loss = getattr(keras.losses, spec["class_name"])(
                reduction=spec["reduction"], dtype="float64", **spec["kwargs"]
            )

            def value(
                p: Any,
                loss: Any = loss,
                y_true: Any = y_true,
                weight: Any = weight,
                move: int | None = spec.get("move_axis"),
            ) -> Any:
                if move is not None:  # a class axis Keras's JAX backend does not take
                    p = jnp.moveaxis(p, move, -1)
                return jnp.sum(loss(y_true, p, sample_weight=weight))  # sum: for "none"

            try:
                v = value(y_pred)
                g = jax.grad(value)(y_pred)
                h = jax.hessian(value)(y_pred).reshape(y_pred.size, y_pred.size)
            except Exception as e:  # reported to the test, which fails on it
                out[f"{i}/error"] = np.asarray(f"{type(e).__name__}: {e}")
                continue
            out[f"{i}/value"] = np.asarray(v, dtype=np.float64)
            out[f"{i}/gradient"] = np.asarray(g, dtype=np.float64)
            out[f"{i}/hessian_diagonal"] = np.diagonal(np.asarray(h)).reshape(y_pred.shape)
    np.savez(out_path, **out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
