"""Stacking: explicit classes, which code wins, application order, shared budgets in one basket."""

from __future__ import annotations

from dataclasses import replace

from edge_agent.domain.basket import AppliedPromotion, Basket
from edge_agent.domain.code_record import UsageFacts
from edge_agent.domain.decision import Accepted, Reason, Refused
from edge_agent.domain.promotion import Benefit, BenefitKind, Limits, Promotion, StackingRule
from edge_agent.domain.stacking import code_conflict, describe, pos_conflict, summary
from tests.domain.factories import code, facts, line, promotion, request, run

A = code("HQ2P9X")
B = code("K7M4RT")
C = code("W9XY3Z")
TIER = AppliedPromotion(name="Gold tier", stacking_class="tier_discount", discount=100)
SALE = AppliedPromotion(name="Spring sale", stacking_class="store_sale", discount=100)


def rule(cls: str, *combines: str, exclusive: bool = False, order: int = 100) -> StackingRule:
    return StackingRule(
        stacking_class=cls, combines_with=frozenset(combines), exclusive=exclusive, order=order
    )


def fixed(value: int, stacking: StackingRule, campaign: str = "C1", **kw: object) -> Promotion:
    return promotion(
        campaign_id=campaign,
        benefit=Benefit(kind=BenefitKind.FIXED_OFF, value=value),
        stacking=stacking,
        **kw,
    )


def test_the_cashier_is_told_in_words() -> None:
    (decision,) = run(
        request(A, applied=(TIER,)),
        {A: facts(A, fixed(100, rule("member_coupon", "tier_discount")))},
    )
    assert isinstance(decision, Accepted)
    assert decision.stacks_with == ("tier_discount",)
    assert "store_sale" in decision.does_not_stack_with
    assert "Stacks with tier discount, not with " in decision.cashier_message
    assert "store sale" in decision.cashier_message
    assert (
        describe(("tier_discount",), ("store_sale",))
        == "Stacks with tier discount, not with store sale."
    )
    assert describe((), ("store_sale",)) == "Does not stack with any other promotion."


def test_conflicts_need_both_sides() -> None:
    one_way = rule("a", "b")
    other = rule("b")
    assert code_conflict(one_way, other) is not None
    assert code_conflict(other, one_way) is not None
    assert code_conflict(rule("a", "b"), rule("b", "a")) is None
    assert code_conflict(rule("a", "b", exclusive=True), rule("b", "a")) is not None
    assert pos_conflict(rule("a", "store_sale"), "store_sale") is None
    assert pos_conflict(rule("a", "store_sale", exclusive=True), "store_sale") is not None
    stacks, not_stacks = summary(rule("a", "b", exclusive=True), ["c"])
    assert stacks == ()
    assert {"a", "b", "c", "store_sale"} <= set(not_stacks)


def test_pos_promotion_outside_combines_with_refuses() -> None:
    promo = fixed(100, rule("member_coupon", "tier_discount"))
    (decision,) = run(request(A, applied=(TIER, SALE)), {A: facts(A, promo)})
    assert isinstance(decision, Refused)
    assert decision.reason is Reason.NOT_COMBINABLE
    assert decision.details["conflict"] == "Spring sale"
    assert decision.details["conflict_kind"] == "pos_promotion"


def test_larger_discount_wins_whatever_the_scan_order() -> None:
    known = {
        A: facts(A, fixed(100, rule("member_coupon"))),
        B: facts(B, fixed(300, rule("member_coupon"), campaign="C2")),
    }
    for codes in ((A, B), (B, A)):
        decisions = dict(zip(codes, run(request(*codes), known), strict=True))
        assert isinstance(decisions[B], Accepted)
        loser = decisions[A]
        assert isinstance(loser, Refused)
        assert loser.reason is Reason.NOT_COMBINABLE
        assert loser.details["conflict"] == B
        assert loser.details["conflict_kind"] == "code"


def test_tie_goes_to_the_smaller_code_string() -> None:
    known = {
        A: facts(A, fixed(100, rule("member_coupon"))),
        B: facts(B, fixed(100, rule("member_coupon"), campaign="C2")),
    }
    winner = min(A, B)
    for codes in ((A, B), (B, A)):
        decisions = dict(zip(codes, run(request(*codes), known), strict=True))
        assert isinstance(decisions[winner], Accepted)
        assert not decisions[max(A, B)].ok


