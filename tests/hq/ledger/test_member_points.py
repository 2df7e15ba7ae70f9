"""Balances out to the stores, on both backends: one fan-out step makes each moved member one
``member.points`` change for every known store (balance and marks, decoded with the contract),
once; a snapshot cut carries every member's in ``points_balances``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cloud_sync.contract.points_balance import decode_marks
from cloud_sync.contract.snapshot_format import POINTS_BALANCES_COLUMNS
from cloud_sync.hq.central_store import CentralStore
from cloud_sync.hq.fanout import delta_log
from cloud_sync.hq.ingest.core import Ingest
from cloud_sync.hq.ingest.event_store import EventStore
from cloud_sync.hq.ledger import operations
from cloud_sync.hq.ledger.intake import post_all
from cloud_sync.hq.snapshot import write_snapshot
from tests.hq.fanout.test_fanout_step import S1, S2, opened, say, step
from tests.hq.ingest.builders import AT, BOX_A, BOX_B, events_topic, payload, rechain
from tests.hq.ledger.postings import acct, burn, earn, posted


def points_changes(store: EventStore) -> dict[str, list[tuple[str, str, int, dict[str, int]]]]:
    out: dict[str, list[tuple[str, str, int, dict[str, int]]]] = {}
    for p in step(store):
        for c in opened(p).changes:
            if c.op.value == "member.points":
                row = (c["member_id"], c["programme"], c["balance"], decode_marks(c["marks"]))
                out.setdefault(p.store_id, []).append(row)
    return out


def test_a_moved_balance_reaches_every_store_once_with_its_marks(
    ingest: Ingest, store: EventStore, central: CentralStore, tmp_path: Path
) -> None:
    say(store, "box-z", S2, None, 0)  # store-002 is known
    ingest.handle(
        events_topic(BOX_A),
        payload(rechain([posted(1, earn("e1", "ann", 50)), posted(2, burn("b1", "ann", 80))])),
        AT,
    )
    ingest.handle(
        events_topic(BOX_B),
        payload(rechain([posted(1, earn("e2", "ann", 5), box=BOX_B)]), box=BOX_B),
        AT,
    )
    store.run(lambda tx: operations.import_balance(tx, acct("bob"), 7, at=AT, now=AT))
    post_all(store, clock=lambda: AT)
    expected = [
        ("ann", "main", 50 - 80 + 5, {BOX_A: 2, BOX_B: 1}),  # negative: two stores burned it
        ("bob", "main", 7, {}),
    ]
    assert points_changes(store) == {S1: expected, S2: expected}
    assert points_changes(store) == {}  # told once
    point = store.run(lambda tx: delta_log.follow_point(tx, S1, now=AT))
    assert len(point.points[0]) == len(POINTS_BALANCES_COLUMNS)
    path = tmp_path / "s1.snapshot.db"
    write_snapshot(central, path, S1, now=AT, follow=point)
    snap = sqlite3.connect(path)
    rows = snap.execute(
        f"SELECT {', '.join(POINTS_BALANCES_COLUMNS)} FROM points_balances ORDER BY member_id"
    ).fetchall()
    snap.close()
    assert [(m, p, b, decode_marks(t)) for m, p, b, t in rows] == expected
