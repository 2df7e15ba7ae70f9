"""Bodies of the receipt coupon routes (issue at checkout, print status, reprint)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from edge_agent.api.schemas import BasketIn, Body
from edge_agent.domain.offer_policy import NoCouponReason
from edge_agent.fields import Id
from edge_agent.issuing.outcome import IssueOutcome
from edge_agent.printing.print_queue import TransactionPrintStatus


class CheckoutIn(Body):
    """The sale that just completed: the agent decides whether it earns a next-visit coupon."""

    transaction_id: Id
    cashier_id: Id
    member_id: Id | None = None
    basket: BasketIn = BasketIn()


class CouponOut(BaseModel):
    code: str
    display: Annotated[str, Field(description="The code as printed, for typing at a till.")]
    qr_payload: Annotated[str, Field(description="The signed token the QR carries.")]
    campaign_id: str
    offer_text: str
    discount: str
    stacking_terms: str
    expires_at: datetime


class PrintOut(BaseModel):
    status: Annotated[
        str,
        Field(
            description="printed | print_pending | print_abandoned. While not printed, show the "
            "code and QR on screen."
        ),
    ]
    attempts: int
    last_error: str | None
    ever_printed: bool

    @classmethod
    def of(cls, status: TransactionPrintStatus) -> PrintOut:
        return cls(
            status=status.status,
            attempts=status.attempts,
            last_error=status.last_error,
            ever_printed=status.ever_printed,
        )


class ReceiptCouponOut(BaseModel):
    transaction_id: str
    issued: bool
    reason: Annotated[NoCouponReason | None, Field(description="Why no coupon (stable code).")] = (
        None
    )
    message: str
    retry_after: datetime | None = None
    coupon: CouponOut | None = None
    print: PrintOut | None = None
    replayed: Annotated[bool, Field(description="A retried checkout: the stored answer.")] = False

    @classmethod
    def of(cls, outcome: IssueOutcome, status: TransactionPrintStatus | None) -> ReceiptCouponOut:
        c = outcome.coupon
        return cls(
            transaction_id=outcome.transaction_id,
            issued=outcome.issued,
            reason=outcome.reason,
            message=outcome.message,
            retry_after=outcome.retry_after,
            coupon=None
            if c is None
            else CouponOut(
                code=c.code,
                display=c.display,
                qr_payload=c.qr_payload,
                campaign_id=c.campaign_id,
                offer_text=c.offer_text,
                discount=c.discount,
                stacking_terms=c.stacking_terms,
                expires_at=c.expires_at,
            ),
            print=None if status is None else PrintOut.of(status),
            replayed=outcome.replayed,
        )
