"""Discount arithmetic per benefit kind: rounding, caps, allocation to lines."""

from __future__ import annotations

from edge_agent.domain.basket import AppliedPromotion, Basket
from edge_agent.domain.decision import Accepted, LineDiscount, Reason, Refused
from edge_agent.domain.discount import (
    NoDiscount,
    Share,
    allocate,
    compute,
    format_money,
    percent_of,
)
from edge_agent.domain.promotion import Benefit, BenefitKind, Promotion, StackingRule
from tests.domain.factories import BASKET, code, facts, line, promotion, request, run

A = code("HQ2P9X")


def accept(promo: Promotion, basket: Basket = BASKET, **kw: object) -> Accepted:
    (decision,) = run(request(A, basket=basket, **kw), {A: facts(A, promo)})  # type: ignore[arg-type]
    assert isinstance(decision, Accepted), decision
    assert sum(part.amount for part in decision.lines) == decision.discount
    return decision


def share(
    promo: Promotion, basket: Basket = BASKET, headroom: int | None = None
) -> Share | NoDiscount:
    lines = basket.lines
    return compute(
        promo,
        lines,
        [x.total for x in lines],
        [x.quantity for x in lines],
        basket.total if headroom is None else headroom,
    )


def pct(bp: int, **kw: object) -> Promotion:
    return promotion(benefit=Benefit(kind=BenefitKind.PERCENT_OFF, value=bp, **kw))  # type: ignore[arg-type]


def test_percent_rounds_half_up_on_the_total() -> None:
    assert percent_of(1005, 1000) == 101  # 100.5 -> 101
    assert percent_of(1004, 1000) == 100  # 100.4 -> 100
    assert percent_of(1015, 1000) == 102  # 101.5 -> 102 (half up, not to even)
    assert percent_of(0, 1000) == 0
    # Three lines of 333 at 10%: per-line rounding would give 3 * 33 = 99; on the total, 100.
    basket = Basket(lines=(line("A", 333), line("B", 333), line("C", 333)))
    decision = accept(pct(1000), basket)
    assert decision.discount == 100
    assert sorted(part.amount for part in decision.lines) == [33, 33, 34]


def test_percent_only_on_eligible_lines() -> None:
    decision = accept(
        promotion(
            benefit=Benefit(kind=BenefitKind.PERCENT_OFF, value=2000),
            eligible_categories=frozenset({"dairy"}),
        )
    )
    assert decision.discount == 100  # 20% of MILK 2 x 250
    assert decision.lines == (LineDiscount(sku="MILK", amount=100),)


def test_percent_capped_by_max_discount() -> None:
    assert accept(pct(5000, max_discount=300)).discount == 300
    assert accept(pct(10_000)).discount == 1550  # 100% is the whole basket, no more


def test_fixed_off_capped_at_eligible_total() -> None:
    promo = promotion(
        benefit=Benefit(kind=BenefitKind.FIXED_OFF, value=10_000),
        eligible_skus=frozenset({"BREAD"}),
    )
    decision = accept(promo)
    assert decision.discount == 300
    assert decision.lines == (LineDiscount(sku="BREAD", amount=300),)
    fixed = promotion(benefit=Benefit(kind=BenefitKind.FIXED_OFF, value=500, max_discount=200))
    assert accept(fixed).discount == 200


def test_fixed_off_spread_proportionally_and_exactly() -> None:
    decision = accept(promotion(benefit=Benefit(kind=BenefitKind.FIXED_OFF, value=100)))
    # 100 over 500/300/450/300 (1550): 32.26, 19.35, 29.03, 19.35; the one unit left goes to
    # the largest remainder, BREAD and APPLE tie and the earlier line wins.
    assert {p.sku: p.amount for p in decision.lines} == {
        "MILK": 32,
        "BREAD": 20,
        "COFFEE": 29,
        "APPLE": 19,
    }


def test_free_item_is_one_unit() -> None:
    basket = Basket(lines=(line("COFFEE", 450, 3), line("BREAD", 300)))
    decision = accept(
        promotion(benefit=Benefit(kind=BenefitKind.FREE_ITEM, free_sku="COFFEE")), basket
    )
    assert decision.discount == 450
    assert decision.lines == (LineDiscount(sku="COFFEE", amount=450),)


def test_free_item_missing_is_no_eligible_items() -> None:
    result = share(promotion(benefit=Benefit(kind=BenefitKind.FREE_ITEM, free_sku="TEA")))
    assert result == NoDiscount("free_item_missing", ("TEA",))


def test_bundle_price() -> None:
    promo = promotion(
        benefit=Benefit(kind=BenefitKind.BUNDLE_PRICE, value=400, bundle_skus=("BREAD", "MILK"))
    )
    decision = accept(promo)
    assert decision.discount == 250 + 300 - 400
    # 150 over 250 (MILK) : 300 (BREAD) -> 68.18 / 81.82 -> 68 / 82
    assert decision.lines == (
        LineDiscount(sku="MILK", amount=68),
        LineDiscount(sku="BREAD", amount=82),
    )


def test_bundle_incomplete_or_not_cheaper() -> None:
    missing = promotion(
        benefit=Benefit(kind=BenefitKind.BUNDLE_PRICE, value=400, bundle_skus=("BREAD", "JAM"))
    )
    assert share(missing) == NoDiscount("bundle_incomplete", ("JAM",))
    dear = promotion(
        benefit=Benefit(kind=BenefitKind.BUNDLE_PRICE, value=600, bundle_skus=("BREAD", "MILK"))
    )
    assert share(dear) == NoDiscount("bundle_saves_nothing")
    (decision,) = run(request(A), {A: facts(A, dear)})
    assert isinstance(decision, Refused)
    assert decision.reason is Reason.NO_ELIGIBLE_ITEMS


def test_bundle_capped_by_max_discount() -> None:
    promo = promotion(
        benefit=Benefit(
            kind=BenefitKind.BUNDLE_PRICE,
            value=400,
            bundle_skus=("BREAD", "MILK"),
            max_discount=100,
        )
    )
    assert accept(promo).discount == 100


def test_discount_never_exceeds_what_pos_promotions_left() -> None:
    promo = promotion(benefit=Benefit(kind=BenefitKind.FIXED_OFF, value=200))
    applied = (AppliedPromotion(name="Tier", stacking_class="tier_discount", discount=1500),)
    assert accept(promo, applied=applied).discount == 50


def test_two_percent_codes_compound_in_order() -> None:
    b = code("K7M4RT")
    first = promotion(
        stacking=StackingRule(
            stacking_class="member_coupon", combines_with=frozenset({"member_coupon"}), order=10
        )
    )
    second = promotion(
        campaign_id="C2",
        stacking=StackingRule(
            stacking_class="member_coupon", combines_with=frozenset({"member_coupon"}), order=20
        ),
    )
    decisions = run(request(b, A), {A: facts(A, first), b: facts(b, second)})
    assert [d.discount for d in decisions if isinstance(d, Accepted)] == [
        140,
        155,
    ]  # second: 10% of 1395
    assert decisions[1].details["applied_order"] == 1


def test_allocate_is_exact_and_bounded() -> None:
    assert allocate(10, [1, 1, 1]) == [4, 3, 3]  # ties go to the earlier line
    assert allocate(0, [5, 5]) == [0, 0]
    assert allocate(7, [7]) == [7]
    assert allocate(3, [0, 10]) == [0, 3]


def test_format_money_uses_integers() -> None:
    assert format_money(1234) == "12.34"
    assert format_money(5) == "0.05"
    assert format_money(-5) == "-0.05"
    assert format_money(1234, decimals=0) == "1234"
