"""The POS API: FastAPI routes over the redemption service.

Every route except ``/v1/health`` needs ``Authorization: Bearer <till token>``; the till id comes
from the token, never from the body, so one till cannot act as another. Bodies are validated
before anything is touched (422 naming the field); requests that cannot apply map to 404/409;
refusals of a code are 200 answers with ``ok: false`` and a stable ``reason``. Path parameters
are held to the same field definitions as bodies, and a body over ``max_body_bytes`` is a 413
while it is being read (``body_limit``). The OpenAPI document, served at ``/openapi.json``,
declares the bearer scheme and every error each route can answer; it is browsable at ``/docs``
(and ``/redoc``) from assets served by the box itself, since a store may have no internet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from edge_agent import errors
from edge_agent.api import member_routes, points_routes, receipt_routes
from edge_agent.api.auth import TillAuthenticator
from edge_agent.api.body_limit import BodyLimit
from edge_agent.api.deps import ApiContext, Ctx, Till, UnauthorizedError
from edge_agent.api.errors_doc import errors_doc
from edge_agent.api.member_routes import OtherTillError
from edge_agent.api.receipt_routes import NoCouponError
from edge_agent.api.schemas import (
    CodeStatusOut,
    CommitOut,
    HealthOut,
    LinkedCodesOut,
    LinkIn,
    ReserveOut,
    ReverseIn,
    TaskOut,
    TransactionIn,
    ValidateIn,
    ValidateOut,
    VoidIn,
    VoidOut,
)
from edge_agent.api.till_route import TillBodyRoute
from edge_agent.domain.decision import (
    Accepted,
    Audience,
    Decision,
    Refused,
    ValidationRequest,
)
from edge_agent.fields import Id, RawCode
from edge_agent.points.errors import PointsDisabledError, SaleNotFoundError, UnknownMemberError
from edge_agent.proximity.till_members import TillMembers
from edge_agent.redemption.outcomes import DecisionOut, LinkOutcome, ReverseOutcome
from edge_agent.runtime.db_thread import DbThread
from edge_agent.runtime.supervisor import TaskStatus
from edge_agent.services import ReceiptsUnavailableError

log = logging.getLogger(__name__)
_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])
# A till's largest honest body (20 codes, 500 lines, 20 promotions) is about 60 KiB.
MAX_BODY_BYTES = 64 * 1024

_STATUS_BY_ERROR: tuple[tuple[type[errors.StoreError], int, str], ...] = (
    (errors.MissingTransactionError, 422, "missing_transaction"),
    (errors.UnknownCodeError, 404, "unknown_code"),
    (errors.RedemptionNotFoundError, 404, "redemption_not_found"),
    (errors.ReversalTooLargeError, 409, "reversal_too_large"),
    (errors.IdempotencyConflictError, 409, "idempotency_conflict"),
    (errors.LinkConflictError, 409, "link_conflict"),
    (NoCouponError, 404, "no_receipt_coupon"),
    (OtherTillError, 403, "other_till"),
    (PointsDisabledError, 503, "points_disabled"),
    (UnknownMemberError, 404, "unknown_member"),
    (SaleNotFoundError, 404, "points_sale_not_found"),
    (errors.RequestError, 400, "bad_request"),
)
# What each kind of route can answer besides 200 (see errors_doc for each status's causes).
_BODY_ERRORS = (400, 401, 413, 422, 503)
_READ_ERRORS = (401, 422, 503)


def _error(status: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": error, "detail": detail})


def _log_refusals(route: str, till_id: str, decisions: Sequence[Decision]) -> None:
    # Codes are bearer credentials for a discount: log only enough of one to find it again.
    for d in decisions:
        if isinstance(d, Refused):
            masked = f"{d.code[:4]}...{d.code[-2:]}"
            log.info("%s till=%s code=%s refused %s", route, till_id, masked, d.reason.value)


router = APIRouter()


def _till_post(path: str, **kwargs: Any) -> Callable[[_Endpoint], _Endpoint]:
    """``router.post`` for a till's body route, served by the lean ``TillBodyRoute``."""

    def register(endpoint: _Endpoint) -> _Endpoint:
        router.add_api_route(
            path, endpoint, methods=["POST"], route_class_override=TillBodyRoute, **kwargs
        )
        return endpoint

    return register


def _request_of(ctx: ApiContext, body: ValidateIn, till_id: str) -> ValidationRequest:
    basket, applied = body.basket.to_domain()
    return ValidationRequest(
        codes=tuple(body.codes),
        store_id=ctx.store_id,
        till_id=till_id,
        cashier_id=body.cashier_id,
        basket=basket,
        now=ctx.clock(),
        member_id=body.member_id,
        transaction_id=body.transaction_id,
        applied=applied,
        audience=Audience(body.audience),
    )


