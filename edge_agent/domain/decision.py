"""What validation answers: an acceptance with the discount, or a refusal with a stable reason.

Refusals are values, not exceptions. ``Reason`` codes are a stable public contract: the POS
switches on them, so never rename one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from edge_agent.domain.basket import AppliedPromotion, Basket


class Reason(StrEnum):
    MALFORMED = "MALFORMED"
    NOT_FOUND = "NOT_FOUND"
    NOT_STARTED = "NOT_STARTED"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"
    ALREADY_REDEEMED = "ALREADY_REDEEMED"
    RESERVED_ELSEWHERE = "RESERVED_ELSEWHERE"
    MEMBER_REQUIRED = "MEMBER_REQUIRED"
    WRONG_MEMBER = "WRONG_MEMBER"
    CODE_LIMIT_REACHED = "CODE_LIMIT_REACHED"
    MEMBER_LIMIT_REACHED = "MEMBER_LIMIT_REACHED"
    VELOCITY_LIMIT = "VELOCITY_LIMIT"
    CAMPAIGN_BUDGET_EXHAUSTED = "CAMPAIGN_BUDGET_EXHAUSTED"
    STORE_ALLOCATION_EXHAUSTED = "STORE_ALLOCATION_EXHAUSTED"
    WRONG_STORE = "WRONG_STORE"
    MIN_SPEND_NOT_MET = "MIN_SPEND_NOT_MET"
    MIN_QTY_NOT_MET = "MIN_QTY_NOT_MET"
    NO_ELIGIBLE_ITEMS = "NO_ELIGIBLE_ITEMS"
    DISCOUNT_ROUNDS_TO_ZERO = "DISCOUNT_ROUNDS_TO_ZERO"
    SEGMENT_NOT_ELIGIBLE = "SEGMENT_NOT_ELIGIBLE"
    NOT_COMBINABLE = "NOT_COMBINABLE"
    ALREADY_IN_BASKET = "ALREADY_IN_BASKET"
    CACHE_STALE = "CACHE_STALE"
    ONLINE_CHECK_REQUIRED = "ONLINE_CHECK_REQUIRED"
    TILL_THROTTLED = "TILL_THROTTLED"
    # Signed QR tokens (coupon_token), refused before any code lookup: unreadable (damaged or
    # foreign), forged or altered, signed by a key this store does not trust (or revoked).
    INVALID_TOKEN = "INVALID_TOKEN"  # noqa: S105 - a reason code, not a secret
    INVALID_SIGNATURE = "INVALID_SIGNATURE"
    UNKNOWN_ISSUER = "UNKNOWN_ISSUER"


class Audience(StrEnum):
    """Who sees the answer. Customer-facing channels get the disclosure-safe view."""

    CASHIER = "cashier"
    CUSTOMER = "customer"


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidationRequest:
    codes: tuple[str, ...]  # every code on this basket, in scan order, as typed or scanned
    store_id: str
    till_id: str
    cashier_id: str
    basket: Basket
    now: datetime
    member_id: str | None = None
    transaction_id: str | None = None
    applied: tuple[AppliedPromotion, ...] = ()  # the POS's own promotions already applied
    audience: Audience = Audience.CASHIER


@dataclass(frozen=True, slots=True, kw_only=True)
class LineDiscount:
    sku: str
    amount: int  # minor units off this line


@dataclass(frozen=True, slots=True, kw_only=True)
class Accepted:
    code: str
    campaign_id: str
    discount: int  # minor units off the basket, never more than what is left to pay
    lines: tuple[LineDiscount, ...]
    cashier_message: str
    customer_message: str
    stacks_with: tuple[str, ...] = ()  # stacking classes it combines with
    does_not_stack_with: tuple[str, ...] = ()
    details: dict[str, object] = field(default_factory=dict)

    ok = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Refused:
    code: str
    reason: Reason
    cashier_message: str
    customer_message: str
    details: dict[str, object] = field(default_factory=dict)
    retry_after: datetime | None = None  # when the member may use it again, if ever

    ok = False


Decision = Accepted | Refused