def test_a_winner_refused_later_does_not_block_the_other() -> None:
    # B is worth more but its campaign's money budget cannot pay it: A must still apply.
    known = {
        A: facts(A, fixed(100, rule("member_coupon"))),
        B: facts(
            B,
            fixed(300, rule("member_coupon"), campaign="C2", budget_money=1000),
            usage=UsageFacts(campaign_money=800),
        ),
    }
    decisions = run(request(A, B), known)
    assert isinstance(decisions[0], Accepted)
    assert isinstance(decisions[1], Refused)
    assert decisions[1].reason is Reason.CAMPAIGN_BUDGET_EXHAUSTED


def test_application_follows_order_then_code() -> None:
    stack = ("member_coupon", "festival_promotion")
    first = promotion(
        benefit=Benefit(kind=BenefitKind.PERCENT_OFF, value=5000),
        stacking=rule("festival_promotion", *stack, order=1),
    )
    later = fixed(1000, rule("member_coupon", *stack, order=2), campaign="C2")
    decisions = run(request(B, A), {A: facts(A, later), B: facts(B, first)})
    assert [d.discount for d in decisions if isinstance(d, Accepted)] == [775, 775]
    assert decisions[0].details["applied_order"] == 1


def test_two_codes_cannot_take_the_same_free_item() -> None:
    basket = Basket(lines=(line("COFFEE", 450), line("BREAD", 300)))
    free = promotion(
        benefit=Benefit(kind=BenefitKind.FREE_ITEM, free_sku="COFFEE"),
        stacking=rule("member_coupon", "member_coupon"),
    )
    decisions = run(
        request(A, B, basket=basket),
        {A: facts(A, free), B: facts(B, replace(free, campaign_id="C2"))},
    )
    assert isinstance(decisions[0], Accepted)
    assert isinstance(decisions[1], Refused)
    assert decisions[1].reason is Reason.NO_ELIGIBLE_ITEMS


def test_codes_of_one_campaign_share_its_budget_and_store_allocation() -> None:
    stacking = rule("member_coupon", "member_coupon")
    for changes, usage, reason in (
        ({"budget_count": 5}, UsageFacts(campaign_uses=4), Reason.CAMPAIGN_BUDGET_EXHAUSTED),
        (
            {"store_allocation": 3},
            UsageFacts(store_campaign_uses=2),
            Reason.STORE_ALLOCATION_EXHAUSTED,
        ),
        ({"budget_money": 1000}, UsageFacts(campaign_money=850), Reason.CAMPAIGN_BUDGET_EXHAUSTED),
    ):
        promo = replace(fixed(100, stacking), **changes)  # type: ignore[arg-type]
        known = {A: facts(A, promo, usage=usage), B: facts(B, promo, usage=usage)}
        for codes in ((A, B), (B, A)):
            decisions = dict(zip(codes, run(request(*codes), known), strict=True))
            assert isinstance(decisions[min(A, B)], Accepted)  # same order: code string decides
            refused = decisions[max(A, B)]
            assert isinstance(refused, Refused)
            assert refused.reason is reason


def test_velocity_counts_codes_in_this_basket() -> None:
    promo = fixed(
        100, rule("member_coupon", "member_coupon"), limits=Limits(member_velocity_count=1)
    )
    decisions = run(request(A, B), {A: facts(A, promo), B: facts(B, promo)})
    assert [d.ok for d in decisions] == [True, False]
    assert isinstance(decisions[1], Refused)
    assert decisions[1].reason is Reason.VELOCITY_LIMIT


def test_code_allowed_twice_per_transaction_applies_twice() -> None:
    promo = fixed(
        100,
        rule("member_coupon"),
        limits=Limits(total_uses_per_code=None, uses_per_transaction=2, uses_per_member=5),
        budget_count=1000,
    )
    known = {A: facts(A, promo, member_id=None)}
    decisions = run(request(A, A, A), known)
    assert [d.ok for d in decisions] == [True, True, False]
    assert isinstance(decisions[2], Refused)
    assert decisions[2].reason is Reason.ALREADY_IN_BASKET
    # The member limit counts the first copy.
    known = {
        A: facts(A, replace(promo, limits=replace(promo.limits, uses_per_member=1)), member_id=None)
    }
    decisions = run(request(A, A), known)
    assert isinstance(decisions[1], Refused)
    assert decisions[1].reason is Reason.MEMBER_LIMIT_REACHED


def test_several_codes_never_exceed_the_basket() -> None:
    stacking = rule("member_coupon", "member_coupon")
    known = {c: facts(c, fixed(1000, stacking, campaign=c)) for c in (A, B, C)}
    decisions = run(request(A, B, C), known)
    accepted = [d for d in decisions if isinstance(d, Accepted)]
    assert sum(d.discount for d in accepted) == 1550
    refused = [d for d in decisions if isinstance(d, Refused)]
    assert [d.reason for d in refused] == [Reason.NO_ELIGIBLE_ITEMS]
