"""Hypothesis: earn never negative, burn within balance and floors, returns sum exactly, A/B."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.domain.basket import Basket, BasketLine
from edge_agent.domain.points_rules.burn import BurnRules, plan_burn
from edge_agent.domain.points_rules.earn import compute_earn, exposed
from edge_agent.domain.points_rules.margin import BP, assess
from edge_agent.domain.points_rules.offline_bound import availability
from edge_agent.domain.points_rules.returns import ReturnedLine, Reversal, reverse
from edge_agent.domain.promotion import Member
from tests.points_rules.factories import KEY, NOW, POLICY

lines = st.builds(
    BasketLine,
    sku=st.sampled_from(["a", "b", "c", "d"]),
    category=st.sampled_from(["dairy", "wine"]),
    quantity=st.integers(-2, 6),
    unit_price=st.integers(-100, 5_000),
    margin_band=st.sampled_from(["A", "B", "C", "Z"]),
    unit_cost=st.none() | st.integers(-100, 6_000),
)
baskets = st.builds(Basket, lines=st.lists(lines, max_size=6).map(tuple))
rules = st.builds(
    BurnRules,
    points_per_unit=st.integers(1, 1_000),
    minor_per_unit=st.sampled_from([1, 100, 1000]),
    margin_floor_bp=st.integers(0, 9_999),
    clearance_floor_bp=st.integers(0, 9_999),
    clearance_value_bp=st.integers(1, 30_000),
)
members = st.builds(Member, member_id=st.text(min_size=1, max_size=12), tier=st.just("standard"))


@given(basket=baskets, member=members, paid=st.dictionaries(st.integers(0, 5), st.integers()))
def test_earn_is_never_negative(basket: Basket, member: Member, paid: dict[int, int]) -> None:
    result = compute_earn(POLICY, basket, member, NOW, paid)
    assert all(line.points >= 0 and line.earnable >= 0 for line in result.lines)
    assert len(result.lines) == len(basket.lines)


@given(
    basket=baskets,
    burn=rules,
    synced=st.integers(-1_000, 100_000),
    unsynced=st.lists(st.integers(-500, 500), max_size=4),
    allowance=st.integers(0, 1_000),
    requested=st.none() | st.integers(-10, 200_000),
)
def test_burn_stays_within_availability_and_margin_floors(
    *,
    basket: Basket,
    burn: BurnRules,
    synced: int,
    unsynced: list[int],
    allowance: int,
    requested: int | None,
) -> None:
    available = availability(synced_balance=synced, unsynced_postings=unsynced, allowance=allowance)
    plan = plan_burn(burn, basket, available, requested)
    assert 0 <= plan.granted <= max(0, synced + sum(unsynced) + allowance)
    assert plan.granted == sum(x.points for x in plan.lines)
    if requested is not None:
        assert plan.granted <= max(0, requested)
        assert (plan.shortfall is None) == (0 <= requested <= plan.granted)
    for spent in plan.lines:
        line = basket.lines[spent.index]
        margin = assess(line, burn.bands)
        assert margin.margin_bp is not None
        assert 0 <= spent.discount <= line.total
        # The margin after the discount stays at or above the floor, on the cost used.
        cost = (
            line.quantity * line.unit_cost
            if margin.cost_known and line.unit_cost is not None
            else -(-line.total * (BP - margin.margin_bp) // BP)
        )
        net = line.total - spent.discount
        assert (net - cost) * BP >= burn.floor_bp(spent.band) * net
        assert spent.discount <= spent.points * burn.minor_per_unit * burn.value_bp(spent.band) / (
            burn.points_per_unit * BP
        )


@st.composite
def return_sequences(draw: st.DrawFn, sold: tuple[int, ...]) -> list[list[tuple[int, int]]]:
    """Split every line's units into a random sequence of partial returns."""
    left = {i: q for i, q in enumerate(sold) if q > 0}
    steps: list[list[tuple[int, int]]] = []
    while left:
        step = []
        for i in draw(st.permutations(sorted(left))):
            if draw(st.booleans()) or not step:
                q = draw(st.integers(1, left[i]))
                step.append((i, q))
                left[i] -= q
                if not left[i]:
                    del left[i]
        steps.append(step)
    return steps


@settings(max_examples=200)
@given(data=st.data(), basket=baskets, burn=rules, balance=st.integers(0, 100_000))
def test_partial_returns_sum_exactly_to_the_full_return(
    data: st.DataObject, basket: Basket, burn: BurnRules, balance: int
) -> None:
    available = availability(synced_balance=balance, unsynced_postings=(), allowance=0)
    burned = plan_burn(burn, basket, available)
    earned = compute_earn(POLICY, basket, Member(member_id="M"), NOW, burned.discount_by_line())
    sold = tuple(max(0, line.quantity) for line in basket.lines)
    steps = data.draw(return_sequences(sold))
    before: dict[int, int] = {}
    taken = given_back = discount = 0
    for step in steps:
        out = reverse(
            earn=earned,
            burn=burned,
            returning=[ReturnedLine(index=i, quantity=q) for i, q in step],
            already_returned=dict(before),
        )
        assert isinstance(out, Reversal)
        assert out.points_taken_back >= 0 and out.points_given_back >= 0
        taken += out.points_taken_back
        given_back += out.points_given_back
        discount += sum(x.discount_reversed for x in out.lines)
        for i, q in step:
            before[i] = before.get(i, 0) + q
    returnable = {i for i, q in enumerate(sold) if q > 0}
    assert taken == sum(x.points for x in earned.lines if x.index in returnable)
    assert given_back == sum(x.points for x in burned.lines if x.index in returnable)
    assert discount == sum(x.discount for x in burned.lines if x.index in returnable)


@given(share_bp=st.integers(0, BP), cohort=st.text(min_size=1, max_size=8))
@settings(max_examples=25)
def test_ab_split_is_deterministic_and_near_its_share(share_bp: int, cohort: str) -> None:
    n = 2_000
    ids = [f"M-{i}" for i in range(n)]
    first = [exposed(KEY, cohort, m, share_bp) for m in ids]
    assert first == [exposed(KEY, cohort, m, share_bp) for m in ids]
    # Binomial(n, p): 5 standard deviations either side, plus one for p at 0 or 1.
    p = share_bp / BP
    assert abs(sum(first) - n * p) <= 5 * (n * p * (1 - p)) ** 0.5 + 1
