"""One scenario per refusal reason: each bends the accepted baseline in exactly one place."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from edge_agent.domain.basket import AppliedPromotion, Basket
from edge_agent.domain.code_record import (
    CodeFacts,
    CodeStatus,
    RedemptionInfo,
    Reservation,
    UsageFacts,
)
from edge_agent.domain.decision import Accepted, Reason, Refused, ValidationRequest
from edge_agent.domain.promotion import (
    Benefit,
    BenefitKind,
    Limits,
    Member,
    OfflinePolicy,
)
from edge_agent.domain.token_check import TOKEN_GUESS_REASONS
from tests.domain.factories import (
    BASKET,
    NOW,
    SYNCED,
    code,
    facts,
    line,
    promotion,
    request,
    run,
)

A = code("HQ2P9X")
B = code("K7M4RT")
# 1% of 0.49 is 0.0049: half-up rounding gives 0 minor units, though the item qualifies.
SMALL_BASKET = Basket(lines=(line("GUM", 49),))
Scenario = tuple[ValidationRequest, dict[str, CodeFacts], datetime | None]


def generic(**changes: object) -> CodeFacts:
    """A shared code (influencer style): no member binding, capped at 100 uses."""
    promo = promotion(limits=Limits(total_uses_per_code=100), **changes)
    return facts(A, promo, member_id=None)


def used(**changes: object) -> UsageFacts:
    return UsageFacts(**changes)  # type: ignore[arg-type]


SCENARIOS: dict[str, tuple[Reason, Callable[[], Scenario]]] = {
    "malformed_check_char": (Reason.MALFORMED, lambda: (request(A[:-1] + "7"), {}, SYNCED)),
    "malformed_confusable": (Reason.MALFORMED, lambda: (request("SS0OHQ2P9X"), {}, SYNCED)),
    "not_found": (Reason.NOT_FOUND, lambda: (request(A), {}, SYNCED)),
    "not_started": (
        Reason.NOT_STARTED,
        lambda: (request(A), {A: facts(A, promotion(starts_at=NOW + timedelta(days=1)))}, SYNCED),
    ),
    "expired_code": (
        Reason.EXPIRED,
        lambda: (request(A), {A: facts(A, expires_at=NOW)}, SYNCED),
    ),
    "expired_campaign": (
        Reason.EXPIRED,
        lambda: (request(A), {A: facts(A, promotion(ends_at=NOW - timedelta(seconds=1)))}, SYNCED),
    ),
    "revoked_code": (
        Reason.REVOKED,
        lambda: (request(A), {A: facts(A, status=CodeStatus.REVOKED)}, SYNCED),
    ),
    "revoked_campaign": (
        Reason.REVOKED,
        lambda: (request(A), {A: facts(A, promotion(active=False))}, SYNCED),
    ),
    "already_redeemed": (
        Reason.ALREADY_REDEEMED,
        lambda: (
            request(A),
            {
                A: facts(
                    A,
                    usage=used(
                        code_uses=1,
                        last_redemption=RedemptionInfo(
                            at=NOW - timedelta(days=1),
                            store_id="S9",
                            till_id="TILL-3",
                            transaction_id="T-9",
                        ),
                    ),
                )
            },
            SYNCED,
        ),
    ),
    "reserved_elsewhere": (
        Reason.RESERVED_ELSEWHERE,
        lambda: (
            request(A),
            {
                A: facts(
                    A,
                    usage=used(
                        reservations=(
                            Reservation(
                                till_id="TILL-2",
                                store_id="S1",
                                transaction_id="T-200",
                                until=NOW + timedelta(minutes=2),
                            ),
                        )
                    ),
                )
            },
            SYNCED,
        ),
    ),
    "member_required_bound": (
        Reason.MEMBER_REQUIRED,
        lambda: (request(A, member_id=None), {A: facts(A)}, SYNCED),
    ),
    "member_required_linked": (
        Reason.MEMBER_REQUIRED,
        lambda: (
            request(A, member_id=None),
            {A: facts(A, member_id=None, linked_member_id="M-1")},
            SYNCED,
        ),
    ),
    "member_required_campaign": (
        Reason.MEMBER_REQUIRED,
        lambda: (request(A, member_id=None), {A: generic(requires_member=True)}, SYNCED),
    ),
    "wrong_member_bound": (
        Reason.WRONG_MEMBER,
        lambda: (request(A), {A: facts(A, member_id="M-2")}, SYNCED),
    ),
    "wrong_member_linked": (
        Reason.WRONG_MEMBER,
        lambda: (request(A), {A: facts(A, member_id=None, linked_member_id="M-2")}, SYNCED),
    ),
    "code_limit": (
        Reason.CODE_LIMIT_REACHED,
        lambda: (request(A), {A: replace(generic(), usage=used(code_uses=100))}, SYNCED),
    ),
    "member_limit": (
        Reason.MEMBER_LIMIT_REACHED,
        lambda: (
            request(A),
            {
                A: facts(
                    A,
                    promotion(limits=Limits(total_uses_per_code=100, uses_per_member=2)),
                    member_id=None,
                    usage=used(code_uses=5, member_code_uses=2),
                )
            },
            SYNCED,
        ),
    ),
    "velocity": (
        Reason.VELOCITY_LIMIT,
        lambda: (
            request(A),
            {
                A: facts(
                    A,
                    promotion(limits=Limits(member_velocity_count=2)),
                    usage=used(
                        member_recent_redemptions=(
                            NOW - timedelta(hours=1),
                            NOW - timedelta(hours=3),
                            NOW - timedelta(hours=30),  # outside the 24 h window
                        )
                    ),
                )
            },
            SYNCED,
        ),
    ),
    "budget_count": (
        Reason.CAMPAIGN_BUDGET_EXHAUSTED,
        lambda: (
            request(A),
            {A: facts(A, promotion(budget_count=10), usage=used(campaign_uses=10))},
            SYNCED,
        ),
    ),
    "budget_money_spent": (
        Reason.CAMPAIGN_BUDGET_EXHAUSTED,
        lambda: (
            request(A),
            {A: facts(A, promotion(budget_money=10_000), usage=used(campaign_money=10_000))},
            SYNCED,
        ),
    ),
    "budget_money_short": (
        Reason.CAMPAIGN_BUDGET_EXHAUSTED,
        lambda: (
            request(A),
            {A: facts(A, promotion(budget_money=10_000), usage=used(campaign_money=9_900))},
            SYNCED,
        ),
    ),
    "store_allocation": (
        Reason.STORE_ALLOCATION_EXHAUSTED,
        lambda: (
            request(A),
            {A: facts(A, promotion(store_allocation=5), usage=used(store_campaign_uses=5))},
            SYNCED,
        ),
    ),
    "wrong_store": (
        Reason.WRONG_STORE,
        lambda: (request(A), {A: facts(A, promotion(allowed_stores=frozenset({"S2"})))}, SYNCED),
    ),
    "min_spend": (
        Reason.MIN_SPEND_NOT_MET,
        lambda: (request(A), {A: facts(A, promotion(min_spend=2000))}, SYNCED),
    ),
    "min_qty": (
        Reason.MIN_QTY_NOT_MET,
        lambda: (
            request(A),
            {A: facts(A, promotion(min_quantity=3, eligible_categories=frozenset({"dairy"})))},
            SYNCED,
        ),
    ),
    "no_eligible_category": (
        Reason.NO_ELIGIBLE_ITEMS,
        lambda: (
            request(A),
            {A: facts(A, promotion(eligible_categories=frozenset({"pet"})))},
            SYNCED,
        ),
    ),
    "no_eligible_free_item": (
        Reason.NO_ELIGIBLE_ITEMS,
        lambda: (
            request(A),
            {A: facts(A, promotion(benefit=Benefit(kind=BenefitKind.FREE_ITEM, free_sku="TEA")))},
            SYNCED,
        ),
    ),
    "discount_rounds_to_zero": (
        Reason.DISCOUNT_ROUNDS_TO_ZERO,
        lambda: (
            request(A, basket=SMALL_BASKET),
            {A: facts(A, promotion(benefit=Benefit(kind=BenefitKind.PERCENT_OFF, value=100)))},
            SYNCED,
        ),
    ),
    "segment": (
        Reason.SEGMENT_NOT_ELIGIBLE,
        lambda: (
            request(A),
            {
                A: facts(
                    A,
                    promotion(eligible_segments=frozenset({"at_risk"})),
                    member=Member(member_id="M-1"),
                )
            },
            SYNCED,
        ),
    ),
    "not_combinable_pos": (
        Reason.NOT_COMBINABLE,
        lambda: (
            request(
                A,
                applied=(
                    AppliedPromotion(name="Spring sale", stacking_class="store_sale", discount=100),
                ),
            ),
            {A: facts(A)},
            SYNCED,
        ),
    ),
    "already_in_basket": (
        Reason.ALREADY_IN_BASKET,
        lambda: (request(A, A.lower()), {A: facts(A)}, SYNCED),
    ),
    "cache_never_synced": (Reason.CACHE_STALE, lambda: (request(A), {A: facts(A)}, None)),
    "cache_stale": (
        Reason.CACHE_STALE,
        lambda: (request(A), {A: facts(A)}, NOW - timedelta(hours=25)),
    ),
    "online_high_value": (
        Reason.ONLINE_CHECK_REQUIRED,
        lambda: (
            request(A),
            {A: facts(A, promotion(offline=OfflinePolicy(high_value_threshold=150)))},
            NOW - timedelta(hours=2),
        ),
    ),
    "online_uncapped": (
        Reason.ONLINE_CHECK_REQUIRED,
        lambda: (
            request(A),
            {A: facts(A, promotion(limits=Limits(total_uses_per_code=None)), member_id=None)},
            NOW - timedelta(hours=2),
        ),
    ),
}


def last_refusal(scenario: Scenario) -> Refused:
    req, known, synced = scenario
    decisions = run(req, known, synced)
    decision = decisions[-1]
    assert isinstance(decision, Refused), decision
    return decision


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_reason_is_produced(name: str) -> None:
    expected, build = SCENARIOS[name]
    decision = last_refusal(build())
    assert decision.reason is expected
    assert decision.cashier_message and decision.customer_message
    json.dumps(decision.details)  # JSON-able as promised


def test_every_reason_but_throttling_has_a_scenario() -> None:
    produced = {reason for reason, _ in SCENARIOS.values()}
    # Throttling and signed-token refusals are the service layer's: tested in tests/store,
    # tests/api and tests/signing.
    assert produced == set(Reason) - {Reason.TILL_THROTTLED} - TOKEN_GUESS_REASONS


def test_baseline_is_accepted() -> None:
    (decision,) = run(request(A), {A: facts(A)})
    assert isinstance(decision, Accepted)
    assert decision.discount == 155


def test_a_percentage_rounding_to_nothing_says_so() -> None:
    decision = last_refusal(SCENARIOS["discount_rounds_to_zero"][1]())
    # The item qualifies: saying it does not would send the cashier looking for the wrong fault.
    assert "qualif" not in decision.customer_message.lower()
    assert "0.49" in decision.cashier_message and "1%" in decision.cashier_message
    assert decision.details == {"eligible_amount": 49, "percent_bp": 100}


def test_malformed_carries_the_hint() -> None:
    decision = last_refusal(SCENARIOS["malformed_check_char"][1]())
    assert "check character" in decision.details["hint"]  # type: ignore[operator]
    assert decision.details["hint"] in decision.cashier_message  # type: ignore[operator]


def test_already_redeemed_says_when_and_where() -> None:
    decision = last_refusal(SCENARIOS["already_redeemed"][1]())
    assert decision.details == {
        "redeemed_at": (NOW - timedelta(days=1)).isoformat(),
        "store_id": "S9",
        "till_id": "TILL-3",
        "transaction_id": "T-9",
    }
    assert "S9" in decision.cashier_message


def test_not_started_retry_is_the_start() -> None:
    decision = last_refusal(SCENARIOS["not_started"][1]())
    assert decision.retry_after == NOW + timedelta(days=1)


def test_velocity_retry_is_when_the_oldest_in_window_leaves() -> None:
    decision = last_refusal(SCENARIOS["velocity"][1]())
    assert decision.retry_after == NOW - timedelta(hours=3) + timedelta(hours=24)
    assert decision.details["recent"] == 2


def test_min_spend_shortfall_counts_pos_discounts() -> None:
    decision = last_refusal(SCENARIOS["min_spend"][1]())
    assert decision.details["shortfall"] == 2000 - 1550
    req = request(
        A, applied=(AppliedPromotion(name="Tier", stacking_class="tier_discount", discount=100),)
    )
    (with_tier,) = run(req, {A: facts(A, promotion(min_spend=2000))})
    assert isinstance(with_tier, Refused)
    assert with_tier.details["shortfall"] == 2000 - 1450


def test_min_qty_shortfall() -> None:
    assert last_refusal(SCENARIOS["min_qty"][1]()).details["shortfall"] == 1


def test_money_budget_refuses_when_the_discount_exceeds_what_is_left() -> None:
    decision = last_refusal(SCENARIOS["budget_money_short"][1]())
    assert decision.details["left"] == 100
    assert decision.details["discount"] == 155
    # Exactly what is left still fits.
    known = {A: facts(A, promotion(budget_money=10_000), usage=used(campaign_money=9_845))}
    assert run(request(A), known)[0].ok


def test_not_combinable_names_the_conflict_and_rule() -> None:
    decision = last_refusal(SCENARIOS["not_combinable_pos"][1]())
    assert decision.details["conflict"] == "Spring sale"
    assert decision.details["conflict_class"] == "store_sale"
    assert "store sale" in str(decision.details["rule"])


def test_reservation_of_this_transaction_or_lapsed_does_not_block() -> None:
    hold = Reservation(
        till_id="TILL-1", store_id="S1", transaction_id="T-100", until=NOW + timedelta(minutes=1)
    )
    lapsed = replace(hold, transaction_id="T-7", until=NOW)
    known = {A: facts(A, usage=used(reservations=(hold, lapsed)))}
    assert run(request(A), known)[0].ok


def test_reservations_on_a_multi_use_code_only_block_the_last_uses() -> None:
    hold = Reservation(
        till_id="TILL-2", store_id="S1", transaction_id="T-7", until=NOW + timedelta(minutes=1)
    )
    known = {A: replace(generic(), usage=used(code_uses=98, reservations=(hold,)))}
    assert run(request(A), known)[0].ok
    known = {A: replace(generic(), usage=used(code_uses=99, reservations=(hold,)))}
    decision = run(request(A), known)[0]
    assert isinstance(decision, Refused)
    assert decision.reason is Reason.RESERVED_ELSEWHERE
    assert decision.retry_after == hold.until


def test_expiry_is_the_earlier_of_code_and_campaign() -> None:
    later = facts(A, promotion(ends_at=NOW), expires_at=NOW + timedelta(days=30))
    decision = run(request(A), {A: later})[0]
    assert isinstance(decision, Refused)
    assert decision.details["expiry_of"] == "campaign"
    assert run(request(A), {A: facts(A, expires_at=NOW + timedelta(seconds=1))})[0].ok


def test_ownership_is_checked_before_state() -> None:
    # Someone else's expired, used code: the till learns only that it is not theirs.
    stranger = facts(
        A, member_id="M-2", expires_at=NOW - timedelta(days=1), usage=used(code_uses=1)
    )
    decision = run(request(A), {A: stranger})[0]
    assert isinstance(decision, Refused)
    assert decision.reason is Reason.WRONG_MEMBER


def test_fresh_cache_accepts_high_value_and_uncapped() -> None:
    for name in ("online_high_value", "online_uncapped"):
        req, known, _ = SCENARIOS[name][1]()
        assert run(req, known, NOW - timedelta(minutes=30))[0].ok


def test_till_throttled_is_never_produced_here() -> None:
    reasons: set[Reason] = set()
    for _, build in SCENARIOS.values():
        req, known, synced = build()
        reasons.update(d.reason for d in run(req, known, synced) if isinstance(d, Refused))
    assert Reason.TILL_THROTTLED not in reasons
    assert BASKET.total == 1550
