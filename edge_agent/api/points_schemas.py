"""Request bodies of the till's points routes (``points_routes.py``); the answers are the
points service's own (``edge_agent/points/outcomes.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from edge_agent.api.schemas import BasketIn, Body
from edge_agent.domain.points_rules.returns import ReturnedLine
from edge_agent.fields import MAX_LINES, Id, LineIndex, Points, Quantity
from edge_agent.points.outcomes import Return, Sale


class QuoteIn(Body):
    """Before payment: the member's balance, what the basket earns, what may be burned."""

    member_id: Id
    cashier_id: Id
    basket: BasketIn = BasketIn()
    burn_points: Annotated[
        Points | None,
        Field(description="Points the member wants to burn; omit to ask how many may be."),
    ] = None

    def to_sale(self, till_id: str, now: datetime, transaction_id: str = "") -> Sale:
        basket, _ = self.basket.to_domain()
        return Sale(
            till_id=till_id,
            transaction_id=transaction_id,
            cashier_id=self.cashier_id,
            member_id=self.member_id,
            basket=basket,
            burn_points=self.burn_points,
            now=now,
        )


class PointsCheckoutIn(QuoteIn):
    """At payment: earn on the sale and burn ``burn_points`` (exactly, or the sale's points
    are refused with the reason), in one durable step. Retrying the same sale returns the
    stored answer; another request under the same transaction id is refused (409)."""

    transaction_id: Id
    burn_points: Annotated[
        Points | None, Field(description="Points to burn as tender; omit or 0 for none.")
    ] = None


class PointsVoidIn(Body):
    """Cancel a sale's points at the till that rang it up (what returns left of them)."""

    transaction_id: Id
    cashier_id: Id
    sale_till_id: Annotated[
        Id | None,
        Field(description="The sale's till; only this till's own sales may be voided (403)."),
    ] = None


class ReturnLineIn(Body):
    line: LineIndex
    quantity: Quantity


class PointsReturnIn(Body):
    """A return, perhaps at another till (the service desk): it names the sale by its till and
    transaction id and is keyed by this till's own ``return_id``."""

    return_id: Annotated[
        Id,
        Field(description="This till's id for the return; reused with other lines: 409."),
    ]
    transaction_id: Annotated[Id, Field(description="The sale the points were booked on.")]
    sale_till_id: Annotated[
        Id | None, Field(description="The till that made that sale; omit when it is this till.")
    ] = None
    cashier_id: Id
    lines: Annotated[list[ReturnLineIn], Field(min_length=1, max_length=MAX_LINES)]

    def to_return(self, till_id: str, now: datetime) -> Return:
        return Return(
            till_id=till_id,
            return_id=self.return_id,
            sale_till_id=self.sale_till_id or till_id,
            transaction_id=self.transaction_id,
            cashier_id=self.cashier_id,
            lines=tuple(ReturnedLine(index=x.line, quantity=x.quantity) for x in self.lines),
            now=now,
        )
