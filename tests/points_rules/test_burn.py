"""Burn: value and band C's 1.2x, margin floors, allocation, and every reason for not more."""

from __future__ import annotations

from edge_agent.domain.basket import Basket
from edge_agent.domain.points_rules.burn import BurnLimit, plan_burn
from edge_agent.domain.points_rules.margin import MarginBand
from edge_agent.domain.points_rules.offline_bound import Availability, availability
from tests.points_rules.factories import BURN, banded, costed


def balance(points: int, allowance: int = 0, unsynced: tuple[int, ...] = ()) -> Availability:
    return availability(synced_balance=points, unsynced_postings=unsynced, allowance=allowance)


# Band C sugar: 10.00, cost 9.00 (10%), floor 0: up to 1.00 off, at 1.2 cents a point -> 83 pts.
SUGAR = costed("sugar", 1000, 900)
# Band A wine: 20.00, cost 9.00, floor 10%: net >= 10.00, so up to 10.00 off -> 1000 points.
WINE = costed("wine", 2000, 900)


def test_band_c_burns_at_one_point_two_times_face_value() -> None:
    plan = plan_burn(BURN, Basket(lines=(SUGAR,)), balance(10_000))
    assert plan.max_burnable == 83
    (line,) = plan.lines
    assert (line.band, line.points, line.discount) == (MarginBand.C, 83, 99)
    assert plan.caps[0].max_discount == 100


def test_the_most_valuable_points_are_spent_first() -> None:
    plan = plan_burn(BURN, Basket(lines=(WINE, SUGAR)), balance(10_000), requested=500)
    assert [(x.sku, x.points, x.discount) for x in plan.lines] == [
        ("wine", 417, 417),
        ("sugar", 83, 99),
    ]
    assert plan.granted == 500
    assert plan.shortfall is None


def test_margin_floor_caps_the_burn_with_its_numbers() -> None:
    plan = plan_burn(BURN, Basket(lines=(WINE, SUGAR)), balance(10_000), requested=5_000)
    assert plan.granted == plan.eligible == 1083
    assert plan.shortfall is not None
    assert plan.shortfall.reason is BurnLimit.MARGIN_FLOOR
    assert (plan.shortfall.requested, plan.shortfall.eligible) == (5_000, 1083)
    assert [c.floor_bp for c in plan.caps] == [1000, 0]


def test_insufficient_balance_counts_unsynced_postings() -> None:
    available = balance(400, unsynced=(-150, 20))
    assert (available.known, available.available) == (270, 270)
    plan = plan_burn(BURN, Basket(lines=(WINE,)), available, requested=300)
    assert plan.granted == 270
    assert plan.shortfall is not None
    assert plan.shortfall.reason is BurnLimit.INSUFFICIENT_BALANCE
    assert plan.shortfall.availability.known == 270


def test_offline_allowance_is_spent_and_then_named_as_the_limit() -> None:
    plan = plan_burn(BURN, Basket(lines=(WINE,)), balance(200, allowance=50), requested=300)
    assert plan.granted == 250
    assert plan.shortfall is not None
    assert plan.shortfall.reason is BurnLimit.OFFLINE_ALLOWANCE_EXCEEDED
    within = plan_burn(BURN, Basket(lines=(WINE,)), balance(200, allowance=50), requested=240)
    assert (within.granted, within.shortfall) == (240, None)


def test_nothing_eligible_when_no_line_can_take_a_point() -> None:
    basket = Basket(lines=(banded("clearance", 1000, "C"), costed("loss", 1000, 1100)))
    plan = plan_burn(BURN, basket, balance(10_000), requested=10)
    assert plan.granted == 0
    assert plan.lines == ()
    assert plan.shortfall is not None
    assert plan.shortfall.reason is BurnLimit.NOTHING_ELIGIBLE


def test_empty_balance_is_the_reason_before_the_basket() -> None:
    plan = plan_burn(BURN, Basket(lines=(banded("c", 1000, "C"),)), balance(0), requested=10)
    assert plan.shortfall is not None
    assert plan.shortfall.reason is BurnLimit.INSUFFICIENT_BALANCE


def test_a_negative_request_is_a_typed_refusal() -> None:
    plan = plan_burn(BURN, Basket(lines=(WINE,)), balance(100), requested=-5)
    assert plan.granted == 0
    assert plan.shortfall is not None
    assert plan.shortfall.reason is BurnLimit.INVALID_REQUEST


def test_an_overdrawn_member_has_nothing_available() -> None:
    available = balance(-30, allowance=20)
    assert available.available == 0
    assert plan_burn(BURN, Basket(lines=(WINE,)), available).max_burnable == 0
