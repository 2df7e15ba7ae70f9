"""The default receipt campaigns: DOMAIN.md section 3's segment table as ``Promotion`` objects.

HQ (or the demo) creates these so the default ``[receipt_offers]`` config has campaigns to issue
(their ids are ``offer_policy.DEFAULT_CAMPAIGN_IDS``). Each is member-bound and single use, of
stacking class ``receipt_coupon``: it combines with the member's tier discount (the reward for
loyalty stays whole) and not with store sales or other coupons (a sale price plus 30% off would
give the margin away twice).
"""

from __future__ import annotations

from datetime import datetime

from edge_agent.domain.offer_policy import DEFAULT_CAMPAIGN_IDS
from edge_agent.domain.promotion import Benefit, BenefitKind, Promotion, StackingRule

RECEIPT_STACKING = StackingRule(
    stacking_class="receipt_coupon", combines_with=frozenset({"tier_discount"})
)
# (segment, name, basis points). At-risk takes the low end of 20-25%: the depth that reactivates
# without training members to lapse. Champions get 5%: a discount erodes margin without lift.
SEGMENT_TABLE = (
    ("champion", "Thank-you 5% next visit", 500),
    ("loyal", "Loyal 10% category nudge", 1000),
    ("at_risk", "We miss you 20%", 2000),
    ("hibernating", "Welcome back 30%", 3000),
    ("one_timer", "Second visit 15%", 1500),
)
# The default depth of each segment's offer, for every channel (receipt and proximity offers).
SEGMENT_SIZING_BP = {segment: basis_points for segment, _, basis_points in SEGMENT_TABLE}


def default_receipt_campaigns(
    *,
    starts_at: datetime,
    ends_at: datetime,
    nudge_categories: frozenset[str] = frozenset(),
) -> tuple[Promotion, ...]:
    """One campaign per segment, valid from ``starts_at`` to ``ends_at``.

    ``nudge_categories`` narrows the loyal and one-timer offers to those categories (the
    cross-sell / second-category nudge); empty means the whole purchase.
    """
    if ends_at <= starts_at:
        raise ValueError("ends_at must be after starts_at")
    out = []
    for segment, name, basis_points in SEGMENT_TABLE:
        nudged = segment in ("loyal", "one_timer")
        out.append(
            Promotion(
                campaign_id=DEFAULT_CAMPAIGN_IDS[segment],
                name=name,
                benefit=Benefit(kind=BenefitKind.PERCENT_OFF, value=basis_points),
                stacking=RECEIPT_STACKING,
                starts_at=starts_at,
                ends_at=ends_at,
                eligible_categories=nudge_categories if nudged else frozenset(),
                requires_member=True,
            )
        )
    return tuple(out)
