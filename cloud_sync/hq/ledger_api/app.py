"""The ledger HTTP API for HQ operators: a member's entries and balances, the programme's
liability, breakage forecast, campaign report and CSV export.

Theory of operation
-------------------
Every route needs ``Authorization: Bearer <operator token>`` (``operator_tokens``): a 401
otherwise, before any query runs. Query values are typed (enums for channel, kind, category
and side; aware ISO 8601 times; bounded ids), so a bad one is a 422 ``invalid_request``
naming it; a cursor the API did not hand out is a 422 ``bad_cursor``, a range whose start is
not before its end a 422 ``empty_range``, a parameter the route does not take a 422
``unknown_parameter`` (a misspelt filter must not widen the view silently). Every error is
``{error, detail}`` (``ErrorOut``); the OpenAPI document (``/openapi.json``) lists each
route's statuses.

The store is one connection (``EventStore``), so its work runs on one thread of the app's
own: requests take turns at the database and never block the event loop. The store being
unreachable is a 503 ``store_unavailable``. The app only reads.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final, TypeVar

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from cloud_sync.hq.finance import campaign_report, entries_csv, liability
from cloud_sync.hq.finance.campaign_report import Report
from cloud_sync.hq.finance.face_value import FaceValue
from cloud_sync.hq.finance.liability import Liability
from cloud_sync.hq.ingest.errors import StoreUnavailableError
from cloud_sync.hq.ingest.event_store import EventStore, Tx
from cloud_sync.hq.ledger_api import balances, cursor, entries
from cloud_sync.hq.ledger_api.balances import AccountBalance, Closing
from cloud_sync.hq.ledger_api.entries import Entry
from cloud_sync.hq.ledger_api.operator_tokens import Operators
from cloud_sync.hq.ledger_api.view import RangeError, View
from edge_agent.domain.points.accounts import Category
from edge_agent.domain.points.event import Channel, EventKind, Side

log = logging.getLogger(__name__)
T = TypeVar("T")
DEFAULT_PROGRAMME: Final = "main"  # the box's default programme (config)

_ISO: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}")


def _iso_text(value: object) -> object:
    # pydantic would also read "5.0" as seconds since 1970: the document promises ISO 8601.
    if isinstance(value, str) and not _ISO.match(value):
        raise ValueError("want an ISO 8601 time with an offset, e.g. 2025-03-01T00:00:00Z")
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_iso_text)]
Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@+-]+$")]


class ErrorOut(BaseModel):
    error: str = Field(description="stable name to switch on")
    detail: str


class LedgerPageOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member: str
    programme: str
    entries: list[Entry] = Field(description="newest first, at most 10")
    next_cursor: str | None = Field(description="for the next, older page; null on the last")
    closing: Closing


class BalanceOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member: str
    programme: str
    total: int = Field(description="the member's points over every category")
    accounts: list[AccountBalance]


_WHY: Final = {
    401: "`unauthorized`: no operator bearer token, or one this HQ does not know.",
    422: "`invalid_request` (`detail` names the parameter), `bad_cursor` (a cursor this API "
    "did not hand out), `empty_range` (`from` not before `to`) or `unknown_parameter`.",
    503: "`store_unavailable`: the ledger's database cannot be reached now.",
}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ErrorOut, "description": _WHY[s]} for s in statuses}


READ_ERRORS: Final = _errors(401, 422, 503)


class UnauthorizedError(Exception):
    pass


class BadQueryError(Exception):
    def __init__(self, error: str, detail: str) -> None:
        super().__init__(detail)
        self.error = error


@dataclass(frozen=True, slots=True)
class Context:
    store: EventStore
    operators: Operators
    clock: Callable[[], datetime]
    db: ThreadPoolExecutor

    async def read(self, work: Callable[[Tx], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.db, self.store.read, work)


_bearer = HTTPBearer(auto_error=False, description="an HQ operator's token")


def _query_names(dependant: Dependant) -> set[str]:
    """The query parameters a route takes, its dependencies' included."""
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _context(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Context:
    # ``_bearer`` only declares the scheme in the OpenAPI document; the check is here.
    ctx: Context = request.app.state.ctx
    if not ctx.operators.allows(request.headers.get("authorization")):
        raise UnauthorizedError
    # An unknown parameter is refused, not ignored: `chanel=web` must not show every channel.
    route = request.scope.get("route")
    if isinstance(route, APIRoute):
        unknown = sorted(set(request.query_params) - _query_names(route.dependant))
        if unknown:
            raise BadQueryError("unknown_parameter", f"unknown query parameter {unknown[0]!r}")
    return ctx


Ctx = Annotated[Context, Depends(_context)]
Programme = Annotated[Name, Query(description="the points programme")]


@dataclass(frozen=True)
class RangeQuery:
    """The range every finance route takes, as query parameters."""

    start: Annotated[
        Instant | None,
        Query(alias="from", description="ISO 8601 with offset, inclusive; default: to - 7 days"),
    ] = None
    end: Annotated[
        Instant | None,
        Query(alias="to", description="ISO 8601 with offset, exclusive; default: now"),
    ] = None

    def range(self, now: datetime) -> tuple[datetime, datetime]:
        view = self.view(programme="", holder=None, now=now)
        return view.start, view.end

    def view(self, *, programme: str, holder: str | None, now: datetime) -> View:
        return self._view(programme=programme, holder=holder, now=now)

    def _view(self, **fields: Any) -> View:
        try:
            return View.of(start=self.start, end=self.end, **fields)
        except RangeError as exc:
            raise BadQueryError("empty_range", str(exc)) from None


@dataclass(frozen=True)
class ViewQuery(RangeQuery):
    """The filters every entries route takes, as query parameters."""

    channel: Annotated[Channel | None, Query(description="source channel")] = None
    till: Annotated[Name | None, Query(description="till id")] = None
    store: Annotated[Name | None, Query(description="store id")] = None
    kind: Annotated[EventKind | None, Query(description="entry type: the event's kind")] = None
    side: Annotated[Side | None, Query(description="credit or debit")] = None
    category: Annotated[Category | None, Query(description="points category")] = None

    def view(self, *, programme: str, holder: str | None, now: datetime) -> View:
        return self._view(
            programme=programme, holder=holder, now=now, category=self.category,
            channel=self.channel, till=self.till, store=self.store, kind=self.kind,
            side=self.side,
        )  # fmt: skip


Filters = Annotated[ViewQuery, Depends()]
Range = Annotated[RangeQuery, Depends()]


def _add_routes(app: FastAPI) -> None:
    @app.get(
        "/v1/members/{member}/ledger",
        response_model=LedgerPageOut,
        responses=READ_ERRORS,
        tags=["ledger"],
    )
    async def ledger_page(
        member: Annotated[Name, Path()],
        ctx: Ctx,
        filters: Filters,
        programme: Programme = DEFAULT_PROGRAMME,
        after: Annotated[
            str | None,
            Query(
                alias="cursor",
                max_length=cursor.MAX_LENGTH,
                pattern=r"^[A-Za-z0-9_-]+$",
                description="`next_cursor` of the page before",
            ),
        ] = None,
    ) -> LedgerPageOut:
        """A member's entries, newest first, ten a page, with the view's closing balance."""
        view = filters.view(programme=programme, holder=member, now=ctx.clock())
        try:
            key = None if after is None else cursor.decode(after)
        except cursor.CursorError as exc:
            raise BadQueryError("bad_cursor", str(exc)) from None

        def read(tx: Tx) -> LedgerPageOut:
            got = entries.page(tx, view, key)
            return LedgerPageOut(
                member=member,
                programme=programme,
                entries=got.entries,
                next_cursor=got.next_cursor,
                closing=balances.closing(tx, view),
            )

        return await ctx.read(read)

    @app.get(
        "/v1/members/{member}/balance",
        response_model=BalanceOut,
        responses=READ_ERRORS,
        tags=["ledger"],
    )
    async def balance(
        member: Annotated[Name, Path()], ctx: Ctx, programme: Programme = DEFAULT_PROGRAMME
    ) -> BalanceOut:
        """The member's current balance per points category (open accounts)."""
        accounts = await ctx.read(
            lambda tx: balances.current(tx, programme=programme, holder=member)
        )
        total = sum(a.balance for a in accounts)
        return BalanceOut(member=member, programme=programme, total=total, accounts=accounts)

    @app.get(
        "/v1/programmes/{programme}/liability",
        response_model=Liability,
        responses=READ_ERRORS,
        tags=["finance"],
    )
    async def liability_route(
        programme: Annotated[Name, Path()],
        ctx: Ctx,
        points_per_unit: Annotated[int, Query(ge=1, le=1_000_000)] = 100,
        minor_per_unit: Annotated[int, Query(ge=1, le=1_000_000)] = 100,
        seed: Annotated[int, Query(ge=0, le=2**32 - 1)] = liability.DEFAULT_SEED,
    ) -> Liability:
        """What the programme owes: face value x (1 - breakage), per cohort, with the
        breakage forecast (Monte-Carlo, 1,000 runs, 95th percentile liability)."""
        face = FaceValue(points_per_unit=points_per_unit, minor_per_unit=minor_per_unit)
        return await ctx.read(
            lambda tx: liability.value(tx, programme=programme, face=face, seed=seed)
        )

    @app.get(
        "/v1/programmes/{programme}/campaign-report",
        response_model=Report,
        responses=READ_ERRORS,
        tags=["finance"],
    )
    async def report_route(programme: Annotated[Name, Path()], ctx: Ctx, span: Range) -> Report:
        """Points earned and burned per campaign and margin band over `[from, to)`."""
        start, end = span.range(ctx.clock())
        return await ctx.read(
            lambda tx: campaign_report.report(tx, programme=programme, start=start, end=end)
        )

    @app.get(
        "/v1/programmes/{programme}/entries.csv",
        response_class=StreamingResponse,
        responses={
            200: {"content": {"text/csv": {}}, "description": "RFC 4180, a header row first"},
            **READ_ERRORS,
        },
        tags=["finance"],
    )
    async def export_route(
        programme: Annotated[Name, Path()],
        ctx: Ctx,
        filters: Filters,
        member: Annotated[
            Name | None, Query(description="one member (default: every account)")
        ] = None,
    ) -> StreamingResponse:
        """The view's entries in booking order, as CSV, streamed."""
        view = filters.view(programme=programme, holder=member, now=ctx.clock())
        rows = entries.walk(ctx.store, view)

        async def body() -> AsyncIterator[str]:
            loop = asyncio.get_running_loop()
            lines = entries_csv.lines(rows)
            while True:
                chunk = await loop.run_in_executor(ctx.db, _next_chunk, lines)
                if not chunk:
                    return
                yield chunk

        return StreamingResponse(body(), media_type="text/csv; charset=utf-8")


def _next_chunk(lines: Any, size: int = 500) -> str:
    out = []
    for line in lines:
        out.append(line)
        if len(out) == size:
            break
    return "".join(out)


def _error(status: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": error, "detail": detail})


def _refused(request: Request, error: str, detail: str) -> JSONResponse:
    # The path names the route and member; the query's values stay out of the log.
    log.info("refused %s %s: %s", request.method, request.url.path, error)
    return _error(422, error, detail)


def create_app(
    *, store: EventStore, operators: Operators, clock: Callable[[], datetime]
) -> FastAPI:
    """The app over ``store``; ``clock`` is the seam tests use for "now" (default ranges)."""
    app = FastAPI(
        title="Storeside HQ ledger API",
        version="1",
        summary="Members' points entries and balances; the programme's liability.",
    )
    app.state.ctx = Context(
        store=store,
        operators=operators,
        clock=clock,
        db=ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-db"),
    )
    _add_routes(app)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
        return _refused(request, "invalid_request", "; ".join(problems))

    @app.exception_handler(BadQueryError)
    async def _bad_query(request: Request, exc: BadQueryError) -> JSONResponse:
        return _refused(request, exc.error, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        names = {404: "not_found", 405: "method_not_allowed"}
        return _error(exc.status_code, names.get(exc.status_code, "http_error"), str(exc.detail))

    @app.exception_handler(UnauthorizedError)
    async def _unauthorized(_: Request, __: UnauthorizedError) -> JSONResponse:
        return JSONResponse(
            status_code=401,
            content={"error": "unauthorized", "detail": "an operator bearer token is required"},
            headers={"WWW-Authenticate": "Bearer"},
        )

    @app.exception_handler(StoreUnavailableError)
    async def _unavailable(_: Request, exc: StoreUnavailableError) -> JSONResponse:
        log.warning("ledger store unavailable: %s", exc)
        return _error(503, "store_unavailable", "the ledger's database cannot be reached now")

    return app
