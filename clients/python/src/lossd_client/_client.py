"""``Client`` and ``AsyncClient``: the same methods, one blocking, one ``async``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import Any, Self, TypeVar

import httpx

from . import _wire
from ._errors import LossdConnectionError
from ._models import BatchResult, Evaluation, LossInfo
from ._wire import ArrayLike, Call, Chunk, EvaluateArgs, Transport

T = TypeVar("T")

DEFAULT_TIMEOUT = 60.0
DEFAULT_RETRIES = 3
#: Values (y_true and y_pred together) from which ``transport="auto"`` goes binary.
DEFAULT_BINARY_THRESHOLD = 65_536


class _Base:
    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        retries: int,
        max_retry_wait: float,
        backoff: float,
        binary_threshold: int,
    ) -> None:
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.max_retry_wait = max_retry_wait
        self.backoff = backoff
        self.binary_threshold = binary_threshold
        self._headers = {"accept": "application/json, application/octet-stream"}
        if api_key is not None:
            self._headers["authorization"] = f"Bearer {api_key}"

    def _plan_evaluate(
        self,
        loss: str,
        y_true: ArrayLike,
        y_pred: ArrayLike,
        sample_weight: ArrayLike | None,
        options: Mapping[str, Any] | None,
        reduction: str | None,
        dtype: str,
        gradient: bool,
        hessian_diagonal: bool,
        per_sample: bool,
        transport: Transport,
    ) -> Call[Evaluation]:
        args = EvaluateArgs(
            loss=loss,
            y_true=_wire.as_array(y_true, "y_true"),
            y_pred=_wire.as_array(y_pred, "y_pred"),
            sample_weight=None
            if sample_weight is None
            else _wire.as_array(sample_weight, "sample_weight"),
            options=options,
            reduction=reduction,
            dtype=dtype,
            gradient=gradient,
            hessian_diagonal=hessian_diagonal,
            per_sample=per_sample,
        )
        if _wire.choose_transport(args, transport, self.binary_threshold) == "binary":
            return _wire.evaluate_binary(args)
        return _wire.evaluate_json(args)

    def _request_kwargs(self, call: Call[Any]) -> dict[str, Any]:
        headers = {**self._headers, **call.headers}
        if call.length is not None:
            headers["content-length"] = str(call.length)
        return {"headers": headers, "params": call.params}

    def _retryable(self, call: Call[Any], attempt: int) -> bool:
        return call.replayable and attempt < self.retries


class Client(_Base):
    """A blocking lossd client (httpx underneath; keep-alive connections; a context manager).

    >>> with Client("http://127.0.0.1:8000") as lossd:  # doctest: +SKIP
    ...     result = lossd.evaluate("mse", [[0, 1, 1], [0, 0, 1]], [[1, 1, 0], [1, 0, 1]])
    >>> result.per_sample, result.mean  # doctest: +SKIP
    (array([0.6666667 , 0.33333334], dtype=float32), 0.5)

    ``retries``: how many times a 503, 429 or 408 answer (after its ``Retry-After``, at most
    ``max_retry_wait`` seconds) or a connection error is retried; every evaluation is pure, so
    this is always safe. ``binary_threshold``: from this many values (y_true and y_pred
    together) evaluations go through /v2's binary tensors rather than JSON. ``transport``: an
    httpx transport (``httpx.MockTransport`` in tests, a proxy...).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        *,
        max_retry_wait: float = 30.0,
        backoff: float = 0.5,
        binary_threshold: int = DEFAULT_BINARY_THRESHOLD,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, api_key, retries, max_retry_wait, backoff, binary_threshold)
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def evaluate(
        self,
        loss: str,
        y_true: ArrayLike,
        y_pred: ArrayLike,
        sample_weight: ArrayLike | None = None,
        options: Mapping[str, Any] | None = None,
        reduction: str | None = None,
        dtype: str = "float32",
        gradient: bool = False,
        hessian_diagonal: bool = False,
        *,
        per_sample: bool = True,
        transport: Transport = "auto",
    ) -> Evaluation:
        """Evaluate ``loss`` (any name or alias) on one pair of tensors.

        Arrays, nested lists or anything with ``__array__``. ``gradient`` /
        ``hessian_diagonal``: also the derivatives of ``value`` with respect to y_pred (shaped
        like y_pred, in the computation dtype, on either transport). ``per_sample=False``
        keeps only the totals (the binary transport then does not download them).
        ``transport``: ``"auto"`` (JSON for small tensors, /v2 binary from
        ``binary_threshold`` values when /v2 can carry the request), ``"json"`` or
        ``"binary"``.

        >>> lossd.evaluate("mse", [[0, 1, 1], [0, 0, 1]], [[1, 1, 0], [1, 0, 1]]).mean
        ... # doctest: +SKIP
        0.5
        """
        call = self._plan_evaluate(
            loss, y_true, y_pred, sample_weight, options, reduction, dtype, gradient,
            hessian_diagonal, per_sample, transport,
        )  # fmt: skip
        return self._run(call)

    def losses(self) -> list[LossInfo]:
        """The catalogue: every loss with its aliases, options, formula and doc."""
        return self._run(_wire.losses_call())

    def loss(self, name: str) -> LossInfo:
        """One catalogue entry, under any of its names (``UnknownLossError`` if none)."""
        return self._run(_wire.loss_call(name))

    def batch(self, items: Iterable[Mapping[str, Any]]) -> list[BatchResult]:
        """Evaluate many items in one call (see :func:`lossd_client._wire.batch_call` for an
        item's keys); one :class:`BatchResult` per item, in order. A bad item is a result with
        its ``error``, never an exception (the call itself may still raise, e.g. a 413)."""
        return self._run(_wire.batch_call(items))

    def stream(
        self,
        loss: str,
        chunks: Iterable[Chunk],
        options: Mapping[str, Any] | None = None,
        reduction: str | None = None,
        dtype: str = "float32",
        *,
        per_sample: bool = False,
    ) -> Evaluation:
        """Send ``(y_true, y_pred[, sample_weight])`` chunks as NDJSON, one line each, as they
        are produced; the server keeps running totals. Returns them (``per_sample`` only when
        asked). Retried only when ``chunks`` is a sequence."""
        call = _wire.stream_call(
            loss, chunks, options=options, reduction=reduction, dtype=dtype, per_sample=per_sample
        )
        return self._run(call)

    def _run(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    call.method,
                    call.path,
                    content=_iterate(call.chunks()) if call.chunks is not None else None,
                    **self._request_kwargs(call),
                )
            except httpx.TransportError as exc:
                if not self._retryable(call, attempt):
                    raise _connection_error(exc, attempt) from exc
                time.sleep(_wire.connection_wait(attempt, self.max_retry_wait, self.backoff))
                attempt += 1
                continue
            if response.status_code in _wire.RETRY_STATUSES and self._retryable(call, attempt):
                time.sleep(_wire.retry_after(response, attempt, self.max_retry_wait, self.backoff))
                attempt += 1
                continue
            if response.status_code >= 400:
                raise _wire.error_from_response(response)
            return call.parse(response)


