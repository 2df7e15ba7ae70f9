"""Request and response bodies of the POS API, and their mapping to the domain.

Bodies are closed (unknown fields are a 422 naming the field), bounded, and strict: JSON types
are not coerced (``"quantity": true`` or ``"2"`` is a 422, not 1 or 2), so a buggy or hostile till
cannot make the agent allocate without limit or act on a value it did not mean. The field
definitions are shared with the CLI (``edge_agent.fields``). Money is integer minor units.

Responses are not copied here: the routes answer with the redemption service's own results
(``edge_agent.redemption.outcomes``, where each is defined once), and this module only adds the
envelopes (``results``, totals) and the views that flatten a result for the till
(``CodeStatusOut``, ``TaskOut``), which take their source's fields by name. Request bodies map
to the domain's dataclasses by field name too (``to_domain``): the bounds and strictness are the
API's, the fields the dataclass's (``tests/api/test_one_definition.py`` holds them equal).
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from edge_agent.domain.basket import AppliedPromotion, Basket, BasketLine
from edge_agent.domain.code_record import Reservation
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
from edge_agent.redemption.outcomes import (
    CodeStatusView,
    CommitOutcome,
    DecisionOut,
    HistoryEntry,
    RedemptionView,
    ReserveOutcome,
    VoidOutcome,
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
    unit_cost: MinorUnits | None = None  # points rules: the exact margin (points_rules/margin)


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
        # By field name: LineIn and AppliedIn have exactly their dataclass's fields. vars():
        # a closed model's __dict__ is its fields, and this is the till's hot path (dict() of a
        # model is five times slower).
        basket = Basket(lines=tuple(BasketLine(**vars(line)) for line in self.lines))
        return basket, tuple(AppliedPromotion(**vars(a)) for a in self.applied)


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


class ValidateOut(BaseModel):
    decisions: list[DecisionOut]
    total_discount: int


class ErrorOut(BaseModel):
    error: str
    detail: str


class ReserveOut(BaseModel):
    results: list[ReserveOutcome]


class CommitOut(BaseModel):
    results: list[CommitOutcome]
    total_discount: int


class VoidOut(BaseModel):
    results: list[VoidOutcome]


class CodeStatusOut(BaseModel):
    """A code's status: its record's fields, flattened, then its uses, holds and history."""

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
    holds: list[Reservation]
    redemptions: list[RedemptionView]
    history: list[HistoryEntry]

    @classmethod
    def of(cls, view: CodeStatusView) -> CodeStatusOut:
        """The POS API's ``GET /v1/codes/{code}`` and ``edge-agent status --json`` alike."""
        record = {f.name: getattr(view.record, f.name) for f in fields(view.record)}
        rest = {f.name: getattr(view, f.name) for f in fields(view) if f.name != "record"}
        return cls.model_validate({**record, **rest})


class TaskOut(BaseModel):
    """One supervised task: a device task that fails is ``restarting`` until ``retry_at``."""

    kind: Kind
    state: State
    restarts: int
    last_error: str | None
    retry_at: datetime | None

    @classmethod
    def of(cls, status: TaskStatus) -> TaskOut:
        # Every field of the supervisor's TaskStatus, required here: a health answer always
        # carries them all.
        return cls(**{f.name: getattr(status, f.name) for f in fields(status)})


class HealthOut(BaseModel):
    status: str
    store_id: str
    cache_synced_at: datetime | None
    tasks: Annotated[
        dict[str, TaskOut],
        Field(description="The agent's supervised tasks by name (pos_api, print_worker, ...)."),
    ] = {}
    presence: Annotated[
        dict[str, object] | None,
        Field(
            description="Presence (when on): each scanner's and reader's state, who is tracked "
            "per zone (counts only), and what happened to what was heard."
        ),
    ] = None


class LinkedCodesOut(BaseModel):
    member_id: str
    codes: Annotated[
        list[str], Field(description="Codes linked to the member, unused and valid: apply them.")
    ]
