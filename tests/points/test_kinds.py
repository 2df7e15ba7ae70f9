"""Each kind of ledger event: who is credited, who debited, and that it balances."""

from __future__ import annotations

from datetime import timedelta

import pytest

from edge_agent.domain.points import kinds
from edge_agent.domain.points.accounts import Category, MemberAccount, liability
from edge_agent.domain.points.errors import (
    ForeignAccountError,
    InvalidPointsError,
    MalformedEventError,
    UnbalancedEventError,
)
from edge_agent.domain.points.event import (
    EventKind,
    LedgerEvent,
    Posting,
    Side,
    reversal_of,
)
from tests.points.factories import HQ, T0, TILL, P, acct

A, B = acct("alice"), acct("bob")
L = liability(P)
C, D = Side.CREDIT, Side.DEBIT


def sides(event: LedgerEvent) -> list[tuple[object, Side, int]]:
    return [(p.account, p.side, p.points) for p in event.postings]


def test_earn_credits_the_member_and_debits_the_liability() -> None:
    e = kinds.earn(event_id="e1", at=T0, origin=TILL, account=A, points=50, campaign="spring")
    assert sides(e) == [(A, C, 50), (L, D, 50)]
    assert e.kind is EventKind.EARN
    assert e.campaign == "spring"
    assert e.member_net() == 50


@pytest.mark.parametrize(
    ("make", "kind", "member_side"),
    [
        (kinds.burn, EventKind.BURN, D),
        (kinds.burn_reversal, EventKind.BURN_REVERSAL, C),
        (kinds.referral_award, EventKind.REFERRAL_AWARD, C),
        (kinds.referral_return, EventKind.REFERRAL_RETURN, D),
    ],
)
def test_kinds_against_the_liability(make, kind, member_side) -> None:  # type: ignore[no-untyped-def]
    e = make(event_id="x", at=T0, origin=TILL, account=A, points=7)
    assert e.kind is kind
    assert sides(e) == [(A, member_side, 7), (L, member_side.flipped(), 7)]


def test_opening_is_zero_or_the_migrated_balance_against_the_liability() -> None:
    assert sides(kinds.opening(event_id="o", at=T0, origin=HQ, account=A)) == [
        (A, C, 0),
        (L, D, 0),
    ]
    assert sides(kinds.opening(event_id="o", at=T0, origin=HQ, account=A, points=120)) == [
        (A, C, 120),
        (L, D, 120),
    ]
    # a migrated debt: the signs swap
    assert sides(kinds.opening(event_id="o", at=T0, origin=HQ, account=A, points=-5)) == [
        (A, D, 5),
        (L, C, 5),
    ]


def test_import_credits_or_debits_and_is_never_empty() -> None:
    assert sides(kinds.imported(event_id="i", at=T0, origin=HQ, account=A, points=30))[0] == (
        A,
        C,
        30,
    )
    assert sides(kinds.imported(event_id="i", at=T0, origin=HQ, account=A, points=-30))[0] == (
        A,
        D,
        30,
    )
    with pytest.raises(InvalidPointsError):
        kinds.imported(event_id="i", at=T0, origin=HQ, account=A, points=0)


def test_transfer_debits_the_sender_and_credits_the_recipient() -> None:
    e = kinds.transfer(event_id="t", at=T0, origin=TILL, sender=A, recipient=B, points=9)
    assert sides(e) == [(A, D, 9), (B, C, 9)]
    assert e.member_net() == 0
    with pytest.raises(MalformedEventError):
        kinds.transfer(event_id="t", at=T0, origin=TILL, sender=A, recipient=A, points=9)


def test_conversion_moves_promised_into_regular_net_zero() -> None:
    e = kinds.conversion(event_id="c", at=T0, origin=HQ, programme=P, member="alice", points=40)
    assert sides(e) == [(acct("alice", Category.PROMISED), D, 40), (A, C, 40)]
    assert e.member_net() == 0


def test_bulk_award_credits_each_member_and_debits_the_total_once() -> None:
    e = kinds.bulk_award(
        event_id="b", at=T0, origin=HQ, accounts=[A, B], points=10, campaign="black-friday"
    )
    assert sides(e) == [(A, C, 10), (B, C, 10), (L, D, 20)]
    with pytest.raises(MalformedEventError):
        kinds.bulk_award(event_id="b", at=T0, origin=HQ, accounts=[A, A], points=10)
    with pytest.raises(MalformedEventError):
        kinds.bulk_award(event_id="b", at=T0, origin=HQ, accounts=[], points=10)