class AsyncClient(_Base):
    """The ``async`` twin of :class:`Client`: the same constructor and methods, awaited.

    >>> async with AsyncClient("http://127.0.0.1:8000") as lossd:  # doctest: +SKIP
    ...     result = await lossd.evaluate("mse", [[0, 1]], [[1, 1]])
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        *,
        max_retry_wait: float = 30.0,
        backoff: float = 0.5,
        binary_threshold: int = DEFAULT_BINARY_THRESHOLD,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, api_key, retries, max_retry_wait, backoff, binary_threshold)
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def evaluate(
        self,
        loss: str,
        y_true: ArrayLike,
        y_pred: ArrayLike,
        sample_weight: ArrayLike | None = None,
        options: Mapping[str, Any] | None = None,
        reduction: str | None = None,
        dtype: str = "float32",
        gradient: bool = False,
        hessian_diagonal: bool = False,
        *,
        per_sample: bool = True,
        transport: Transport = "auto",
    ) -> Evaluation:
        """See :meth:`Client.evaluate`."""
        call = self._plan_evaluate(
            loss, y_true, y_pred, sample_weight, options, reduction, dtype, gradient,
            hessian_diagonal, per_sample, transport,
        )  # fmt: skip
        return await self._run(call)

    async def losses(self) -> list[LossInfo]:
        """See :meth:`Client.losses`."""
        return await self._run(_wire.losses_call())

    async def loss(self, name: str) -> LossInfo:
        """See :meth:`Client.loss`."""
        return await self._run(_wire.loss_call(name))

    async def batch(self, items: Iterable[Mapping[str, Any]]) -> list[BatchResult]:
        """See :meth:`Client.batch`."""
        return await self._run(_wire.batch_call(items))

    async def stream(
        self,
        loss: str,
        chunks: Iterable[Chunk],
        options: Mapping[str, Any] | None = None,
        reduction: str | None = None,
        dtype: str = "float32",
        *,
        per_sample: bool = False,
    ) -> Evaluation:
        """See :meth:`Client.stream` (``chunks`` is a plain iterable here too)."""
        call = _wire.stream_call(
            loss, chunks, options=options, reduction=reduction, dtype=dtype, per_sample=per_sample
        )
        return await self._run(call)

    async def _run(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    call.method,
                    call.path,
                    content=_aiterate(call.chunks()) if call.chunks is not None else None,
                    **self._request_kwargs(call),
                )
            except httpx.TransportError as exc:
                if not self._retryable(call, attempt):
                    raise _connection_error(exc, attempt) from exc
                await asyncio.sleep(
                    _wire.connection_wait(attempt, self.max_retry_wait, self.backoff)
                )
                attempt += 1
                continue
            if response.status_code in _wire.RETRY_STATUSES and self._retryable(call, attempt):
                await asyncio.sleep(
                    _wire.retry_after(response, attempt, self.max_retry_wait, self.backoff)
                )
                attempt += 1
                continue
            if response.status_code >= 400:
                raise _wire.error_from_response(response)
            return call.parse(response)


def _iterate(chunks: Iterable[bytes]) -> Iterator[bytes]:
    yield from chunks


async def _aiterate(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def _connection_error(exc: httpx.TransportError, attempt: int) -> LossdConnectionError:
    tries = f" after {attempt + 1} attempts" if attempt else ""
    return LossdConnectionError(
        None, "Connection error", f"{type(exc).__name__}: {exc}{tries}".rstrip(": ")
    )
