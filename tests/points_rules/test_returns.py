"""Returns reverse earn and burn exactly; the demo checkout; bad returns are typed refusals."""

from __future__ import annotations

from edge_agent.domain.basket import Basket
from edge_agent.domain.points_rules.burn import plan_burn
from edge_agent.domain.points_rules.earn import compute_earn
from edge_agent.domain.points_rules.offline_bound import availability
from edge_agent.domain.points_rules.returns import (
    ReturnedLine,
    ReturnProblem,
    ReturnRefused,
    Reversal,
    reverse,
)
from tests.points_rules.factories import BURN, MEMBER, NOW, POLICY, costed

# The demo: 3 bottles of band A wine and 4 bags of band C sugar; the member burns on the sugar.
BASKET = Basket(lines=(costed("wine", 2000, 900, quantity=3), costed("sugar", 1000, 900, 4)))
AVAILABLE = availability(synced_balance=1_000, unsynced_postings=(), allowance=0)
BURNED = plan_burn(BURN, BASKET, AVAILABLE, requested=300)
EARNED = compute_earn(POLICY, BASKET, MEMBER, NOW, BURNED.discount_by_line())


def reversal(*items: tuple[int, int], before: dict[int, int] | None = None) -> Reversal:
    out = reverse(
        earn=EARNED,
        burn=BURNED,
        returning=[ReturnedLine(index=i, quantity=q) for i, q in items],
        already_returned=before,
    )
    assert isinstance(out, Reversal)
    return out


def test_demo_checkout_earns_on_band_a_and_burns_on_band_c() -> None:
    assert [x.points for x in BURNED.lines] == [300]  # all on sugar: 4.00 off at 1.2x...
    assert BURNED.lines[0].sku == "sugar"
    assert BURNED.lines[0].discount == 360
    assert [x.points for x in EARNED.lines] == [300, 0]  # 60.00 of wine at 5x, sugar 0x


def test_partial_returns_add_up_to_the_full_return() -> None:
    first = reversal((0, 1), (1, 1))
    second = reversal((1, 2), before={0: 1, 1: 1})
    last = reversal((0, 2), (1, 1), before={0: 1, 1: 3})
    full = reversal((0, 3), (1, 4))
    assert (first.points_taken_back, first.points_given_back) == (100, 75)
    parts = (first, second, last)
    assert sum(p.points_taken_back for p in parts) == full.points_taken_back == 300
    assert sum(p.points_given_back for p in parts) == full.points_given_back == 300
    assert sum(x.discount_reversed for p in parts for x in p.lines) == 360
    assert full.net == 0


def test_a_return_without_a_burn_only_takes_back() -> None:
    out = reverse(earn=EARNED, burn=None, returning=[ReturnedLine(index=0, quantity=3)])
    assert isinstance(out, Reversal)
    assert (out.points_taken_back, out.points_given_back, out.net) == (300, 0, -300)


def test_bad_returns_are_refused_with_numbers() -> None:
    cases = [
        ([ReturnedLine(index=7, quantity=1)], {}, ReturnProblem.UNKNOWN_LINE),
        ([ReturnedLine(index=0, quantity=0)], {}, ReturnProblem.BAD_QUANTITY),
        ([ReturnedLine(index=0, quantity=2)], {0: 2}, ReturnProblem.MORE_THAN_SOLD),
        (
            [ReturnedLine(index=1, quantity=3), ReturnedLine(index=1, quantity=2)],
            {},
            ReturnProblem.MORE_THAN_SOLD,
        ),
    ]
    for returning, before, problem in cases:
        out = reverse(earn=EARNED, burn=BURNED, returning=returning, already_returned=before)
        assert isinstance(out, ReturnRefused)
        assert out.problem is problem
    refused = reverse(
        earn=EARNED,
        burn=BURNED,
        returning=[ReturnedLine(index=0, quantity=2)],
        already_returned={0: 2},
    )
    assert isinstance(refused, ReturnRefused)
    assert (refused.sold, refused.already_returned, refused.quantity) == (3, 2, 2)
