"""What the client returns: frozen dataclasses with NumPy arrays where the server sends tensors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ._errors import LossdError

FloatArray = npt.NDArray[np.floating[Any]]


@dataclass(frozen=True, eq=False)
class Evaluation:
    """One loss evaluated on one pair of tensors (or merged over many, see ``chunks``).

    ``per_sample`` is a NumPy array in the per-sample shape (``None`` for stream totals and Dask
    totals); a non-finite value the server sent as JSON ``null`` is NaN here and is counted in
    ``non_finite``. ``mean = sum / count``, so evaluations merge exactly as
    ``Σ sum / Σ count``. ``value`` is what Keras returns for ``reduction`` (``None`` for
    ``"none"``). ``gradient`` and ``hessian_diagonal`` have y_pred's shape and the computation
    dtype when asked for (``None`` otherwise), whichever transport carried them; their NaN or
    infinite elements are counted in ``gradient_non_finite`` and ``hessian_diagonal_non_finite``.
    """

    loss: str
    per_sample: FloatArray | None
    mean: float | None
    sum: float | None
    count: float
    value: float | None
    reduction: str
    dtype: str
    non_finite: int = 0
    gradient: FloatArray | None = None
    hessian_diagonal: FloatArray | None = None
    chunks: int | None = None
    transport: str = "json"
    """How the answer came: ``"json"`` (/v1), ``"binary"`` (/v2 binary), ``"stream"`` or
    ``"dask"``."""
    gradient_non_finite: int = 0
    hessian_diagonal_non_finite: int = 0


@dataclass(frozen=True)
class OptionInfo:
    """One option a loss takes (``GET /v1/losses/{name}``)."""

    name: str
    type: str
    default: Any
    doc: str
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class LossInfo:
    """A catalogue entry: canonical ``name``, ``aliases``, Keras ``class_name``, ``formula``...;
    ``raw`` keeps the whole entry as sent (fields newer than this client included)."""

    name: str
    aliases: tuple[str, ...]
    class_name: str
    family: str
    formula: str
    doc: str
    options: tuple[OptionInfo, ...]
    sparse_labels: bool
    raw: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_json(cls, entry: Mapping[str, Any]) -> LossInfo:
        return cls(
            name=str(entry["name"]),
            aliases=tuple(entry.get("aliases", ())),
            class_name=str(entry.get("class_name", "")),
            family=str(entry.get("family", "")),
            formula=str(entry.get("formula", "")),
            doc=str(entry.get("doc", "")),
            options=tuple(
                OptionInfo(
                    name=str(o["name"]),
                    type=str(o.get("type", "")),
                    default=o.get("default"),
                    doc=str(o.get("doc", "")),
                    minimum=o.get("minimum"),
                    maximum=o.get("maximum"),
                )
                for o in entry.get("options", ())
            ),
            sparse_labels=bool(entry.get("sparse_labels", False)),
            raw=dict(entry),
        )


@dataclass(frozen=True, eq=False)
class BatchResult:
    """The outcome of one :meth:`Client.batch` item: its ``evaluations`` (one per loss, in the
    order asked) when ``status`` is 200, else its ``error``. An item's failure never raises."""

    id: str | None
    status: int
    evaluations: tuple[Evaluation, ...] = ()
    error: LossdError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def evaluation(self) -> Evaluation:
        """The first (for a one-loss item, the only) evaluation; raises the item's error."""
        if self.error is not None:
            raise self.error
        return self.evaluations[0]
