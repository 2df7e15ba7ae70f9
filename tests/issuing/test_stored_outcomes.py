"""``coupon_issues.response`` as stored before one definition per data shape still replays
exactly, and today's stored form round-trips.

``old_stored_outcomes.json`` holds what the hand-written codec wrote (keys sorted, an
``issued`` key, times with ``+00:00``) for an issued coupon and a held-out checkout, and the POS
API body that box sent to a retry of each.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from edge_agent.api.receipt_schemas import ReceiptCouponOut
from edge_agent.domain.offer_policy import NoCouponReason, Offer
from edge_agent.issuing.outcome import STORED_FORM, HoldoutInfo, IssuedCoupon, IssueOutcome

OLD = json.loads((Path(__file__).parent / "old_stored_outcomes.json").read_text())
ISSUED_AT = datetime(2025, 3, 1, 12, 0, 30, tzinfo=UTC)
EXPIRES_AT = datetime(2025, 3, 15, 12, 0, 30, tzinfo=UTC)
TEXT = "Try something new: 10% off your whole purchase on your next visit, until 15 Mar 2025."
TERMS = (
    "Stacks with tier discount, not with category discount, festival promotion, receipt coupon, "
    "store sale or tier multiplier."
)

# What the old decoder made of the two stored answers (replayed), written out. The coupon and
# the offer withheld are the same loyal offer, to two members.
OFFER = {
    "campaign_id": "receipt-loyal",
    "campaign_name": "Loyal 10% category nudge",
    "segment": "loyal",
    "variant": "A",
    "discount": "10% off your whole purchase",
    "stacking_terms": TERMS,
    "issued_at": ISSUED_AT,
    "expires_at": EXPIRES_AT,
    "remind_at": None,
}
CODE = "SS23JHDJ3N7"
ISSUED = IssueOutcome(
    transaction_id="T-1",
    coupon=IssuedCoupon(
        **OFFER,
        code=CODE,
        display="SS-23JH-DJ3N7",
        qr_payload=f"T1.{CODE}.receipt-loyal.loyal-0.S1.1740830430.1742040030",
        channel="receipt",
        member_id="loyal-0",
        offer_text=TEXT,
        store_id="S1",
        till_id="till-3",
        cashier_id="c-7",
        transaction_id="T-1",
        event_id="0195519453ab78a5ab72c5fdf2419260",
    ),
    reason=None,
    message=f"Coupon issued: {TEXT}",
    holdout=HoldoutInfo(cohort="receipt-loyal", share_bp=500, in_holdout=False),
    replayed=True,
)
HELD_OUT = IssueOutcome(
    transaction_id="T-2",
    coupon=None,
    reason=NoCouponReason.HOLDOUT,
    message="No coupon this time: this customer is in the control group of receipt-loyal (5% of "
    "customers get no receipt coupon so the offer's effect can be measured).",
    details={"cohort": "receipt-loyal", "share_bp": 500},
    holdout=HoldoutInfo(
        cohort="receipt-loyal",
        share_bp=500,
        in_holdout=True,
        would_have=Offer(**OFFER, cohort="receipt-loyal", member_id="loyal-2", text=TEXT),
        event_id="0195519453ab7c6e9eb64846ccc7734c",
    ),
    replayed=True,
)


def test_outcomes_stored_by_the_old_codec_replay_as_they_did() -> None:
    for txn, expected in (("T-1", ISSUED), ("T-2", HELD_OUT)):
        replayed = STORED_FORM.replay(OLD["stored"][txn])
        assert replayed == expected
        assert ReceiptCouponOut.of(replayed, None).model_dump_json() == OLD["retried"][txn]


def test_todays_stored_form_round_trips_and_leaves_replayed_out() -> None:
    for outcome in (replace(ISSUED, replayed=False), replace(HELD_OUT, replayed=False)):
        text = STORED_FORM.dump(outcome)
        assert "replayed" not in json.loads(text)
        assert STORED_FORM.replay(text) == replace(outcome, replayed=True)