@router.get("/v1/health", response_model=HealthOut, responses=errors_doc(503), tags=["ops"])
async def health(ctx: Ctx) -> HealthOut:
    synced = await ctx.db.run(lambda s: s.cache.synced_at())
    tasks = {name: TaskOut.of(status) for name, status in ctx.task_states().items()}
    return HealthOut(
        status="ok",
        store_id=ctx.store_id,
        cache_synced_at=synced,
        tasks=tasks,
        presence=ctx.presence_state(),
    )


@_till_post(
    "/v1/validate", response_model=ValidateOut, responses=errors_doc(*_BODY_ERRORS), tags=["codes"]
)
async def validate(body: ValidateIn, till_id: Till, ctx: Ctx) -> ValidateOut:
    """Check codes against the basket without changing anything."""
    request = _request_of(ctx, body, till_id)
    decisions = await ctx.db.run(lambda s: s.redemption.validate(request))
    _log_refusals("validate", till_id, decisions)
    return ValidateOut(
        decisions=[DecisionOut.of(d) for d in decisions],
        total_discount=sum(d.discount for d in decisions if isinstance(d, Accepted)),
    )


@router.post(
    "/v1/reserve",
    response_model=ReserveOut,
    responses=errors_doc(*_BODY_ERRORS, 409),
    tags=["codes"],
)
async def reserve(body: TransactionIn, till_id: Till, ctx: Ctx) -> ReserveOut:
    """At scan: validate and hold each accepted code for this transaction."""
    request = _request_of(ctx, body, till_id)
    outcomes = await ctx.db.run(lambda s: s.redemption.reserve(request), group=True)
    _log_refusals("reserve", till_id, [o.decision for o in outcomes])
    return ReserveOut(results=list(outcomes))


@router.post(
    "/v1/commit", response_model=CommitOut, responses=errors_doc(*_BODY_ERRORS, 409), tags=["codes"]
)
async def commit(body: TransactionIn, till_id: Till, ctx: Ctx) -> CommitOut:
    """At payment: redeem each accepted code, durably, exactly once."""
    request = _request_of(ctx, body, till_id)
    outcomes = await ctx.db.run(lambda s: s.redemption.commit(request), group=True)
    _log_refusals("commit", till_id, [o.decision for o in outcomes])
    total = sum(o.redemption.amount for o in outcomes if o.redemption is not None)
    return CommitOut(results=list(outcomes), total_discount=total)


@router.post(
    "/v1/void", response_model=VoidOut, responses=errors_doc(*_BODY_ERRORS, 404), tags=["codes"]
)
async def void(body: VoidIn, till_id: Till, ctx: Ctx) -> VoidOut:
    """Cancel: release this transaction's hold on one code, or on all of them."""
    now = ctx.clock()
    outcomes = await ctx.db.run(
        lambda s: s.redemption.void(
            transaction_id=body.transaction_id,
            code=body.code,
            store_id=ctx.store_id,
            till_id=till_id,
            cashier_id=body.cashier_id,
            now=now,
        ),
        group=True,
    )
    return VoidOut(results=list(outcomes))


@router.post(
    "/v1/reverse",
    response_model=ReverseOutcome,
    responses=errors_doc(*_BODY_ERRORS, 404, 409),
    tags=["codes"],
)
async def reverse(body: ReverseIn, till_id: Till, ctx: Ctx) -> ReverseOutcome:
    """A return: give back all or part of a redeemed discount. Idempotent per return id."""
    now = ctx.clock()
    outcome = await ctx.db.run(
        lambda s: s.redemption.reverse(
            code=body.code,
            transaction_id=body.transaction_id,
            sale_till_id=body.sale_till_id,
            return_id=body.return_id,
            amount=body.amount,
            store_id=ctx.store_id,
            till_id=till_id,
            cashier_id=body.cashier_id,
            now=now,
        ),
        group=True,
    )
    return outcome


@router.post(
    "/v1/links",
    response_model=LinkOutcome,
    responses=errors_doc(*_BODY_ERRORS, 404, 409),
    tags=["codes"],
)
async def link(body: LinkIn, till_id: Till, ctx: Ctx) -> LinkOutcome:
    """Link a physical code to a member so it applies at their next checkout."""
    now = ctx.clock()
    outcome = await ctx.db.run(
        lambda s: s.redemption.link(
            code=body.code,
            member_id=body.member_id,
            store_id=ctx.store_id,
            till_id=till_id,
            cashier_id=body.cashier_id,
            now=now,
        ),
        group=True,
    )
    return outcome


