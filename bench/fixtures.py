"""What several benchmarks set up the same way."""

from __future__ import annotations

from datetime import datetime, timedelta

from edge_agent.domain.promotion import Benefit, BenefitKind, Promotion, StackingRule


def bench_campaign(now: datetime, *, days: int = 30) -> Promotion:
    """Campaign B1, 10% off, live from yesterday for ``days``: what the bench codes belong to."""
    return Promotion(
        campaign_id="B1",
        name="Bench",
        benefit=Benefit(kind=BenefitKind.PERCENT_OFF, value=1000),
        stacking=StackingRule(stacking_class="coupon"),
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=days),
    )
