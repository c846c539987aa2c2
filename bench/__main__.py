"""``make bench``: every benchmark in turn, each printing its ratios and PASS/FAIL per target.

So far: the engine against Keras's NumPy backend (``bench/engine_vs_keras.py``). The HTTP
benchmarks of issue 4 (JSON, binary, small requests, streaming, workers) will join here.
"""

from __future__ import annotations

import sys

from bench import engine_vs_keras

if __name__ == "__main__":
    sys.argv = sys.argv[:1]
    engine_vs_keras.main()
