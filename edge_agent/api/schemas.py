"""Request and response bodies of the POS API, and their mapping to the domain.

Bodies are closed (unknown fields are a 422 naming the field), bounded, and strict: JSON types
are not coerced (``"quantity": true`` or ``"2"`` is a 422, not 1 or 2), so a buggy or hostile till
cannot make the agent allocate without limit or act on a value it did not mean. The field
definitions are shared with the CLI (``edge_agent.fields``). Money is integer minor units.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from edge_agent.domain.basket import AppliedPromotion, Basket, BasketLine
from edge_agent.domain.decision import Accepted, Decision, Reason, Refused
from edge_agent.fields import (
    Category,
    Id,
    MarginBand,
    MinorUnits,
    PositiveMinorUnits,
    PromotionName,
    Quantity,
    RawCode,
    StackingClass,
)
from edge_agent.runtime.supervisor import Kind, State, TaskStatus


class Body(BaseModel):
    # strict: a JSON true is not the int 1, a JSON "2" is not the int 2.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class LineIn(Body):
    sku: Id
    category: Category
    quantity: Quantity
    unit_price: MinorUnits
    margin_band: MarginBand = "B"


class AppliedIn(Body):
    name: PromotionName
    stacking_class: StackingClass
    discount: MinorUnits = 0


class BasketIn(Body):
    lines: Annotated[list[LineIn], Field(max_length=500)] = []
    applied: Annotated[
        list[AppliedIn],
        Field(max_length=20, description="Promotions the POS already applied (store sale...)."),
    ] = []

    def to_domain(self) -> tuple[Basket, tuple[AppliedPromotion, ...]]:
        basket = Basket(
            lines=tuple(
                BasketLine(
                    sku=line.sku,
                    category=line.category,
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                    margin_band=line.margin_band,
                )
                for line in self.lines
            )
        )
        applied = tuple(
            AppliedPromotion(name=a.name, stacking_class=a.stacking_class, discount=a.discount)
            for a in self.applied
        )
        return basket, applied


class ValidateIn(Body):
    codes: Annotated[
        list[RawCode],
        Field(min_length=1, max_length=20, description="Every code on the basket, scan order."),
    ]
    cashier_id: Id
    member_id: Id | None = None
    transaction_id: Id | None = None
    basket: BasketIn = BasketIn()
    audience: Literal["cashier", "customer"] = "cashier"


class TransactionIn(ValidateIn):
    """Reserve (at scan) or commit (at payment) every code on the basket for one transaction.

    A commit without an earlier reserve validates and commits in one step. Retrying the same
    transaction and code returns the stored answer and never redeems twice.
    """

    transaction_id: Id


class VoidIn(Body):
    transaction_id: Id
    cashier_id: Id
    code: Annotated[
        RawCode | None, Field(description="The code to release; omit to release them all.")
    ] = None


class ReverseIn(Body):
    """A return, often taken at another till (the service desk): it names the sale by that
    sale's till and transaction id, and is keyed by this till's own ``return_id``."""

    transaction_id: Annotated[Id, Field(description="The sale the code was redeemed on.")]
    sale_till_id: Annotated[
        Id | None, Field(description="The till that made that sale; omit when it is this till.")
    ] = None
    code: RawCode
    cashier_id: Id
    return_id: Annotated[
        Id,
        Field(
            description="This till's id for the return; makes retries safe. Reused with "
            "another sale or amount it is refused (409)."
        ),
    ]
    amount: Annotated[
        PositiveMinorUnits | None,
        Field(description="Discount to give back (minor units); omit for a full reversal."),
    ] = None


class LinkIn(Body):
    code: RawCode
    member_id: Id
    cashier_id: Id


class LineDiscountOut(BaseModel):
    sku: str
    amount: int


class DecisionOut(BaseModel):
    ok: bool
    code: str
    reason: Annotated[Reason | None, Field(description="Stable reason code when refused.")] = None
    cashier_message: str
    customer_message: str
    discount: int = 0
    lines: list[LineDiscountOut] = []
    campaign_id: str | None = None
    stacks_with: list[str] = []
    does_not_stack_with: list[str] = []
    retry_after: datetime | None = None
    details: dict[str, object] = {}

    @classmethod
    def of(cls, decision: Decision) -> DecisionOut:
        if isinstance(decision, Accepted):
            return cls(
                ok=True,
                code=decision.code,
                cashier_message=decision.cashier_message,
                customer_message=decision.customer_message,
                discount=decision.discount,
                lines=[LineDiscountOut(sku=x.sku, amount=x.amount) for x in decision.lines],
                campaign_id=decision.campaign_id,
                stacks_with=list(decision.stacks_with),
                does_not_stack_with=list(decision.does_not_stack_with),
                details=dict(decision.details),
            )
        assert isinstance(decision, Refused)
        return cls(
            ok=False,
            code=decision.code,
            reason=decision.reason,
            cashier_message=decision.cashier_message,
            customer_message=decision.customer_message,
            retry_after=decision.retry_after,
            details=dict(decision.details),
        )


class ValidateOut(BaseModel):
    decisions: list[DecisionOut]
    total_discount: int


class ErrorOut(BaseModel):
    error: str
    detail: str


Replayed = Annotated[
    bool, Field(description="The stored answer to an identical earlier request (a retry).")
]


class ReserveResultOut(BaseModel):
    decision: DecisionOut
    hold_until: Annotated[datetime | None, Field(description="Set when now held.")] = None
    replayed: Replayed = False


class RedemptionOut(BaseModel):
    code: str
    transaction_id: str
    campaign_id: str
    member_id: str | None
    amount: int
    redeemed_at: datetime
    store_id: str
    till_id: str
    cashier_id: str
    event_id: str
    seq: int


class CommitResultOut(BaseModel):
    decision: DecisionOut
    redemption: Annotated[
        RedemptionOut | None, Field(description="Set when the code was redeemed.")
    ] = None
    replayed: Replayed = False


class ReserveOut(BaseModel):
    results: list[ReserveResultOut]


class CommitOut(BaseModel):
    results: list[CommitResultOut]
    total_discount: int


class VoidResultOut(BaseModel):
    code: str
    transaction_id: str
    released: bool
    voided_at: datetime | None = None
    event_id: str | None = None
    replayed: Replayed = False


class VoidOut(BaseModel):
    results: list[VoidResultOut]


class ReverseOut(BaseModel):
    code: str
    transaction_id: str
    sale_till_id: str
    return_id: str
    amount: int
    remaining: int
    fully_reversed: bool
    reversed_at: datetime
    event_id: str
    replayed: Replayed = False


class LinkOut(BaseModel):
    code: str
    member_id: str
    mode: str
    linked_at: datetime
    created: bool


class HoldOut(BaseModel):
    till_id: str
    store_id: str
    transaction_id: str
    until: datetime


class ReversalOut(BaseModel):
    return_id: str
    amount: int
    reversed_at: datetime
    till_id: str


class RedemptionViewOut(BaseModel):
    transaction_id: str
    member_id: str | None
    amount: int
    reversed_amount: int
    fully_reversed: bool
    redeemed_at: datetime
    store_id: str
    till_id: str
    cashier_id: str
    reversals: list[ReversalOut]


class HistoryOut(BaseModel):
    seq: int
    event_id: str
    type: str
    occurred_at: datetime
    transaction_id: str | None
    till_id: str
    amount: int


class CodeStatusOut(BaseModel):
    code: str
    campaign_id: str
    member_id: str | None
    linked_member_id: str | None
    status: str
    channel: str
    variant: str
    issued_at: datetime | None
    expires_at: datetime | None
    uses: int
    holds: list[HoldOut]
    redemptions: list[RedemptionViewOut]
    history: list[HistoryOut]


class TaskOut(BaseModel):
    """One supervised task: a device task that fails is ``restarting`` until ``retry_at``."""

    kind: Kind
    state: State
    restarts: int
    last_error: str | None
    retry_at: datetime | None

    @classmethod
    def of(cls, status: TaskStatus) -> TaskOut:
        return cls(
            kind=status.kind,
            state=status.state,
            restarts=status.restarts,
            last_error=status.last_error,
            retry_at=status.retry_at,
        )


class HealthOut(BaseModel):
    status: str
    store_id: str
    cache_synced_at: datetime | None
    tasks: Annotated[
        dict[str, TaskOut],
        Field(description="The agent's supervised tasks by name (pos_api, print_worker, ...)."),
    ] = {}


class LinkedCodesOut(BaseModel):
    member_id: str
    codes: Annotated[
        list[str], Field(description="Codes linked to the member, unused and valid: apply them.")
    ]