@router.get(
    "/v1/members/{member_id}/linked-codes",
    response_model=LinkedCodesOut,
    responses=errors_doc(*_READ_ERRORS),
    tags=["codes"],
)
async def linked_codes(member_id: Annotated[Id, Path()], _till: Till, ctx: Ctx) -> LinkedCodesOut:
    """At checkout, once the member is identified: codes linked to them to apply."""
    now = ctx.clock()
    codes = await ctx.db.run(lambda s: s.cache.linked_codes(member_id, now))
    return LinkedCodesOut(member_id=member_id, codes=list(codes))


@router.get(
    "/v1/codes/{code}",
    response_model=CodeStatusOut,
    responses=errors_doc(*_READ_ERRORS, 404),
    tags=["codes"],
)
async def code_status(code: Annotated[RawCode, Path()], _till: Till, ctx: Ctx) -> CodeStatusOut:
    """A code's record, live holds, redemptions and event history."""
    now = ctx.clock()
    view = await ctx.db.run(lambda s: s.redemption.status(code, now))
    return CodeStatusOut.of(view)


def create_app(
    *,
    db: DbThread,
    auth: TillAuthenticator,
    store_id: str,
    clock: Callable[[], datetime],
    wake_printer: Callable[[], None] | None = None,
    task_states: Callable[[], Mapping[str, TaskStatus]] | None = None,
    print_confirm_wait_s: float = 1.5,
    max_body_bytes: int = MAX_BODY_BYTES,
    till_members: TillMembers | None = None,
    presence_state: Callable[[], dict[str, object] | None] | None = None,
) -> FastAPI:
    """Build the app. ``clock`` is the seam tests and the demo use to move time.

    The app holds HTTP concerns only: background work (checkpoints, housekeeping, the print
    worker) runs beside it under the supervisor (``edge_agent.runtime``), which ``task_states``
    reports on in ``/v1/health``.
    """
    # FastAPIOffline: /docs and /redoc load Swagger UI and ReDoc from files in the package, not
    # from a CDN the store box may not reach.
    app = FastAPIOffline(
        title="Storeside POS API",
        version="1",
        summary="Validate, reserve, commit, void and reverse coupon codes at the till.",
    )
    app.state.ctx = ApiContext(
        db=db,
        auth=auth,
        store_id=store_id,
        clock=clock,
        wake_printer=wake_printer if wake_printer is not None else (lambda: None),
        task_states=task_states if task_states is not None else dict,
        print_confirm_wait_s=print_confirm_wait_s,
        till_members=till_members,
        presence_state=presence_state if presence_state is not None else (lambda: None),
    )
    # The routes join the app's own router instead of being included: an included router
    # (FastAPI 0.165) is matched as a branch of its own on every request, which cost the
    # till's validate a few percent of its time for nothing (no prefix, no shared deps).
    app.router.routes.extend(
        [
            *router.routes,
            *receipt_routes.router.routes,
            *member_routes.router.routes,
            *points_routes.router.routes,
        ]
    )
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in err['loc'] if p != 'body') or 'body'}: {err['msg']}"
            for err in exc.errors()
        ]
        return _error(422, "invalid_request", "; ".join(problems))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Framework-level refusals (undecodable body, unknown route, wrong method) get the
        # same {error, detail} shape as ours, so a POS has one error format to handle.
        names = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}
        return _error(exc.status_code, names.get(exc.status_code, "http_error"), str(exc.detail))

    @app.exception_handler(UnauthorizedError)
    async def _unauthorized(_: Request, __: UnauthorizedError) -> JSONResponse:
        return JSONResponse(
            status_code=401,
            content={"error": "unauthorized", "detail": "a valid till bearer token is required"},
            headers={"WWW-Authenticate": "Bearer"},
        )

    @app.exception_handler(ReceiptsUnavailableError)
    async def _no_receipts(_: Request, exc: ReceiptsUnavailableError) -> JSONResponse:
        return _error(503, "receipts_unavailable", str(exc))

    @app.exception_handler(errors.StoreError)
    async def _store_error(_: Request, exc: errors.StoreError) -> JSONResponse:
        for kind, status, name in _STATUS_BY_ERROR:
            if isinstance(exc, kind):
                return _error(status, name, str(exc))
        log.exception("store failure", exc_info=exc)
        return _error(503, "store_unavailable", str(exc))

    return app
