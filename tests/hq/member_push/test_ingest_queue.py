"""HQ's ingest takes the presence event types as any other (stored, nothing quarantined), on
both backends, and queues every stored ``offer.triggered`` for pushing in the transaction that
stores it: once, however often the batch comes again."""

from __future__ import annotations

from cloud_sync.contract.event_envelope import EventType
from cloud_sync.hq.ingest import views
from cloud_sync.hq.ingest.core import Ingest
from cloud_sync.hq.ingest.event_store import EventStore, Tx, open_event_store
from cloud_sync.hq.ingest.schema import SCHEMA_VERSION
from tests.hq.ingest.builders import AT, BOX_A, events_topic, payload, rechain
from tests.hq.member_push.presence_events import (
    checked_in,
    ingest_all,
    queued,
    renumbered,
    suppressed,
    triggered,
)


def test_presence_events_are_stored_as_sent_and_each_offer_queued_once(
    ingest: Ingest, store: EventStore
) -> None:
    events = renumbered(
        [
            triggered(1),
            suppressed(2, "holdout", campaign="proximity-loyal"),
            suppressed(3, "cap_day"),
            suppressed(4, "no_consent"),
            checked_in(5, how="token"),
            triggered(6, member="M1002"),
        ]
    )
    sealed = rechain(events)
    batch = payload(sealed)
    outcome = ingest.handle(events_topic(BOX_A), batch, AT)
    assert (outcome.stored, outcome.quarantined) == (6, ())
    stored = views.events(store, views.EventFilter(box_id=BOX_A))
    assert [r.body for r in stored] == [s.text for s in sealed]  # byte for byte
    assert [r.type for r in stored] == [e.type.value for e in events]
    assert [r.member_id for r in stored] == ["M1001", "M1001", "M1001", None, "M1001", "M1002"]
    offers = sorted(e.event_id for e in events if e.type is EventType.OFFER_TRIGGERED)
    assert queued(store) == [(i, "pending", 0) for i in offers]

    again = ingest.handle(events_topic(BOX_A), batch, AT)  # a redelivery
    assert (again.stored, again.duplicates) == (0, 6)
    longer = rechain([*events, triggered(7)])  # a resend overlapping the first batch
    more = ingest.handle(events_topic(BOX_A), payload(longer), AT)
    assert (more.stored, more.duplicates) == (1, 6)
    assert [q[0] for q in queued(store)] == sorted([*offers, longer[-1].event.event_id])


def test_an_offer_without_what_a_push_needs_is_still_stored_and_queued(
    ingest: Ingest, store: EventStore
) -> None:
    # The worker fails it with a reason (test_worker_webhook); ingest never drops it.
    ingest_all(ingest, [triggered(1, member=None, qr_payload=None)])
    assert [q[1:] for q in queued(store)] == [("pending", 0)]


V6_TABLES = (
    "ledger_events",
    "ledger_entries",
    "ledger_accounts",
    "ledger_daily",
    "ledger_lines",
    "ledger_marks",
    "points_queue",
    "points_refusals",
    "points_balance_queue",
)


def test_a_version_4_store_gains_the_push_queue_when_opened(location: str) -> None:
    def downgrade(tx: Tx) -> None:
        tx.execute("DROP INDEX events_presence_by_time")
        tx.execute("DROP TABLE member_push")
        for table in V6_TABLES:  # what later versions added, so the store is truly version 4
            tx.execute(f"DROP TABLE {table}")
        tx.execute("UPDATE ingest_schema SET version = 4")

    old = open_event_store(location)
    old.run(downgrade)
    old.close()
    store = open_event_store(location)
    try:
        version = store.run(lambda tx: tx.query("SELECT version FROM ingest_schema"))
        assert version == [(SCHEMA_VERSION,)]
        assert queued(store) == []
    finally:
        store.close()
