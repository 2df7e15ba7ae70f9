"""The rules of a return (domain/reversal.py): how much goes back, and when the use does too."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edge_agent.domain.reversal import ReversalPlan, TooLarge, plan_reversal


def test_no_amount_gives_back_all_that_is_left_and_the_use() -> None:
    plan = plan_reversal(total=900, reversed_so_far=300, fully_reversed=False, requested=None)
    assert plan == ReversalPlan(amount=600, remaining=0, full=True)


def test_a_partial_return_gives_back_money_only() -> None:
    plan = plan_reversal(total=900, reversed_so_far=0, fully_reversed=False, requested=200)
    assert plan == ReversalPlan(amount=200, remaining=700, full=False)


def test_more_than_is_left_is_refused_with_what_is_left() -> None:
    plan = plan_reversal(total=900, reversed_so_far=800, fully_reversed=False, requested=101)
    assert plan == TooLarge(requested=101, remaining=100)


def test_nothing_goes_back_once_fully_reversed() -> None:
    plan = plan_reversal(total=900, reversed_so_far=900, fully_reversed=True, requested=None)
    assert plan == TooLarge(requested=0, remaining=0)


@given(total=st.integers(1, 10_000), cuts=st.lists(st.integers(1, 10_000), max_size=8))
def test_partial_returns_never_exceed_the_discount_and_the_last_one_gives_the_use(
    total: int, cuts: list[int]
) -> None:
    given_back, fully = 0, False
    for cut in [*cuts, None]:
        plan = plan_reversal(
            total=total, reversed_so_far=given_back, fully_reversed=fully, requested=cut
        )
        if isinstance(plan, TooLarge):
            assert fully or (cut is not None and cut > total - given_back)
            continue
        given_back += plan.amount
        assert plan.remaining == total - given_back >= 0
        assert plan.full == (given_back == total)
        fully = plan.full
    assert given_back == total and fully
