"""What every POS API route depends on: the context and the authenticated till."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Header, Request

from edge_agent.api.auth import TillAuthenticator
from edge_agent.api.db_thread import DbThread


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


def _ctx(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


def _till(request: Request, authorization: Annotated[str | None, Header()] = None) -> str:
    till_id = _ctx(request).auth.till_for(authorization)
    if till_id is None:
        raise UnauthorizedError
    return till_id


Ctx = Annotated[ApiContext, Depends(_ctx)]
Till = Annotated[str, Depends(_till)]
