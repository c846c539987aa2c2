"""lossd-client: evaluate Keras loss functions on a lossd server from Python.

>>> from lossd_client import Client
>>> with Client("http://127.0.0.1:8000") as lossd:  # doctest: +SKIP
...     print(lossd.evaluate("mse", [[0, 1, 1], [0, 0, 1]], [[1, 1, 0], [1, 0, 1]]).mean)
0.5

``lossd_client.dask`` (extra ``lossd-client[dask]``) evaluates Dask arrays on a lossd fleet.
"""

from ._client import AsyncClient, Client
from ._errors import (
    ErrorItem,
    InvalidInputError,
    LossdConnectionError,
    LossdError,
    OverloadedError,
    TooLargeError,
    UnauthorizedError,
    UnknownLossError,
)
from ._models import BatchResult, Evaluation, LossInfo, OptionInfo
from ._wire import Transport

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "BatchResult",
    "Client",
    "ErrorItem",
    "Evaluation",
    "InvalidInputError",
    "LossInfo",
    "LossdConnectionError",
    "LossdError",
    "OptionInfo",
    "OverloadedError",
    "TooLargeError",
    "Transport",
    "UnauthorizedError",
    "UnknownLossError",
    "__version__",
]
