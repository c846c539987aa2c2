"""The loss engine: pure NumPy, no web imports.

``evaluate(name, y_true, y_pred, ...)`` is the one entry point; ``LOSSES`` and ``resolve`` give the
catalogue. Each loss declares its names and options on its function (``spec.py``); ``registry.py``
lists them in catalogue order.
"""

from app.losses.errors import InvalidInputError, InvalidOptionError, LossError, UnknownLossError
from app.losses.evaluate import Evaluation, evaluate, evaluate_tensors
from app.losses.options import OptionSpec
from app.losses.reduction import REDUCTIONS, Reduced, reduce
from app.losses.registry import (
    CATALOGUE,
    FLAVOURS,
    LOSSES,
    TORCH_LOSSES,
    LossSpec,
    all_names,
    resolve,
)
from app.losses.tensors import DTYPES, MAX_RANK, Tensors, check_tensor, to_array

__all__ = [
    "CATALOGUE",
    "DTYPES",
    "FLAVOURS",
    "LOSSES",
    "MAX_RANK",
    "REDUCTIONS",
    "TORCH_LOSSES",
    "Evaluation",
    "InvalidInputError",
    "InvalidOptionError",
    "LossError",
    "LossSpec",
    "OptionSpec",
    "Reduced",
    "Tensors",
    "UnknownLossError",
    "all_names",
    "check_tensor",
    "evaluate",
    "evaluate_tensors",
    "reduce",
    "resolve",
    "to_array",
]
