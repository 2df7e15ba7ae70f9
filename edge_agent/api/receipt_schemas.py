"""Bodies of the receipt coupon routes (issue at checkout, print status, reprint).

The answers are projections, for the till, of results defined once elsewhere: ``CouponOut`` of
``IssuedCoupon``, ``ReceiptCouponOut`` of ``IssueOutcome`` (``edge_agent.issuing.outcome``),
``PrintOut`` of ``TransactionPrintStatus``. Each names the fields the POS gets (the member,
segment and holdout draw stay on the box) and takes their values by name, so each field here is
its source's field under the same name and type (``tests/api/test_one_definition.py``).
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Self

from pydantic import BaseModel, Field

from edge_agent.api.schemas import BasketIn, Body
from edge_agent.domain.offer_policy import NoCouponReason
from edge_agent.fields import Id
from edge_agent.issuing.outcome import IssueOutcome
from edge_agent.printing.print_queue import TransactionPrintStatus

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


class CheckoutIn(Body):
    """The sale that just completed: the agent decides whether it earns a next-visit coupon."""

    transaction_id: Id
    cashier_id: Id
    member_id: Id | None = None
    basket: BasketIn = BasketIn()


def _picked(model: type[BaseModel], source: DataclassInstance) -> dict[str, Any]:
    """The fields of ``model`` that ``source`` has, by name."""
    wanted = model.model_fields
    return {f.name: getattr(source, f.name) for f in fields(source) if f.name in wanted}


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
    def of(cls, status: TransactionPrintStatus) -> Self:
        return cls.model_validate(_picked(cls, status))


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
    def of(cls, outcome: IssueOutcome, status: TransactionPrintStatus | None) -> Self:
        c = outcome.coupon
        return cls.model_validate(
            {
                **_picked(cls, outcome),
                "issued": outcome.issued,
                "coupon": None if c is None else CouponOut.model_validate(_picked(CouponOut, c)),
                "print": None if status is None else PrintOut.of(status),
            }
        )
