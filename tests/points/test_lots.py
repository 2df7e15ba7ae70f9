"""Lots and expiry: oldest points first, FIFO by the time they were credited."""

from __future__ import annotations

from datetime import timedelta

from edge_agent.domain.points import kinds
from edge_agent.domain.points.event import Entry, LedgerEvent
from edge_agent.domain.points.expiry import expiring
from edge_agent.domain.points.lots import Aging, Lot, age
from tests.points.factories import HQ, T0, TILL, acct

A = acct("alice")
D = timedelta(days=1)


def entries_of(*events: LedgerEvent) -> list[Entry]:
    return [e for ev in events for e in ev.entries() if e.posting.account == A]


def earn(i: int, at_day: int, points: int) -> LedgerEvent:
    return kinds.earn(event_id=f"e{i}", at=T0 + at_day * D, origin=TILL, account=A, points=points)


def burn(i: int, at_day: int, points: int) -> LedgerEvent:
    return kinds.burn(event_id=f"b{i}", at=T0 + at_day * D, origin=TILL, account=A, points=points)


def test_spending_takes_the_oldest_lots_first() -> None:
    es = entries_of(earn(1, 0, 10), earn(2, 5, 20), burn(1, 6, 15))
    assert age(es, as_of=T0 + 10 * D) == Aging(lots=(Lot(T0 + 5 * D, 15),), deficit=0)


def test_only_points_credited_at_or_before_the_cutoff_expire() -> None:
    es = entries_of(earn(1, 0, 10), earn(2, 5, 20), burn(1, 6, 4))
    assert expiring(es, now=T0 + 30 * D, validity=30 * D) == 6  # day 0's lot, minus the burn
    assert expiring(es, now=T0 + 35 * D, validity=30 * D) == 26  # day 5's lot too
    assert expiring(es, now=T0 + 29 * D, validity=30 * D) == 0


def test_a_deficit_is_paid_before_a_new_lot_starts() -> None:
    refund = kinds.refund_return(
        event_id="r", at=T0 + D, origin=TILL, account=A, returned=8, restored=0
    )
    es = entries_of(earn(1, 0, 5), refund, earn(2, 2, 10))
    assert age(es, as_of=T0 + D) == Aging(lots=(), deficit=3)
    assert age(es, as_of=T0 + 2 * D) == Aging(lots=(Lot(T0 + 2 * D, 7),), deficit=0)
    assert expiring(es, now=T0 + 40 * D, validity=30 * D) == 7


def test_entries_dated_after_now_are_not_read_but_cap_the_debit() -> None:
    es = entries_of(earn(1, 0, 10), burn(1, 50, 8))  # the burn from a till ahead of HQ's clock
    assert expiring(es, now=T0 + 40 * D, validity=30 * D) == 2


def test_entries_at_one_instant_keep_their_applied_order() -> None:
    opening = kinds.opening(event_id="o", at=T0, origin=HQ, account=A, points=3)
    es = entries_of(opening, earn(1, 0, 4))
    assert age(es, as_of=T0) == Aging(lots=(Lot(T0, 3), Lot(T0, 4)), deficit=0)
