"""The pure validation call: one member-bound code on a ten-line basket (target p99 <= 200 us).

Also prints, without a target, a three-code basket that exercises stacking and application
order, so a regression in the multi-code path shows up too.
"""

from __future__ import annotations

import gc
import time
from datetime import UTC, datetime, timedelta

from bench.report import latency
from edge_agent.domain.basket import AppliedPromotion, Basket, BasketLine
from edge_agent.domain.code_format import CodeFormat, namespace_string, new_code
from edge_agent.domain.code_record import CodeFacts, CodeRecord, UsageFacts
from edge_agent.domain.decision import Accepted, ValidationRequest
from edge_agent.domain.promotion import (
    Benefit,
    BenefitKind,
    Limits,
    Member,
    OfflinePolicy,
    Promotion,
    StackingRule,
)
from edge_agent.domain.validation import evaluate

ITERATIONS = 20_000
WARMUP = 2_000
FMT = CodeFormat(prefix="SS")
NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def _promotion(campaign: str, benefit: Benefit, order: int) -> Promotion:
    return Promotion(
        campaign_id=campaign,
        name=f"Campaign {campaign}",
        benefit=benefit,
        stacking=StackingRule(
            stacking_class="member_coupon",
            combines_with=frozenset({"member_coupon", "tier_discount"}),
            order=order,
        ),
        starts_at=NOW - timedelta(days=7),
        ends_at=NOW + timedelta(days=7),
        min_spend=1_000,
        eligible_categories=frozenset({"dairy", "bakery", "drinks"}),
        budget_count=150_000,
        limits=Limits(member_velocity_count=5),
        offline=OfflinePolicy(high_value_threshold=50_000),
    )


def _facts(code: str, promotion: Promotion) -> CodeFacts:
    return CodeFacts(
        record=CodeRecord(code=code, campaign_id=promotion.campaign_id, member_id="M-1"),
        promotion=promotion,
        member=Member(member_id="M-1"),
        usage=UsageFacts(
            campaign_uses=1_234,
            member_recent_redemptions=(NOW - timedelta(hours=2), NOW - timedelta(days=3)),
        ),
    )


def _measure(request: ValidationRequest, facts: dict[str, CodeFacts]) -> list[float]:
    synced = NOW - timedelta(seconds=30)
    for _ in range(WARMUP):
        evaluate(request, facts, fmt=FMT, store_cache_synced_at=synced)
    samples = []
    clock = time.perf_counter
    gc.collect()
    for _ in range(ITERATIONS):
        started = clock()
        evaluate(request, facts, fmt=FMT, store_cache_synced_at=synced)
        samples.append(clock() - started)
    return samples


def main() -> None:
    namespace = namespace_string(0, FMT)
    categories = ["dairy", "bakery", "drinks", "fruit", "household"]
    basket = Basket(
        lines=tuple(
            BasketLine(
                sku=f"SKU{i:03d}",
                category=categories[i % len(categories)],
                quantity=1 + i % 3,
                unit_price=199 + 101 * i,
            )
            for i in range(10)
        )
    )
    codes = [new_code(FMT, namespace) for _ in range(3)]
    promos = [
        _promotion("C1", Benefit(kind=BenefitKind.PERCENT_OFF, value=1000), 10),
        _promotion("C2", Benefit(kind=BenefitKind.FIXED_OFF, value=500), 20),
        _promotion("C3", Benefit(kind=BenefitKind.FREE_ITEM, free_sku="SKU002"), 30),
    ]
    facts = {code: _facts(code, promo) for code, promo in zip(codes, promos, strict=True)}

    def request(*scanned: str) -> ValidationRequest:
        return ValidationRequest(
            codes=scanned,
            store_id="S1",
            till_id="TILL-1",
            cashier_id="CASHIER-1",
            basket=basket,
            now=NOW,
            member_id="M-1",
            transaction_id="T-1",
            applied=(AppliedPromotion(name="Gold", stacking_class="tier_discount", discount=150),),
        )

    one = request(codes[0].lower())  # typed in lower case: normalisation is on the path
    (decision,) = evaluate(one, facts, fmt=FMT, store_cache_synced_at=NOW)
    assert isinstance(decision, Accepted), decision
    latency("validation pure call (1 code, 10 lines)", _measure(one, facts), target_p99_us=200)
    three = request(*codes)
    assert all(d.ok for d in evaluate(three, facts, fmt=FMT, store_cache_synced_at=NOW))
    latency("validation pure call (3 stacked codes, 10 lines)", _measure(three, facts))


if __name__ == "__main__":
    main()
