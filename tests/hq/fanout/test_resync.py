"""A journal backlog too big for deltas (a large mint) goes to the boxes as snapshots: the
fan-out's step gives every known store a new stream instead of making the backlog into
deltas, a box on the old stream is told it needs a snapshot, and the shelf cuts a new one
rather than reuse one of the old stream. A backlog within the bound is deltas as before."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.contract.follow_position import FollowPosition
from cloud_sync.hq.central_store import CentralStore
from cloud_sync.hq.fanout import delta_log, producer
from cloud_sync.hq.fanout.central_journal import CentralJournal
from cloud_sync.hq.fanout.snapshot_shelf import SnapshotShelf
from cloud_sync.hq.ingest.event_store import EventStore
from cloud_sync.hq.minting import mint_anonymous
from tests.hq.conftest import campaign

KEY = Ed25519PrivateKey.generate()
S1, S2 = "store-001", "store-002"


def step(store: EventStore, journal: CentralJournal, *, rows: int) -> list[delta_log.Published]:
    now = datetime.now(UTC)
    return store.run(
        lambda tx: producer.step(tx, journal=journal, key=KEY, now=now, resync_rows=rows)
    )


def heads(store: EventStore) -> dict[str, delta_log.Head | None]:
    return {s: store.run(lambda tx, s=s: delta_log.head(tx, s)) for s in (S1, S2)}


def test_a_backlog_over_the_bound_restarts_every_stream_and_the_shelf_cuts_anew(
    central: CentralStore, store: EventStore, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    for s in (S1, S2):  # two known stores, each with a stream a box follows
        store.run(lambda tx, s=s: delta_log.start(tx, s, now=now))
    before = heads(store)
    shelf = SnapshotShelf(central=central.path, directory=tmp_path / "shelf", key=KEY)
    old_cut = shelf.offer(store, S1)
    journal = CentralJournal(central.path)

    central.create_campaign(campaign("BIG", ends_at="2099-01-01T00:00:00+00:00"), now=now)
    mint_anonymous(central, campaign_id="BIG", count=120, now=now)
    assert step(store, journal, rows=50) == []  # no delta made of the backlog
    after = heads(store)
    for s in (S1, S2):
        was, now_at = before[s], after[s]
        assert was is not None and now_at is not None
        assert now_at.stream != was.stream and now_at.seq == 0, s
        position = FollowPosition(store_id=s, box_id="b", stream=was.stream, watermark=was.seq)
        answer = store.run(lambda tx, p=position: delta_log.catch_up(tx, p, limit=10))
        assert answer.needs_snapshot is not None and answer.documents == ()
    assert store.run(producer.journal_cursor) == journal.last_id()

    new_cut = shelf.offer(store, S1)
    assert new_cut is not old_cut
    new_head = after[S1]
    assert new_head is not None and new_cut.offer.stream == new_head.stream
    assert shelf.offer(store, S1) is new_cut  # reused again while the stream stands

    # Within the bound the journal is deltas, on the new streams.
    central.revoke(str(central.conn.execute("SELECT code FROM codes LIMIT 1").fetchone()[0]))
    made = step(store, journal, rows=50)
    assert sorted(p.store_id for p in made) == [S1, S2]
    assert heads(store)[S1] == delta_log.Head(stream=new_head.stream, seq=1)
