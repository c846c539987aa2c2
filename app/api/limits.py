"""Body-size limit as ASGI middleware: 413 before reading when Content-Length says so, and while
reading otherwise (chunked uploads), so an oversized body is never buffered whole."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.problems import ProblemError


class BodyTooLargeError(ProblemError):
    """The request body is over the configured limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            f"request body is larger than the limit of {limit} bytes (LOSSD_MAX_BODY_BYTES)",
            slug="body-too-large",
        )


class BodyLimitMiddleware:
    """Reject bodies over ``max_bytes``; paths for which ``exempt(path)`` is true bound
    themselves (the NDJSON stream limits each line instead)."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, exempt: Callable[[str], bool] = lambda path: False
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        for key, value in scope["headers"]:
            if key == b"content-length":
                problem = (
                    ProblemError(400, "Content-Length is not a number")
                    if not value.isdigit()
                    else BodyTooLargeError(self.max_bytes)
                    if int(value) > self.max_bytes
                    else None
                )
                if problem is not None:
                    await problem.response()(scope, receive, send)
                    return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)