def test_refund_return_carries_a_debit_and_a_credit_and_shows_the_net() -> None:
    e = kinds.refund_return(event_id="r", at=T0, origin=TILL, account=A, returned=25, restored=60)
    assert sides(e) == [(A, D, 25), (L, C, 25), (A, C, 60), (L, D, 60)]
    assert e.member_net() == 35
    assert e.net(A) == 35
    only_debit = kinds.refund_return(
        event_id="r", at=T0, origin=TILL, account=A, returned=25, restored=0
    )
    assert only_debit.member_net() == -25
    with pytest.raises(InvalidPointsError):
        kinds.refund_return(event_id="r", at=T0, origin=TILL, account=A, returned=0, restored=0)


def test_merge_moves_each_balance_and_flips_a_negative_one() -> None:
    e = kinds.merge(
        event_id="m",
        at=T0,
        origin=HQ,
        programme=P,
        victim="bob",
        survivor="alice",
        victim_balances={Category.REGULAR: 80, Category.PROMISED: -15, Category.TRIGGER_BASED: 0},
    )
    assert sides(e) == [
        (acct("bob", Category.PROMISED), C, 15),
        (acct("alice", Category.PROMISED), D, 15),
        (B, D, 80),
        (A, C, 80),
    ]
    assert e.member_net() == 0
    empty = kinds.merge(
        event_id="m",
        at=T0,
        origin=HQ,
        programme=P,
        victim="bob",
        survivor="alice",
        victim_balances={},
    )
    assert sides(empty) == [(B, D, 0), (A, C, 0)]
    with pytest.raises(MalformedEventError):
        kinds.merge(
            event_id="m",
            at=T0,
            origin=HQ,
            programme=P,
            victim="bob",
            survivor="bob",
            victim_balances={},
        )


@pytest.mark.parametrize("points", [0, -1, 1.5, True, "3"])
def test_amounts_must_be_positive_ints(points: object) -> None:
    with pytest.raises(InvalidPointsError):
        kinds.earn(event_id="e", at=T0, origin=TILL, account=A, points=points)  # type: ignore[arg-type]


def test_an_unbalanced_event_cannot_be_built() -> None:
    with pytest.raises(UnbalancedEventError) as info:
        LedgerEvent(
            event_id="u",
            kind=EventKind.EARN,
            at=T0,
            programme=P,
            origin=TILL,
            postings=(Posting(A, C, 10), Posting(L, D, 9)),
        )
    assert info.value.total == 1


def test_malformed_events_are_refused() -> None:
    def build(postings: tuple[Posting, ...], at=T0) -> LedgerEvent:  # type: ignore[no-untyped-def]
        return LedgerEvent(
            event_id="u", kind=EventKind.EARN, at=at, programme=P, origin=TILL, postings=postings
        )

    with pytest.raises(MalformedEventError):
        build(())
    with pytest.raises(MalformedEventError):
        build((Posting(A, C, 0),), at=T0.replace(tzinfo=None))
    with pytest.raises(InvalidPointsError):
        build((Posting(A, C, -1), Posting(L, D, -1)))
    with pytest.raises(ForeignAccountError):
        build((Posting(MemberAccount("other", "alice"), C, 1), Posting(L, D, 1)))


def test_entries_have_unique_ids_and_carry_the_event() -> None:
    e = kinds.refund_return(event_id="r", at=T0, origin=TILL, account=A, returned=1, restored=2)
    ids = [x.entry_id for x in e.entries()]
    assert ids == ["r#0", "r#1", "r#2", "r#3"]
    assert all(x.at == T0 and x.event is e for x in e.entries())


def test_a_correction_swaps_every_side() -> None:
    e = kinds.earn(event_id="e", at=T0, origin=TILL, account=A, points=12)
    r = reversal_of(e, event_id="e-fix", at=T0 + timedelta(hours=1), origin=HQ)
    assert sides(r) == [(A, D, 12), (L, C, 12)]
    assert r.kind is EventKind.CORRECTION
