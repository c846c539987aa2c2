"""The HTTP floor: a bare ASGI app that reads the request body and answers its size.

No framework, no parsing: the time a request takes here is uvicorn receiving the body on
loopback (and the client sending it), which no endpoint can go below::

    uvicorn bench.baselines.body_sink:app --port 8002
"""

from __future__ import annotations

from typing import Any

Scope = dict[str, Any]


async def app(scope: Scope, receive: Any, send: Any) -> None:
    """Read the whole body and answer ``{"bytes": n}``; lifespan events are acknowledged."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)  # as Starlette's Request.body() does
    answer = b'{"bytes": %d}' % len(body)
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})
