"""``book`` stores what the pure ledger admits, and answers as the in-memory reference does."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

import pytest

from cloud_sync.hq.ingest.event_store import EventStore, Tx
from cloud_sync.hq.ledger.book import TxLedgerView, book
from edge_agent.domain.points import kinds
from edge_agent.domain.points.accounts import Account, Category, liability
from edge_agent.domain.points.admission import (
    Admission,
    Admitted,
    OverdraftPolicy,
    Overdrawn,
    Replayed,
)
from edge_agent.domain.points.errors import AccountNotOpenError, EventConflictError
from edge_agent.domain.points.event import LedgerEvent
from edge_agent.domain.points.ledger import Ledger
from tests.points.factories import HQ, T0, TILL, P, acct

POLICY = OverdraftPolicy()


def _book(tx: Tx, *, event: LedgerEvent) -> Admission:
    return book(tx, event, policy=POLICY, booked_at=T0)


def _balance(tx: Tx, *, account: Account) -> int:
    return TxLedgerView(tx).balance(account)


def _events() -> list[LedgerEvent]:
    a, b = acct("ann"), acct("bob")
    return [
        kinds.opening(event_id="open-a", at=T0, origin=HQ, account=a),
        kinds.opening(event_id="open-b", at=T0, origin=HQ, account=b, points=40),
        kinds.earn(event_id="e1", at=T0 + timedelta(hours=1), origin=TILL, account=a, points=500),
        kinds.burn(event_id="b1", at=T0 + timedelta(hours=2), origin=TILL, account=a, points=120),
        kinds.transfer(
            event_id="t1", at=T0 + timedelta(days=1), origin=HQ, sender=a, recipient=b, points=80
        ),
        kinds.refund_return(
            event_id="r1",
            at=T0 + timedelta(days=2),
            origin=TILL,
            account=a,
            returned=50,
            restored=20,
        ),
    ]


def test_booking_matches_the_reference_ledger(store: EventStore) -> None:
    reference = Ledger(policy=POLICY)
    for event in _events():
        expected = reference.apply(event)
        got = store.run(partial(_book, event=event))
        assert type(got) is type(expected) is Admitted
    for account in (acct("ann"), acct("bob"), liability(P)):
        view_balance = store.run(partial(_balance, account=account))
        assert view_balance == reference.balance(account)
    total = store.run(lambda tx: tx.query("SELECT SUM(signed), COUNT(*) FROM ledger_entries"))
    assert int(total[0][0]) == 0 and int(total[0][1]) == sum(len(e.postings) for e in _events())
    daily = store.run(
        lambda tx: tx.query(
            "SELECT SUM(net) FROM ledger_daily WHERE holder = 'ann' AND category = 'regular'"
        )
    )
    assert int(daily[0][0]) == reference.balance(acct("ann")) == 500 - 120 - 80 - 50 + 20


def test_replay_conflict_overdraft_and_closed_accounts(store: EventStore) -> None:
    first = _events()[:3]
    for event in first:
        store.run(partial(_book, event=event))
    again = store.run(lambda tx: book(tx, first[2], policy=POLICY, booked_at=T0))
    assert isinstance(again, Replayed) and again.event == first[2]
    other = kinds.earn(event_id="e1", at=T0, origin=TILL, account=acct("ann"), points=501)
    with pytest.raises(EventConflictError):
        store.run(lambda tx: book(tx, other, policy=POLICY, booked_at=T0))
    greedy = kinds.burn(event_id="b9", at=T0, origin=TILL, account=acct("ann"), points=501)
    refused = store.run(lambda tx: book(tx, greedy, policy=POLICY, booked_at=T0))
    assert isinstance(refused, Overdrawn) and refused.shortfall == 1
    stranger = kinds.earn(event_id="e2", at=T0, origin=TILL, account=acct("eve"), points=5)
    with pytest.raises(AccountNotOpenError):
        store.run(lambda tx: book(tx, stranger, policy=POLICY, booked_at=T0))
    rows = store.run(lambda tx: tx.query("SELECT COUNT(*) FROM ledger_events"))
    assert int(rows[0][0]) == 3  # nothing refused was stored
    queued = store.run(lambda tx: tx.query("SELECT member_id FROM points_balance_queue"))
    assert sorted(r[0] for r in queued) == ["ann", "bob"]
    opened = store.run(lambda tx: TxLedgerView(tx).opened_at(acct("bob", Category.REGULAR)))
    assert opened == T0
