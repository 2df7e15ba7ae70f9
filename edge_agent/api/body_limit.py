"""A request body size limit, enforced while the body is read (an ASGI middleware).

Theory of operation. uvicorn hands a request body to the app as it arrives, in chunks; left
alone, FastAPI reads all of it into memory before validating, so a 16 MB body costs 16 MB. This
middleware stands in front of the app and:

1. refuses at once, before reading anything, a request whose ``Content-Length`` is over the
   limit (413);
2. otherwise reads the body itself, counting the bytes of each chunk as it comes (a chunked
   body has no length to check up front), and answers 413 the moment the count passes the
   limit, without waiting for the rest;
3. hands a body within the limit to the app, replayed from what it read; later ``receive``
   calls (a disconnect) go to the server as usual.

So at most ``max_bytes`` of a body are ever held. The 413 goes out without ``Connection: close``:
uvicorn discards the rest of an answered request's body and keeps the connection, so a client
that is still writing its body reads the answer instead of a reset. The answer has the API's
``{error, detail}`` shape.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send, f"the body is {declared} bytes")
            return
        chunks: list[Message] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away mid-body
                return
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(send, f"the body is more than {self.max_bytes} bytes")
                return
            chunks.append(message)
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return chunks.pop(0) if chunks else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, why: str) -> None:
        body = json.dumps(
            {"error": "body_too_large", "detail": f"{why}; the limit is {self.max_bytes} bytes"},
            separators=(",", ":"),
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server's parser refuses a malformed length before we run
    return None
