"""What every POS API route depends on: the context and the authenticated till."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from edge_agent.api.auth import TillAuthenticator
from edge_agent.proximity.till_members import TillMembers
from edge_agent.runtime.db_thread import DbThread
from edge_agent.runtime.supervisor import TaskStatus


class UnauthorizedError(Exception):
    """No or unknown till token (answered 401)."""


def _no_printer() -> None:
    return None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ApiContext:
    db: DbThread
    auth: TillAuthenticator
    store_id: str
    clock: Callable[[], datetime]
    wake_printer: Callable[[], None] = _no_printer  # a new print job is waiting
    print_confirm_wait_s: float = 1.5  # how long checkout waits to report "printed"
    task_states: Callable[[], Mapping[str, TaskStatus]] = dict  # the supervisor's, for health
    till_members: TillMembers | None = None  # who an NFC tap named at each till (presence on)
    presence_state: Callable[[], dict[str, object] | None] = lambda: None  # for health


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


# The dependencies are coroutines although they never await: FastAPI runs a plain ``def``
# dependency in a worker thread, a thread hop (and GIL hand-over) per dependency per request,
# which was most of the gap between validate and a no-op endpoint (issue 7).
async def _ctx(request: Request) -> ApiContext:
    return context(request)


# Declared as the OpenAPI document's security scheme (the Authorize button of /docs, and a
# `security` entry on every route that needs it). auto_error=False: a missing or foreign scheme
# is our own 401 in the API's {error, detail} shape, not FastAPI's.
bearer = HTTPBearer(
    scheme_name="tillToken",
    description="The till's own token (`edge-agent till-token`); the till id comes from it.",
    auto_error=False,
)


def till_of(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str:
    """The till the bearer ``credentials`` belong to; UnauthorizedError if none."""
    if credentials is None:
        raise UnauthorizedError
    till_id = context(request).auth.till_for(f"Bearer {credentials.credentials}")
    if till_id is None:
        raise UnauthorizedError
    return till_id


async def _till(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> str:
    return till_of(request, credentials)


Ctx = Annotated[ApiContext, Depends(_ctx)]
Till = Annotated[str, Depends(_till)]
