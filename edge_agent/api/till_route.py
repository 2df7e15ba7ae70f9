"""A lean request path for the till's hot routes, falling back to FastAPI's for anything else.

Theory of operation
-------------------
FastAPI answers a request by solving the route's dependency tree: the body, the till (itself
resting on the bearer scheme) and the context, each with per-request bookkeeping of its own.
On this box that bookkeeping cost more than the lookup and validation it leads to (issue 7).
``TillBodyRoute`` serves routes shaped ``(body: <model>, till_id: Till, ctx: Ctx)`` and, for
a request that is plainly well-formed, does the same steps directly:

1. the content type is ``application/json`` and the body decodes to a JSON object;
2. the body validates, through the route's own body field (the one FastAPI would use, so the
   value is the same);
3. the bearer token names a till (``deps.till_of``, the same check the ``Till`` dependency
   makes);

then it calls the endpoint with the validated body, the till and the context. Anything else
(another content type, undecodable JSON, a body that fails validation, no or an unknown token,
dependency overrides) goes down FastAPI's own path, unchanged, which reads the body again from
the request's cache and gives the error it always gave. So every answer is what FastAPI would
have given; only the well-formed request skips the machinery. The route stays an ``APIRoute``:
its OpenAPI operation (security, body schema, responses) is generated as before.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute, serialize_response

from edge_agent.api.deps import UnauthorizedError, bearer, context, till_of

_PARAMETERS = ("body", "till_id", "ctx")


class TillBodyRoute(APIRoute):
    """An ``APIRoute`` for endpoints ``(body, till_id: Till, ctx: Ctx)``; see the module
    docstring."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        # The lean path passes exactly these arguments: refuse any other shape at import.
        names = tuple(inspect.signature(endpoint).parameters)
        if names != _PARAMETERS:
            raise TypeError(f"{endpoint.__name__}{names}: TillBodyRoute needs {_PARAMETERS}")
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        slow = super().get_route_handler()
        body_field = self.body_field
        response_field = self.response_field
        status_code = self.status_code or 200
        endpoint = self.endpoint
        overrides = self.dependency_overrides_provider
        assert body_field is not None, "TillBodyRoute needs a body model"

        async def handler(request: Request) -> Response:
            if overrides is not None and getattr(overrides, "dependency_overrides", None):
                return await slow(request)
            if request.headers.get("content-type") != "application/json":
                return await slow(request)
            try:
                doc = await request.json()
            except Exception:
                return await slow(request)
            if not isinstance(doc, dict):
                return await slow(request)
            body, errors = body_field.validate(doc, {}, loc=("body",))
            if errors:
                return await slow(request)
            try:
                till_id = till_of(request, await bearer(request))
            except UnauthorizedError:
                return await slow(request)
            raw = await endpoint(body=body, till_id=till_id, ctx=context(request))
            if isinstance(raw, Response):
                return raw
            content = await serialize_response(
                field=response_field, response_content=raw, dump_json=True
            )
            return Response(content=content, media_type="application/json", status_code=status_code)

        return handler
