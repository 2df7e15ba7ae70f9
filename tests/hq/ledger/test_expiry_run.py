"""The expiry run on both backends: oldest points first, exactly the pure ``expiry`` of the
reference ledger's entries, in pages of members, and a rerun books nothing."""

from __future__ import annotations

from datetime import timedelta

from cloud_sync.hq import cli
from cloud_sync.hq.ingest.event_store import EventStore, Tx
from cloud_sync.hq.ingest.schema import Dialect
from cloud_sync.hq.ledger import expiry_run
from cloud_sync.hq.ledger.book import book
from cloud_sync.hq.ledger.intake import TILL_POLICY
from cloud_sync.hq.ledger.openings import HQ_ORIGIN, ensure_open, zero_opening
from edge_agent.domain.points import kinds
from edge_agent.domain.points.accounts import MemberAccount, breakage
from edge_agent.domain.points.admission import Admitted
from edge_agent.domain.points.event import LedgerEvent
from edge_agent.domain.points.expiry import expiry
from edge_agent.domain.points.ledger import Ledger
from tests.hq.ingest.builders import AT
from tests.hq.ledger.postings import PROGRAMME, TILL, acct, assert_matches, balance_at

NOW = AT + timedelta(days=400)
VALIDITY = timedelta(days=365)


def history() -> list[LedgerEvent]:
    def earn(i: str, m: str, p: int, ago: int) -> LedgerEvent:
        return kinds.earn(
            event_id=i, at=NOW - timedelta(days=ago), origin=TILL, account=acct(m), points=p
        )

    def burn(i: str, m: str, p: int, ago: int) -> LedgerEvent:
        return kinds.burn(
            event_id=i, at=NOW - timedelta(days=ago), origin=TILL, account=acct(m), points=p
        )

    return [
        earn("a1", "ann", 100, 400),
        earn("a2", "ann", 50, 100),
        burn("a3", "ann", 30, 50),  # taken from the oldest lot: 70 of it are left to expire
        earn("b1", "bob", 10, 10),  # young: nothing due
        earn("c1", "carl", 20, 400),
        burn("c2", "carl", 25, 300),  # below zero: nothing to expire
        *(earn(f"m{i}", f"mem{i}", 5 + i, 366) for i in range(5)),
        earn("late", "ann", 7, -1),  # dated after the run (a till's clock ahead): not read
    ]


def load(store: EventStore, reference: Ledger) -> None:
    def work(tx: Tx) -> None:
        for event in history():
            member = event.postings[0].account
            assert isinstance(member, MemberAccount)
            if ensure_open(tx, member, booked_at=AT) is not None:
                reference.apply(zero_opening(member))
            book(tx, event, policy=TILL_POLICY, booked_at=AT)
            reference.apply(event)

    store.run(work)


def test_expiry_takes_the_oldest_points_in_pages_and_a_rerun_books_nothing(
    location: str, store: EventStore
) -> None:
    reference = Ledger(policy=TILL_POLICY)
    load(store, reference)
    expected = []
    for member in ["ann", "bob", "carl", *(f"mem{i}" for i in range(5))]:
        account = acct(member)
        event = expiry(
            event_id=expiry_run.expiry_id(account, NOW),
            now=NOW,
            origin=HQ_ORIGIN,
            account=account,
            entries=reference.entries(account),
            validity=VALIDITY,
        )
        if event is not None:
            expected.append(event)
    done = expiry_run.run(store, now=NOW, validity=VALIDITY, limit=2)
    assert [e.postings[0].account for e in expected] == [
        acct(m) for m in ["ann", *(f"mem{i}" for i in range(5))]
    ]
    assert expected[0].postings[0].points == 70  # FIFO: the burn took the oldest first
    assert (done.expired_accounts, done.points) == (6, 70 + sum(5 + i for i in range(5)))
    assert done.pages == 5  # 7 members with points (carl is below zero), 2 a page, then empty
    for event in expected:
        assert isinstance(reference.apply(event), Admitted)
    assert_matches(store, reference, [NOW - timedelta(days=d) for d in (401, 300, 0)])
    assert balance_at(store, breakage(PROGRAMME)) == done.points
    again = expiry_run.run(store, now=NOW, validity=VALIDITY)
    assert (again.expired_accounts, again.points) == (0, 0)
    tomorrow = (NOW + timedelta(hours=20)).isoformat()
    expire = ["points", "expire", "--db", location, "--now", tomorrow, "--validity-days", "365"]
    assert cli.main(expire) == 0
    assert_matches(store, reference, [NOW])  # the next day finds the lots already taken
    if store.run(lambda tx: tx.dialect) is Dialect.SQLITE:
        plan = store.run(
            lambda tx: tx.query(
                "EXPLAIN QUERY PLAN SELECT holder, category, pos, signed, at FROM ledger_entries "
                "WHERE programme = ? AND holder >= ? AND holder <= ? ORDER BY holder, at, pos, idx",
                (PROGRAMME, "a", "b"),
            )
        )
        assert "ledger_entries_by_holder" in " ".join(str(r[-1]) for r in plan)
