"""Conformance tests compare lossd with Keras 3 running on its NumPy backend.

The backend must be chosen before Keras is first imported; the binary-crossentropy-from-logits
and cosine-similarity comparisons depend on the NumPy backend's particular numerics.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "numpy")
