"""The fold: exactly once, opening first, no overdraft, balances at any point in time."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from edge_agent.domain.points import kinds
from edge_agent.domain.points.accounts import Category, MemberAccount, breakage, liability
from edge_agent.domain.points.admission import (
    Admitted,
    OverdraftPolicy,
    Overdrawn,
    Replayed,
)
from edge_agent.domain.points.errors import (
    AccountAlreadyOpenError,
    AccountNotOpenError,
    BeforeOpeningError,
    EventConflictError,
)
from edge_agent.domain.points.event import EventKind
from edge_agent.domain.points.expiry import expiry
from edge_agent.domain.points.ledger import Ledger
from tests.points.factories import HQ, T0, TILL, P, acct

A, B = acct("alice"), acct("bob")
H = timedelta(hours=1)


def opened(*accounts: MemberAccount, points: int = 0) -> Ledger:
    ledger = Ledger()
    for i, a in enumerate(accounts):
        ledger.apply(
            kinds.opening(event_id=f"open-{i}", at=T0, origin=HQ, account=a, points=points)
        )
    return ledger


def test_earn_then_burn_moves_balances_and_everything_sums_to_zero() -> None:
    ledger = opened(A)
    assert isinstance(
        ledger.apply(kinds.earn(event_id="e", at=T0 + H, origin=TILL, account=A, points=100)),
        Admitted,
    )
    ledger.apply(kinds.burn(event_id="b", at=T0 + 2 * H, origin=TILL, account=A, points=30))
    assert ledger.balance(A) == 70
    assert ledger.balance(liability(P)) == -70
    assert sum(ledger.balance(a) for a in ledger.accounts()) == 0
    assert [e.posting.signed for e in ledger.entries(A)] == [0, 100, -30]


def test_a_replay_is_a_no_op_and_a_conflicting_replay_is_refused() -> None:
    ledger = opened(A)
    earn = kinds.earn(event_id="e", at=T0 + H, origin=TILL, account=A, points=100)
    ledger.apply(earn)
    before = ledger.events
    assert ledger.apply(earn) == Replayed(earn)
    with pytest.raises(EventConflictError):
        ledger.apply(
            replace(
                earn,
                postings=kinds.earn(
                    event_id="e", at=T0 + H, origin=TILL, account=A, points=99
                ).postings,
            )
        )
    assert ledger.events == before
    assert ledger.balance(A) == 100


def test_a_burn_beyond_the_balance_is_refused_with_the_shortfall() -> None:
    ledger = opened(A, points=40)
    burn = kinds.burn(event_id="b", at=T0 + H, origin=TILL, account=A, points=55)
    assert ledger.apply(burn) == Overdrawn(
        event_id="b", account=A, balance=40, points=55, shortfall=15
    )
    assert ledger.balance(A) == 40
    assert ledger.event("b") is None
    transfer = kinds.transfer(
        event_id="t", at=T0 + H, origin=TILL, sender=A, recipient=B, points=41
    )
    ledger.apply(kinds.opening(event_id="ob", at=T0, origin=HQ, account=B))
    refused = ledger.apply(transfer)
    assert isinstance(refused, Overdrawn)
    assert refused.shortfall == 1


def test_a_refund_may_go_negative_by_default_and_the_policy_decides() -> None:
    ledger = opened(A)
    refund = kinds.refund_return(
        event_id="r", at=T0 + H, origin=TILL, account=A, returned=20, restored=0
    )
    assert isinstance(ledger.apply(refund), Admitted)
    assert ledger.balance(A) == -20
    # a credit on a negative account is always welcome, even a small one
    assert isinstance(
        ledger.apply(kinds.earn(event_id="e", at=T0 + 2 * H, origin=TILL, account=A, points=5)),
        Admitted,
    )
    # a further debit is refused; the shortfall counts only what this event takes
    refused = ledger.apply(
        kinds.burn(event_id="b", at=T0 + 3 * H, origin=TILL, account=A, points=3)
    )
    assert isinstance(refused, Overdrawn)
    assert refused.shortfall == 3

    strict = Ledger(policy=OverdraftPolicy(may_go_negative=frozenset()))
    strict.apply(kinds.opening(event_id="o", at=T0, origin=HQ, account=A))
    assert isinstance(strict.apply(refund), Overdrawn)
    lax = Ledger(policy=OverdraftPolicy(may_go_negative=frozenset({EventKind.BURN})))
    lax.apply(kinds.opening(event_id="o", at=T0, origin=HQ, account=A))
    assert isinstance(
        lax.apply(kinds.burn(event_id="b", at=T0 + H, origin=TILL, account=A, points=3)),
        Admitted,
    )


def test_an_account_starts_with_its_opening_entry_and_nothing_precedes_it() -> None:
    ledger = Ledger()
    earn = kinds.earn(event_id="e", at=T0 + H, origin=TILL, account=A, points=10)
    with pytest.raises(AccountNotOpenError):
        ledger.apply(earn)
    ledger.apply(kinds.opening(event_id="o", at=T0, origin=HQ, account=A))
    with pytest.raises(AccountAlreadyOpenError):
        ledger.apply(kinds.opening(event_id="o2", at=T0, origin=HQ, account=A))
    with pytest.raises(BeforeOpeningError):
        ledger.apply(kinds.earn(event_id="early", at=T0 - H, origin=TILL, account=A, points=1))
    ledger.apply(earn)
    assert [e.event.event_id for e in ledger.entries(A)] == ["o", "e"]


def test_balances_at_any_point_in_time_including_late_events() -> None:
    ledger = opened(A, points=10)
    ledger.apply(kinds.earn(event_id="e3", at=T0 + 3 * H, origin=TILL, account=A, points=5))
    # from a till that was offline: dated before the earn above, applied after it
    ledger.apply(kinds.earn(event_id="e1", at=T0 + H, origin=TILL, account=A, points=7))
    assert ledger.balance(A, as_of=T0 - H) == 0
    assert ledger.balance(A, as_of=T0) == 10
    assert ledger.balance(A, as_of=T0 + 2 * H) == 17
    assert ledger.balance(A, as_of=T0 + 3 * H) == 22 == ledger.balance(A)


def test_merge_moves_the_victims_balances_to_the_survivor() -> None:
    ledger = opened(A, B, acct("bob", Category.PROMISED))
    ledger.apply(kinds.earn(event_id="e", at=T0 + H, origin=TILL, account=B, points=30))
    ledger.apply(
        kinds.refund_return(
            event_id="r",
            at=T0 + H,
            origin=TILL,
            account=acct("bob", Category.PROMISED),
            returned=4,
            restored=0,
        )
    )
    merge = kinds.merge(
        event_id="m",
        at=T0 + 2 * H,
        origin=HQ,
        programme=P,
        victim="bob",
        survivor="alice",
        victim_balances=ledger.member_balances(P, "bob"),
    )
    with pytest.raises(AccountNotOpenError):  # alice has no promised account yet
        ledger.apply(merge)
    ledger.apply(
        kinds.opening(event_id="oap", at=T0, origin=HQ, account=acct("alice", Category.PROMISED))
    )
    assert isinstance(ledger.apply(merge), Admitted)
    assert ledger.member_balances(P, "bob") == {Category.REGULAR: 0, Category.PROMISED: 0}
    assert ledger.member_balances(P, "alice") == {Category.REGULAR: 30, Category.PROMISED: -4}


def test_expiry_goes_to_breakage() -> None:
    ledger = opened(A)
    ledger.apply(kinds.earn(event_id="e", at=T0 + H, origin=TILL, account=A, points=30))
    now = T0 + timedelta(days=400)
    event = expiry(
        event_id="x",
        now=now,
        origin=HQ,
        account=A,
        entries=ledger.entries(A),
        validity=timedelta(days=365),
    )
    assert event is not None
    ledger.apply(event)
    assert ledger.balance(A) == 0
    assert ledger.balance(breakage(P)) == 30
    again = expiry(
        event_id="x2",
        now=now,
        origin=HQ,
        account=A,
        entries=ledger.entries(A),
        validity=timedelta(days=365),
    )
    assert again is None
