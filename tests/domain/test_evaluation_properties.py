"""Hypothesis: evaluation invariants over random baskets, promotions and sets of codes."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.domain.basket import AppliedPromotion, Basket, BasketLine
from edge_agent.domain.code_format import ALPHABET
from edge_agent.domain.code_record import CodeFacts, UsageFacts
from edge_agent.domain.decision import Accepted, Audience, Decision, Refused
from edge_agent.domain.promotion import Benefit, BenefitKind, Limits, Promotion, StackingRule
from tests.domain.factories import NOW, code, facts, request, run

SKUS = ["MILK", "BREAD", "COFFEE", "APPLE", "TEA", "JAM"]
CATEGORIES = ["dairy", "bakery", "drinks", "fruit"]
CLASSES = ["member_coupon", "store_sale", "tier_discount", "festival_promotion"]

lines = st.builds(
    BasketLine,
    sku=st.sampled_from(SKUS),
    category=st.sampled_from(CATEGORIES),
    quantity=st.integers(min_value=1, max_value=3),
    unit_price=st.integers(min_value=1, max_value=2_000),
)
baskets = st.builds(Basket, lines=st.lists(lines, min_size=0, max_size=6).map(tuple))

benefits = st.one_of(
    st.builds(
        Benefit,
        kind=st.just(BenefitKind.PERCENT_OFF),
        value=st.integers(0, 10_000),
        max_discount=st.none() | st.integers(0, 5_000),
    ),
    st.builds(
        Benefit,
        kind=st.just(BenefitKind.FIXED_OFF),
        value=st.integers(0, 20_000),
        max_discount=st.none() | st.integers(0, 5_000),
    ),
    st.builds(Benefit, kind=st.just(BenefitKind.FREE_ITEM), free_sku=st.sampled_from(SKUS)),
    st.builds(
        Benefit,
        kind=st.just(BenefitKind.BUNDLE_PRICE),
        value=st.integers(0, 6_000),
        bundle_skus=st.lists(st.sampled_from(SKUS), min_size=2, max_size=3, unique=True).map(tuple),
    ),
)

stackings = st.builds(
    StackingRule,
    stacking_class=st.sampled_from(CLASSES),
    exclusive=st.sampled_from([False, False, True]),
    # Often everything, so that stacking (and the basket headroom) gets exercised.
    combines_with=st.just(frozenset(CLASSES)) | st.frozensets(st.sampled_from(CLASSES)),
    order=st.integers(0, 3),
)


@st.composite
def promotions(draw: st.DrawFn, campaign_id: str) -> Promotion:
    return Promotion(
        campaign_id=campaign_id,
        name=f"Campaign {campaign_id}",
        benefit=draw(benefits),
        stacking=draw(stackings),
        starts_at=NOW - timedelta(days=1),
        ends_at=NOW + timedelta(days=1),
        min_spend=draw(st.sampled_from([0, 0, 500, 3_000])),
        eligible_categories=draw(st.frozensets(st.sampled_from(CATEGORIES), max_size=2)),
        budget_count=draw(st.none() | st.integers(0, 3)),
        budget_money=draw(st.none() | st.integers(0, 3_000)),
        limits=Limits(
            total_uses_per_code=draw(st.none() | st.integers(1, 3)),
            uses_per_transaction=draw(st.integers(1, 2)),
        ),
    )


@st.composite
def scenarios(
    draw: st.DrawFn,
) -> tuple[Basket, tuple[AppliedPromotion, ...], list[str], dict[str, CodeFacts]]:
    basket = draw(baskets)
    applied = tuple(
        draw(
            st.lists(
                st.builds(
                    AppliedPromotion,
                    name=st.just("POS"),
                    stacking_class=st.sampled_from(CLASSES),
                    discount=st.integers(0, 4_000),
                ),
                max_size=2,
            )
        )
    )
    parts = draw(
        st.lists(st.text(ALPHABET, min_size=6, max_size=6), min_size=1, max_size=4, unique=True)
    )
    codes = [code(part) for part in parts]
    campaigns = ["C1", "C2"]
    known: dict[str, CodeFacts] = {}
    promos = {c: draw(promotions(c)) for c in campaigns}
    for c in codes:
        promo = promos[draw(st.sampled_from(campaigns))]
        usage = UsageFacts(
            campaign_money=draw(st.integers(0, 1_000)), campaign_uses=draw(st.integers(0, 2))
        )
        known[c] = facts(c, promo, member_id=None, usage=usage)
    return basket, applied, codes, known


def check_invariants(
    decisions: tuple[Decision, ...], basket: Basket, applied: tuple[AppliedPromotion, ...]
) -> None:
    accepted = [d for d in decisions if isinstance(d, Accepted)]
    total = sum(d.discount for d in accepted)
    assert 0 <= total <= max(0, basket.total - sum(a.discount for a in applied)) <= basket.total
    per_sku: dict[str, int] = defaultdict(int)
    for d in accepted:
        assert d.discount > 0
        assert sum(part.amount for part in d.lines) == d.discount
        for part in d.lines:
            assert part.amount > 0
            per_sku[part.sku] += part.amount
    sku_totals: dict[str, int] = defaultdict(int)
    for line in basket.lines:
        sku_totals[line.sku] += line.total
    for sku, amount in per_sku.items():
        assert amount <= sku_totals[sku]


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.data())
def test_discounts_are_bounded_exact_and_order_independent(
    scenario: tuple[Basket, tuple[AppliedPromotion, ...], list[str], dict[str, CodeFacts]],
    data: st.DataObject,
) -> None:
    basket, applied, codes, known = scenario
    decisions = run(request(*codes, basket=basket, applied=applied, member_id=None), known)
    assert len(decisions) == len(codes)
    assert [d.code for d in decisions] == codes
    check_invariants(decisions, basket, applied)
    shuffled = data.draw(st.permutations(codes))
    again = run(request(*shuffled, basket=basket, applied=applied, member_id=None), known)
    assert dict(zip(shuffled, again, strict=True)) == dict(zip(codes, decisions, strict=True))


@settings(max_examples=100, deadline=None)
@given(scenarios(), st.data())
def test_duplicates_keep_the_invariants(
    scenario: tuple[Basket, tuple[AppliedPromotion, ...], list[str], dict[str, CodeFacts]],
    data: st.DataObject,
) -> None:
    basket, applied, codes, known = scenario
    with_copies = codes + data.draw(st.lists(st.sampled_from(codes), min_size=1, max_size=3))
    for audience in Audience:
        req = request(
            *with_copies, basket=basket, applied=applied, member_id=None, audience=audience
        )
        decisions = run(req, known)
        assert len(decisions) == len(with_copies)
        check_invariants(decisions, basket, applied)
        for d in decisions:
            if isinstance(d, Refused):
                assert d.cashier_message and d.customer_message
