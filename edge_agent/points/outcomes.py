"""What the till asks of points and what it is answered: each shape defined once, here.

Like ``redemption/outcomes.py``: every answer is a frozen dataclass that the POS API sends as it
is (its OpenAPI schema generated from these fields), and the stored answer of a checkout, void
or return is its JSON less ``replayed`` (``StoredForm``), so a retry gets the first answer back
exactly, with ``replayed`` set.

A refusal is an answer with ``ok`` false, a stable ``reason`` and the numbers behind it in
``details``; it books nothing and is not stored (a till may retry after fixing the request).
Reasons: ``unknown_member`` (not in the cache's members table), the burn limits of
``points_rules.burn.BurnLimit`` (``insufficient_balance``, ``offline_allowance_exceeded``,
``margin_floor``, ``nothing_eligible``, ``invalid_request``), the return problems of
``points_rules.returns.ReturnProblem`` (``unknown_line``, ``bad_quantity``,
``more_than_sold``), and ``sale_voided`` (a return on a voided sale).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

from pydantic import Field

from edge_agent.cache.idempotency import StoredForm
from edge_agent.domain.basket import Basket
from edge_agent.domain.points_rules.burn import BurnPlan
from edge_agent.domain.points_rules.earn import EarnResult
from edge_agent.domain.points_rules.offline_bound import Availability
from edge_agent.domain.points_rules.returns import ReturnedLine

Replayed = Annotated[
    bool, Field(description="The stored answer to an identical earlier request (a retry).")
]
UNKNOWN_MEMBER = "unknown_member"
SALE_VOIDED = "sale_voided"


@dataclass(frozen=True, slots=True, kw_only=True)
class Sale:
    """A checkout as the till sends it (quote and checkout alike)."""

    till_id: str
    transaction_id: str  # unused by a quote
    cashier_id: str
    member_id: str
    basket: Basket
    burn_points: int | None  # None or 0: no burn; a quote: None asks what may be burned
    now: datetime  # aware


@dataclass(frozen=True, slots=True, kw_only=True)
class Return:
    """A return: taken at ``till_id`` (perhaps the service desk) on a sale of ``sale_till_id``."""

    till_id: str
    return_id: str
    sale_till_id: str
    transaction_id: str
    cashier_id: str
    lines: tuple[ReturnedLine, ...]
    now: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class BalanceView:
    """A member's points as this box knows them (``points_rules.offline_bound``)."""

    member_id: str
    programme: str
    synced_balance: int  # HQ's, as of the last sync
    synced_through_seq: int  # HQ's balance includes this box's postings up to this seq
    unsynced: int  # the net of this box's postings HQ's balance does not include yet
    known: int  # synced_balance + unsynced
    allowance: int  # the configured offline allowance
    available: int  # the most a burn may take: max(0, known + allowance)

    @classmethod
    def of(cls, member_id: str, programme: str, mark: int, a: Availability) -> BalanceView:
        return cls(
            member_id=member_id,
            programme=programme,
            synced_balance=a.synced_balance,
            synced_through_seq=mark,
            unsynced=a.unsynced,
            known=a.known,
            allowance=a.allowance,
            available=a.available,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PointsLine:
    """What one basket line earned or burned (or, on a return, what was reversed of it)."""

    line: int  # position in the sale's basket
    sku: str
    band: str  # margin band A, B or C
    side: str  # "earn" or "burn"
    points: int
    discount: int = 0  # burn: minor units the points took off the line
    campaign_id: str | None = None  # earn: the campaign whose multiplier applied


def earn_lines(earn: EarnResult) -> list[PointsLine]:
    return [
        PointsLine(
            line=x.index,
            sku=x.sku,
            band=x.band.value,
            side="earn",
            points=x.points,
            campaign_id=x.campaign_id,
        )
        for x in earn.lines
        if x.points > 0
    ]


def burn_lines(plan: BurnPlan | None) -> list[PointsLine]:
    if plan is None:
        return []
    return [
        PointsLine(
            line=x.index,
            sku=x.sku,
            band=x.band.value,
            side="burn",
            points=x.points,
            discount=x.discount,
        )
        for x in plan.lines
    ]


@dataclass(frozen=True, slots=True, kw_only=True)
class BurnOffer:
    """What may be burned on this basket, and why not more."""

    max_burnable: int  # min(eligible, available)
    eligible: int  # what the basket's margin floors allow
    available: int  # what the member may spend (known balance + allowance)
    requested: int | None
    granted: int
    discount: int  # minor units the granted points take off
    limit: Annotated[
        str | None,
        Field(description="Why fewer points than asked: a BurnLimit reason; null if none."),
    ]
    lines: list[PointsLine]

    @classmethod
    def of(cls, plan: BurnPlan) -> BurnOffer:
        return cls(
            max_burnable=plan.max_burnable,
            eligible=plan.eligible,
            available=plan.availability.available,
            requested=plan.requested,
            granted=plan.granted,
            discount=plan.discount,
            limit=None if plan.shortfall is None else plan.shortfall.reason.value,
            lines=burn_lines(plan),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PointsQuote:
    """What the cashier sees before payment: balance, the earn, what may be burned."""

    ok: bool
    reason: str | None
    message: str
    member_id: str
    balance: BalanceView | None
    earn_points: int = 0
    earn_lines: list[PointsLine] = field(default_factory=list)
    rules_version: str | None = None
    variant: str | None = None
    burn: BurnOffer | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PointsCheckoutOutcome:
    """A checkout's points: booked (``ok``), or refused with the reason and numbers."""

    ok: bool
    reason: str | None
    message: str
    transaction_id: str
    member_id: str
    earned: int = 0
    burned: int = 0
    discount: int = 0  # minor units the burned points took off the basket
    lines: list[PointsLine] = field(default_factory=list)
    rules_version: str | None = None
    variant: str | None = None
    event_ids: list[str] = field(default_factory=list)  # the ledger events booked
    balance: BalanceView | None = None  # after the checkout
    details: dict[str, int | str | None] = field(default_factory=dict)  # a refusal's numbers
    replayed: Replayed = False


@dataclass(frozen=True, slots=True, kw_only=True)
class PointsVoidOutcome:
    """A sale's points cancelled: what was left of its earn taken back, of its burn given back."""

    transaction_id: str
    till_id: str
    taken_back: int
    given_back: int
    event_id: str | None  # None: nothing was left to reverse
    voided_at: datetime
    replayed: Replayed = False


@dataclass(frozen=True, slots=True, kw_only=True)
class PointsReturnOutcome:
    """A return's points: exactly the returned units' share of the sale's earn and burn."""

    ok: bool
    reason: str | None
    message: str
    return_id: str
    transaction_id: str
    sale_till_id: str
    taken_back: int = 0  # earned points the member gives back
    given_back: int = 0  # burned points the member gets back
    net: int = 0  # given_back - taken_back: the member's balance change
    discount_reversed: int = 0  # minor units of points discount on the returned units
    lines: list[PointsLine] = field(default_factory=list)
    event_id: str | None = None
    details: dict[str, int | str | None] = field(default_factory=dict)  # a refusal's numbers
    replayed: Replayed = False


CHECKOUT_FORM = StoredForm(PointsCheckoutOutcome)
VOID_FORM = StoredForm(PointsVoidOutcome)
RETURN_FORM = StoredForm(PointsReturnOutcome)
