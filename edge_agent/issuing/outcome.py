"""What the POS sends at checkout and what it gets back: a receipt coupon, or why not.

``IssueOutcome`` is also what ``coupon_issues.response`` stores (as JSON, ``outcome_to_json``),
so a retried checkout gets the first answer back exactly (``replayed`` set).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

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


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _dt(value: object) -> datetime:
    return datetime.fromisoformat(str(value))


def _opt_dt(value: object) -> datetime | None:
    return None if value is None else _dt(value)


def _offer_to_dict(offer: Offer) -> dict[str, Any]:
    out = asdict(offer)
    for key in ("issued_at", "expires_at", "remind_at"):
        out[key] = _iso(out[key])
    return out


def _offer_from_dict(doc: dict[str, Any]) -> Offer:
    fields = dict(doc)
    fields["issued_at"] = _dt(doc["issued_at"])
    fields["expires_at"] = _dt(doc["expires_at"])
    fields["remind_at"] = _opt_dt(doc["remind_at"])
    return Offer(**fields)


def outcome_to_dict(outcome: IssueOutcome) -> dict[str, Any]:
    """JSON-ready (times as ISO 8601 with offset)."""
    coupon = None
    if outcome.coupon is not None:
        coupon = asdict(outcome.coupon)
        for key in ("issued_at", "expires_at", "remind_at"):
            coupon[key] = _iso(coupon[key])
    holdout = None
    if outcome.holdout is not None:
        h = outcome.holdout
        holdout = {
            "cohort": h.cohort,
            "share_bp": h.share_bp,
            "in_holdout": h.in_holdout,
            "would_have": None if h.would_have is None else _offer_to_dict(h.would_have),
            "event_id": h.event_id,
        }
    return {
        "transaction_id": outcome.transaction_id,
        "issued": outcome.issued,
        "coupon": coupon,
        "reason": None if outcome.reason is None else outcome.reason.value,
        "message": outcome.message,
        "details": outcome.details,
        "retry_after": _iso(outcome.retry_after),
        "holdout": holdout,
        "replayed": outcome.replayed,
    }


def outcome_from_dict(doc: dict[str, Any]) -> IssueOutcome:
    coupon = None
    if doc["coupon"] is not None:
        fields = dict(doc["coupon"])
        fields["issued_at"] = _dt(fields["issued_at"])
        fields["expires_at"] = _dt(fields["expires_at"])
        fields["remind_at"] = _opt_dt(fields["remind_at"])
        coupon = IssuedCoupon(**fields)
    holdout = None
    if doc["holdout"] is not None:
        h = doc["holdout"]
        holdout = HoldoutInfo(
            cohort=h["cohort"],
            share_bp=h["share_bp"],
            in_holdout=h["in_holdout"],
            would_have=None if h["would_have"] is None else _offer_from_dict(h["would_have"]),
            event_id=h["event_id"],
        )
    return IssueOutcome(
        transaction_id=doc["transaction_id"],
        coupon=coupon,
        reason=None if doc["reason"] is None else NoCouponReason(doc["reason"]),
        message=doc["message"],
        details=dict(doc["details"]),
        retry_after=_opt_dt(doc["retry_after"]),
        holdout=holdout,
        replayed=bool(doc["replayed"]),
    )


def outcome_to_json(outcome: IssueOutcome) -> str:
    return json.dumps(outcome_to_dict(outcome), separators=(",", ":"), sort_keys=True)


def outcome_from_json(text: str, *, replayed: bool = False) -> IssueOutcome:
    outcome = outcome_from_dict(json.loads(text))
    return replace(outcome, replayed=True) if replayed else outcome
