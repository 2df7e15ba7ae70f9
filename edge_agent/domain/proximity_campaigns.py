"""The default proximity campaigns: DOMAIN.md section 3's segment table for in-store offers.

The default ``[presence]`` rules name one campaign per segment
(``proximity_rules.DEFAULT_CAMPAIGN_IDS``, ``proximity-<segment>``). Same depths as the receipt
offers (``receipt_campaigns.SEGMENT_TABLE``: a segment's right depth does not depend on how the
offer reaches the member), same stacking, member-bound and single use; only the words differ,
since the member gets them on the phone while in the aisle rather than on a receipt.
"""

from __future__ import annotations

from datetime import datetime

from edge_agent.domain.promotion import Benefit, BenefitKind, Promotion
from edge_agent.domain.receipt_campaigns import RECEIPT_STACKING, SEGMENT_TABLE
from edge_agent.presence.proximity_rules import DEFAULT_CAMPAIGN_IDS

_NAMES = {
    "champion": "In-store thank-you 5%",
    "loyal": "Aisle offer 10%",
    "at_risk": "Good to see you 20%",
    "hibernating": "Welcome back in 30%",
    "one_timer": "Try something new 15%",
}


def default_proximity_campaigns(*, starts_at: datetime, ends_at: datetime) -> tuple[Promotion, ...]:
    """One proximity campaign per segment, valid from ``starts_at`` to ``ends_at``."""
    if ends_at <= starts_at:
        raise ValueError("ends_at must be after starts_at")
    return tuple(
        Promotion(
            campaign_id=DEFAULT_CAMPAIGN_IDS[segment],
            name=_NAMES[segment],
            benefit=Benefit(kind=BenefitKind.PERCENT_OFF, value=basis_points),
            stacking=RECEIPT_STACKING,
            starts_at=starts_at,
            ends_at=ends_at,
            requires_member=True,
        )
        for segment, _, basis_points in SEGMENT_TABLE
    )
