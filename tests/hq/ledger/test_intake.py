"""The tills' ``points.posted`` events through ingest into HQ's ledger, on both backends:
queued in the transaction that stores them, booked once in (box, seq) order, refusals recorded
with their reason while the queue moves on, marks advanced, balances as the reference folds."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import replace
from datetime import timedelta

import pytest

from cloud_sync.hq.ingest.core import Ingest
from cloud_sync.hq.ingest.event_store import EventStore, Tx, open_event_store
from cloud_sync.hq.ledger import intake, operations
from cloud_sync.hq.ledger.intake import TILL_POLICY, post_all, post_page
from cloud_sync.hq.ledger.openings import zero_opening
from edge_agent.domain.points import codec, kinds
from edge_agent.domain.points.accounts import MemberAccount
from edge_agent.domain.points.admission import Admitted
from edge_agent.domain.points.event import LedgerEvent
from edge_agent.domain.points.ledger import Ledger
from tests.hq.ingest.builders import AT, BOX_A, BOX_B, events_topic, payload, rechain
from tests.hq.ledger.postings import (
    TILL,
    acct,
    assert_matches,
    balance_at,
    burn,
    earn,
    line,
    posted,
)


def count(store: EventStore, sql: str) -> int:
    return int(store.run(lambda tx: tx.query(sql))[0][0])


def marks(store: EventStore) -> dict[tuple[str, str], int]:
    rows = store.run(lambda tx: tx.query("SELECT member_id, box_id, seq FROM ledger_marks"))
    return {(str(m), str(b)): int(s) for m, b, s in rows}


def reference_of(events: list[LedgerEvent]) -> Ledger:
    """What HQ should hold: each member opened at zero before their first event."""
    ledger = Ledger(policy=TILL_POLICY)
    for e in events:
        for a in e.accounts():
            if isinstance(a, MemberAccount) and ledger.opened_at(a) is None:
                assert isinstance(ledger.apply(zero_opening(a)), Admitted)
        assert isinstance(ledger.apply(e), Admitted)
    return ledger


def test_postings_are_booked_once_in_box_order_and_fold_as_the_reference(
    ingest: Ingest, store: EventStore
) -> None:
    a = [
        earn("e1", "ann", 500, hours=1),
        burn("b1", "ann", 120, hours=2),
        earn("e2", "bob", 40, hours=3),
    ]
    late = earn("e3", "ann", 10, hours=-5)  # an offline box's, dated before the others
    batch_a = payload(
        rechain(
            [
                posted(
                    1,
                    a[0],
                    lines=[line(1, "earn", 400), line(2, "earn", 100, band="B", campaign="SPRING")],
                ),
                posted(2, a[1], lines=[line(1, "burn", 120, band="C")]),
                posted(3, a[2]),
            ]
        )
    )
    batch_b = payload(rechain([posted(1, late, box=BOX_B)]), box=BOX_B)
    ingest.handle(events_topic(BOX_A), batch_a, AT)
    ingest.handle(events_topic(BOX_B), batch_b, AT)
    assert count(store, "SELECT count(*) FROM points_queue") == 4  # queued as stored
    done = post_all(store, clock=lambda: AT)
    assert (done.taken, done.booked, done.opened, done.refused) == (4, 4, 2, 0)
    assert count(store, "SELECT count(*) FROM points_queue") == 0
    reference = reference_of([*a, late])
    times = [AT + timedelta(hours=h) for h in (-6, -5, 0, 1, 2, 3, 24)]
    assert_matches(store, reference, times)
    assert marks(store) == {("ann", BOX_A): 2, ("ann", BOX_B): 1, ("bob", BOX_A): 3}
    lines = store.run(
        lambda tx: tx.query(
            "SELECT e.event_id, l.line, l.side, l.band, l.campaign_id, l.points "
            "FROM ledger_lines l "
            "JOIN ledger_events e ON e.pos = l.pos ORDER BY e.pos, l.line"
        )
    )
    assert [tuple(r) for r in lines] == [
        ("e1", 1, "earn", "A", None, 400),
        ("e1", 2, "earn", "B", "SPRING", 100),
        ("b1", 1, "burn", "C", None, 120),
    ]
    source = store.run(
        lambda tx: tx.query("SELECT box_id, box_seq FROM ledger_events WHERE event_id = 'e3'")
    )
    assert tuple(source[0]) == (BOX_B, 1)
    # A resent batch stores nothing, so queues nothing and books nothing.
    ingest.handle(events_topic(BOX_A), batch_a, AT)
    assert count(store, "SELECT count(*) FROM points_queue") == 0
    assert post_all(store, clock=lambda: AT).taken == 0
    assert_matches(store, reference, times)


def test_a_page_repeated_after_a_crash_books_nothing_twice(
    ingest: Ingest, store: EventStore
) -> None:
    events = [earn(f"e{i}", "ann", 10 + i, hours=i) for i in range(1, 6)]
    ingest.handle(
        events_topic(BOX_A), payload(rechain([posted(i, e) for i, e in enumerate(events, 1)])), AT
    )

    def crash(tx: Tx) -> None:
        post_page(tx, now=AT, limit=3)
        raise RuntimeError("power cut before commit")

    with pytest.raises(RuntimeError):
        store.run(crash)
    assert count(store, "SELECT count(*) FROM ledger_events") == 0  # all or nothing
    first = post_all(store, clock=lambda: AT, limit=2)  # three pages of 2, 2, 1
    assert (first.taken, first.booked) == (5, 5)
    # The same queue rows again (a page whose deletes were lost): replays, nothing booked.
    store.run(
        lambda tx: tx.execute_many(
            "INSERT INTO points_queue VALUES (?, ?)", [(BOX_A, s) for s in range(1, 6)]
        )
    )
    again = post_all(store, clock=lambda: AT)
    assert (again.taken, again.booked, again.replayed) == (5, 0, 5)
    assert count(store, "SELECT count(*) FROM ledger_events") == 6  # the opening and 5 earns
    assert balance_at(store, acct("ann")) == sum(10 + i for i in range(1, 6))
    assert marks(store) == {("ann", BOX_A): 5}


def test_refusals_are_recorded_with_a_reason_and_the_queue_moves_on(
    ingest: Ingest, store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.run(
        lambda tx: operations.import_balance(
            tx, acct("carl"), 50, at=AT + timedelta(days=1), now=AT
        )
    )
    good = earn("e1", "ann", 100)
    other_store = kinds.earn(
        event_id="e7",
        at=AT,
        origin=replace(TILL, store="store-002"),
        account=acct("ann"),
        points=1,
    )
    opening = kinds.opening(event_id="o5", at=AT, origin=TILL, account=acct("zed"))
    events = [
        posted(1, good),
        posted(2, earn("e1", "ann", 101)),  # the same id, other content
        posted(3, None, details={"ledger": {"event_id": "x"}}),  # unreadable ledger
        posted(4, None, details={"lines": []}),  # no ledger at all
        posted(5, opening),  # a kind only HQ books
        posted(6, earn("e6", "ann", 3), lines=[line(1, "earn", 3, band="Z")]),  # a bad line
        posted(7, other_store),  # names another store than the box's
        posted(8, burn("b8", "ann", 300)),  # beyond the balance: booked, flagged
        posted(9, earn("e9", "ann", 5)),
        posted(10, earn("e10", "carl", 5)),  # before carl's migrated opening
    ]
    ingest.handle(events_topic(BOX_A), payload(rechain(events)), AT)
    with caplog.at_level(logging.WARNING, logger="storeside.hq.ledger"):
        done = post_all(store, clock=lambda: AT)
    assert (done.taken, done.booked, done.refused, done.overdrafts) == (10, 3, 7, 1)
    rows = store.run(
        lambda tx: tx.query("SELECT seq, event_id, reason FROM points_refusals ORDER BY seq")
    )
    assert [tuple(r) for r in rows] == [
        (2, "e1", "conflict"),
        (3, None, "unreadable"),
        (4, None, "unreadable"),
        (5, "o5", "kind"),
        (6, None, "unreadable"),
        (7, "e7", "origin"),
        (8, "b8", "overdraft"),
        (10, "e10", "before_opening"),
    ]
    assert sum("refused" in r.message for r in caplog.records) == 8
    assert balance_at(store, acct("ann")) == 100 - 300 + 5  # the till's burn stands
    assert balance_at(store, acct("carl")) == 50
    booked = store.run(
        lambda tx: tx.query(
            "SELECT event_id FROM ledger_events WHERE box_id IS NOT NULL ORDER BY pos"
        )
    )
    assert [r[0] for r in booked] == ["e1", "b8", "e9"]
    assert marks(store) == {("ann", BOX_A): 9}
    assert count(store, "SELECT count(*) FROM points_queue") == 0
    detail = store.run(lambda tx: tx.query("SELECT detail FROM points_refusals WHERE seq = 3"))[0][
        0
    ]
    assert "details.ledger" in detail


def test_codec_text_of_a_stored_event_is_the_tills(ingest: Ingest, store: EventStore) -> None:
    e = earn("e1", "ann", 7)
    ingest.handle(events_topic(BOX_A), payload(rechain([posted(1, e)])), AT)
    post_all(store, clock=lambda: AT)
    body = store.run(lambda tx: tx.query("SELECT body FROM ledger_events WHERE event_id = 'e1'"))[
        0
    ][0]
    assert codec.decode(json.loads(body)) == e
    assert intake.Refusal.OVERDRAFT.value == "overdraft"


def test_the_running_poster_books_what_arrives_and_stops_when_told(
    ingest: Ingest, store: EventStore, location: str
) -> None:
    own = open_event_store(location)  # a service of its own: its own connection
    poster = intake.PointsPoster(store=own, clock=lambda: AT, idle_s=0.02, limit=2)
    stop = threading.Event()
    thread = threading.Thread(target=poster.run, args=(stop,))
    thread.start()
    try:
        events = [earn(f"e{i}", "ann", i, hours=i) for i in range(1, 6)]
        sealed = rechain([posted(i, e) for i, e in enumerate(events, 1)])
        ingest.handle(events_topic(BOX_A), payload(sealed[:3]), AT)
        ingest.handle(events_topic(BOX_A), payload(sealed[3:]), AT)
        deadline = time.monotonic() + 10
        while balance_at(store, acct("ann")) != 15 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(timeout=10)
        own.close()
    assert not thread.is_alive()
    assert balance_at(store, acct("ann")) == 15
    assert marks(store) == {("ann", BOX_A): 5}
