"""Earn: band multipliers, campaigns, tiers, floor rounding, no points on points, A/B trials."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from edge_agent.domain.basket import Basket
from edge_agent.domain.points_rules.earn import (
    CONTROL,
    TRIAL,
    EarnCampaign,
    EarnPolicy,
    EarnRules,
    EarnTrial,
    compute_earn,
    exposed,
)
from edge_agent.domain.points_rules.margin import MarginBand
from edge_agent.domain.promotion import Member
from tests.points_rules.factories import KEY, MEMBER, NOW, POLICY, RULES, banded, costed


def campaign(cid: str, multiplier_bp: int, **changes: object) -> EarnCampaign:
    base = EarnCampaign(
        campaign_id=cid,
        starts_at=NOW - timedelta(days=1),
        ends_at=NOW + timedelta(days=1),
        multiplier_bp=multiplier_bp,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def with_rules(**changes: object) -> EarnPolicy:
    return replace(POLICY, rules=replace(RULES, **changes))  # type: ignore[arg-type]


def test_band_a_earns_5x_band_b_1x_band_c_nothing() -> None:
    basket = Basket(
        lines=(
            costed("wine", 2000, 900, quantity=2),  # 55%: A, 40.00 -> 40 * 5
            costed("bread", 300, 200),  # 33%: B, 3.00 -> 3
            costed("sugar", 1000, 950),  # 5%: C -> 0
        )
    )
    result = compute_earn(POLICY, basket, MEMBER, NOW)
    assert [(x.band, x.points) for x in result.lines] == [
        (MarginBand.A, 200),
        (MarginBand.B, 3),
        (MarginBand.C, 0),
    ]
    assert result.points == 203
    assert {(x.rules_version, x.variant) for x in result.lines} == {("v1", CONTROL)}


def test_rounding_is_floor_per_line() -> None:
    basket = Basket(lines=(banded("a", 199, "B"), banded("b", 199, "B")))
    assert [x.points for x in compute_earn(POLICY, basket, MEMBER, NOW).lines] == [1, 1]


def test_tier_and_best_running_campaign_multiply_the_band() -> None:
    policy = with_rules(
        tier_bp={"gold": 15_000},
        campaigns=(
            campaign("double", 20_000),
            campaign("triple-dairy", 30_000, categories=frozenset({"dairy"})),
            campaign("future", 90_000, starts_at=NOW + timedelta(hours=1)),
            campaign("over", 90_000, ends_at=NOW),  # the end is exclusive
        ),
    )
    gold = Member(member_id="M-9", tier="gold")
    basket = Basket(
        lines=(
            costed("milk", 1000, 700, category="dairy"),  # B: 10 * 1.5 * 3
            costed("tea", 1000, 700, category="drinks"),  # B: 10 * 1.5 * 2
        )
    )
    lines = compute_earn(policy, basket, gold, NOW).lines
    assert [(x.points, x.campaign_id) for x in lines] == [(45, "triple-dairy"), (30, "double")]


def test_points_are_not_earned_on_what_points_paid() -> None:
    basket = Basket(lines=(costed("wine", 2000, 900),))
    assert compute_earn(POLICY, basket, MEMBER, NOW, {0: 500}).lines[0].points == 75
    assert compute_earn(POLICY, basket, MEMBER, NOW, {0: 5000}).lines[0].points == 0


def test_returned_or_free_lines_earn_nothing() -> None:
    basket = Basket(lines=(banded("a", 500, "A", quantity=-1), banded("b", 0, "A")))
    assert compute_earn(POLICY, basket, MEMBER, NOW).points == 0


def test_trial_rules_reach_their_share_and_say_so_on_every_line() -> None:
    trial_rules = replace(RULES, version="v2-trial", band_b_bp=20_000)
    policy = replace(POLICY, trial=EarnTrial(rules=trial_rules, share_bp=2_000))
    basket = Basket(lines=(banded("a", 1000, "B"),))
    members = [Member(member_id=f"M-{i}") for i in range(400)]
    results = [compute_earn(policy, basket, m, NOW) for m in members]
    trial = [r for r in results if r.variant == TRIAL]
    assert 40 <= len(trial) <= 120
    assert all(r.lines[0].rules_version == "v2-trial" and r.points == 20 for r in trial)
    assert all(r.rules_version == "v1" and r.points == 10 for r in results if r not in trial)
    again = [compute_earn(policy, basket, m, NOW).variant for m in members]
    assert again == [r.variant for r in results]


def test_campaign_exposure_is_a_deterministic_gate_and_logged_when_held_out() -> None:
    policy = with_rules(campaigns=(campaign("gate", 20_000, exposure_bp=5_000),))
    basket = Basket(lines=(banded("a", 1000, "B"),))
    for i in range(50):
        member = Member(member_id=f"M-{i}")
        line = compute_earn(policy, basket, member, NOW).lines[0]
        shown = exposed(KEY, "points-campaign:gate", member.member_id, 5_000)
        assert line.points == (20 if shown else 10)
        assert line.held_out_campaigns == (() if shown else ("gate",))
        assert line.campaign_id == ("gate" if shown else None)


@pytest.mark.parametrize(
    "changes", [{"band_a_bp": -1}, {"tier_bp": {"x": -1}}, {"minor_per_unit": 0}]
)
def test_rules_refuse_negative_factors(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must"):
        EarnRules(version="v", **changes)  # type: ignore[arg-type]
