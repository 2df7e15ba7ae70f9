"""The till's points routes: quote, checkout, void, return, and a member's balance.

``POST /v1/points/quote`` shows the cashier the member's balance, what the basket earns and
what may be burned on it and why not more; ``/v1/points/checkout`` books the sale's earn and
burn durably, once; ``/v1/points/void`` cancels a sale's points at the till that rang it up
(another till's sale is ``403 other_till``); ``/v1/points/returns`` reverses exactly the
returned units' share, at any till of the store. ``GET /v1/members/{member_id}/points`` is the
balance as this box knows it. With points off (config ``points.enabled``) every route answers
``503 points_disabled``. Refusals (unknown member, a burn beyond what may be burned, a return
of more than was sold) are 200 answers with ``ok: false``, a stable ``reason`` and the numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path

from edge_agent.api.deps import Ctx, Till
from edge_agent.api.errors_doc import errors_doc
from edge_agent.api.member_routes import OtherTillError
from edge_agent.api.points_schemas import PointsCheckoutIn, PointsReturnIn, PointsVoidIn, QuoteIn
from edge_agent.api.till_route import TillBodyRoute
from edge_agent.fields import Id
from edge_agent.points.outcomes import (
    BalanceView,
    PointsCheckoutOutcome,
    PointsQuote,
    PointsReturnOutcome,
    PointsVoidOutcome,
)

router = APIRouter(tags=["points"])
_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])
_BODY = (400, 401, 413, 422, 503)


def _post(path: str, response_model: object, *statuses: int) -> Callable[[_Endpoint], _Endpoint]:
    """A till's body route, served by the lean ``TillBodyRoute``."""

    def register(endpoint: _Endpoint) -> _Endpoint:
        router.add_api_route(
            path,
            endpoint,
            methods=["POST"],
            response_model=response_model,
            responses=errors_doc(*_BODY, *statuses),
            route_class_override=TillBodyRoute,
        )
        return endpoint

    return register


@_post("/v1/points/quote", PointsQuote)
async def quote(body: QuoteIn, till_id: Till, ctx: Ctx) -> PointsQuote:
    """The member's balance, the basket's earn, and what may be burned on it (and why not more)."""
    sale = body.to_sale(till_id, ctx.clock())
    return await ctx.db.run(lambda s: s.points.quote(sale))


@_post("/v1/points/checkout", PointsCheckoutOutcome, 409)
async def checkout(body: PointsCheckoutIn, till_id: Till, ctx: Ctx) -> PointsCheckoutOutcome:
    """At payment: earn, and burn as tender, in one durable step; idempotent per sale."""
    sale = body.to_sale(till_id, ctx.clock(), body.transaction_id)
    return await ctx.db.run(lambda s: s.points.checkout(sale), group=True)


@_post("/v1/points/void", PointsVoidOutcome, 403, 404)
async def void(body: PointsVoidIn, till_id: Till, ctx: Ctx) -> PointsVoidOutcome:
    """Cancel a sale's points (what its returns left); idempotent per sale."""
    if body.sale_till_id is not None and body.sale_till_id != till_id:
        raise OtherTillError(
            f"this token is till {till_id!r}'s; a sale of till {body.sale_till_id!r} is voided "
            "there (a return here goes through /v1/points/returns)"
        )
    now = ctx.clock()
    return await ctx.db.run(
        lambda s: s.points.void(
            till_id=till_id,
            transaction_id=body.transaction_id,
            cashier_id=body.cashier_id,
            now=now,
        ),
        group=True,
    )


@_post("/v1/points/returns", PointsReturnOutcome, 404, 409)
async def returns(body: PointsReturnIn, till_id: Till, ctx: Ctx) -> PointsReturnOutcome:
    """A return: exactly the returned units' share of the sale's earn and burn, reversed."""
    r = body.to_return(till_id, ctx.clock())
    return await ctx.db.run(lambda s: s.points.return_lines(r), group=True)


@router.get(
    "/v1/members/{member_id}/points",
    response_model=BalanceView,
    responses=errors_doc(401, 404, 422, 503),
)
async def member_points(member_id: Annotated[Id, Path()], _till: Till, ctx: Ctx) -> BalanceView:
    """The member's points as this box knows them: HQ's balance, this box's unsynced postings,
    the offline allowance and what a burn may take."""
    return await ctx.db.run(lambda s: s.points.balance(member_id))
