"""What the POS sends at checkout and what it gets back: a receipt coupon, or why not.

``IssueOutcome`` is defined once, here: ``coupon_issues.response`` stores its JSON, derived by
pydantic from these fields (``STORED_FORM``), so a retried checkout gets the first answer back
exactly (``replayed`` set), and the POS API's ``ReceiptCouponOut`` is its projection for the
till (``edge_agent.api.receipt_schemas``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from edge_agent.cache.idempotency import StoredForm
from edge_agent.domain.basket import Basket
from edge_agent.domain.offer_policy import NoCouponReason, Offer


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkout:
    """The POS's call at checkout. ``basket`` lines as in ``edge_agent.domain.basket``."""

    transaction_id: str
    till_id: str
    cashier_id: str
    basket: Basket
    now: datetime  # aware
    member_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedCoupon:
    """A minted receipt coupon: what the printer lays out and the POS may show on screen."""

    code: str  # canonical, what the QR token names
    display: str  # grouped for the receipt: SS-22HQ-2P9XM
    qr_payload: str  # the signed token the QR encodes
    campaign_id: str
    campaign_name: str
    segment: str
    variant: str
    channel: str  # always "receipt"
    member_id: str | None  # bound member (None: anonymous offer)
    offer_text: str
    discount: str  # the benefit and its conditions in words
    stacking_terms: str  # "Stacks with tier discount, not with ... or store sale."
    issued_at: datetime
    expires_at: datetime
    remind_at: datetime | None
    store_id: str
    till_id: str
    cashier_id: str
    transaction_id: str
    event_id: str  # the coupon.issued event


@dataclass(frozen=True, slots=True, kw_only=True)
class HoldoutInfo:
    """Where the checkout stood in its cohort's holdout draw."""

    cohort: str
    share_bp: int  # the holdout share, basis points (500 = 5%)
    in_holdout: bool
    would_have: Offer | None = None  # held out: the offer they would have had
    event_id: str | None = None  # held out: the coupon.withheld event


@dataclass(frozen=True, slots=True, kw_only=True)
class IssueOutcome:
    transaction_id: str
    coupon: IssuedCoupon | None  # None: no coupon this time (see reason)
    reason: NoCouponReason | None  # None exactly when a coupon was issued
    message: str  # one line for the POS
    details: dict[str, object] = field(default_factory=dict)  # JSON-ready
    retry_after: datetime | None = None
    holdout: HoldoutInfo | None = None  # None when the checkout never reached the draw
    replayed: bool = False  # the stored answer of an earlier call with this transaction id

    @property
    def issued(self) -> bool:
        return self.coupon is not None


# Stored before these definitions, by a hand-written codec: the same fields with keys sorted,
# plus "issued" (a property here, so ignored on reading) and "replayed" (set on replay anyway).
STORED_FORM = StoredForm(IssueOutcome)
