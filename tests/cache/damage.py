"""A real cache with real events, half acknowledged by HQ's real ingest, and real damage to it.

The damage oracle does not ask SQLite: it reads the rowids straight off a table leaf page
(SQLite file format, section 1.6: page header, cell pointer array, each table-leaf cell a
payload-size varint then the rowid varint), so a test can say which events a damaged page
held without trusting the code under test to read around it.
"""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.hq.ingest.core import Ingest
from cloud_sync.hq.ingest.event_store import EventStore, open_event_store
from cloud_sync.hq.ingest.keyring import Keyring
from edge_agent.cache.code_cache import CodeCache
from edge_agent.events import event_log
from edge_agent.redemption.service import RedemptionService
from tests.cache.factories import FMT, NOW, STORE, A, B, code, open_cache, req
from tests.points_sync.link import Fault, Uplink
from tests.sync.test_batch_signing import registered

BOX = "box-1"
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
FILLER = 300  # events beside the redemptions: enough for many pages in each table


@dataclass(slots=True)
class Hq:
    store: EventStore
    up: Uplink

    @classmethod
    def at(cls, folder: Path) -> Hq:
        store = open_event_store(str(folder / "hq-events.db"))
        ingest = Ingest(store=store, keyring=Keyring(lambda: [registered(KEY, store=STORE)]))
        return cls(store=store, up=Uplink(ingest=ingest, key=KEY, store_id=STORE, box_id=BOX))

    def drain(self, cache: CodeCache) -> None:
        """Send until the box's outbox is empty, as the pump would (each batch acked)."""
        self.up.batch_events = 100
        for _ in range(50):
            if not cache.pending_outbox(1):
                return
            self.up.send(cache, Fault.NONE, NOW)
        raise AssertionError("the outbox never drained: HQ refuses what the box sends")

    def event_ids(self) -> list[str]:
        rows = self.store.run(
            lambda tx: tx.query("SELECT event_id FROM events WHERE box_id = ? ORDER BY seq", [BOX])
        )
        return [str(r[0]) for r in rows]

    def refused(self) -> list[str]:
        rows = self.store.run(lambda tx: tx.query("SELECT reason FROM quarantine", []))
        conflicts = self.store.run(lambda tx: tx.query("SELECT kind FROM conflicts", []))
        return [str(r[0]) for r in [*rows, *conflicts]]


def build(path: Path, hq: Hq) -> None:
    """Codes, two redemptions through the real service, filler events; HQ stores 1..100 but
    the box heard the ack for 1..50 only (the second ack lost in the power cut)."""
    cache = open_cache(path)
    cache.close()
    cache = CodeCache.open(path, store_id=STORE, box_id=BOX)
    service = RedemptionService(cache, fmt=FMT, hold=timedelta(minutes=5))
    service.commit(req(A, txn="T-1"))
    service.commit(req(B, txn="T-2", member="M2"))
    attribution = event_log.Attribution(store_id=STORE, till_id="till-1", cashier_id="c-1")
    for i in range(FILLER):
        with cache.transaction() as conn:
            event_log.append(
                conn,
                box_id=BOX,
                type=event_log.EventType.LINKED,
                occurred_at=NOW + timedelta(seconds=i),
                code=code("HQ2P9X"),
                attribution=attribution,
                details={"note": f"filler {i} " + "x" * 700},
            )
    hq.up.batch_events = 50
    hq.up.send(cache, Fault.NONE, NOW)
    hq.up.send(cache, Fault.LOSE_ACK, NOW)
    cache.close()  # the last connection: the WAL is checkpointed into the file


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# Every helper closes its connection (``with connect()`` alone only commits): one left open
# keeps the cache's -wal and -shm beside it, which a run after a real power cut would not see.
def events_of(path: Path) -> dict[int, str]:
    """seq -> event id of every event in an undamaged file."""
    with closing(sqlite3.connect(path)) as conn:
        return {int(s): str(i) for s, i in conn.execute("SELECT seq, event_id FROM events")}


def leaf_pages(path: Path, table: str) -> dict[int, list[int]]:
    """Page number -> the rowids on it, for every leaf page of ``table``."""
    with closing(sqlite3.connect(path)) as conn:
        size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        pages = [
            int(p)
            for (p,) in conn.execute(
                "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno",
                (table,),
            )
        ]
    data = path.read_bytes()
    return {p: _rowids(data[(p - 1) * size : p * size]) for p in pages}


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = 0
    for i in range(9):
        byte = data[at + i]
        if i == 8:
            return (value << 8) | byte, at + 9
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, at + i + 1
    raise AssertionError("unreachable")


def _rowids(page: bytes) -> list[int]:
    assert page[0] == 0x0D, "not a table leaf page"
    cells = int.from_bytes(page[3:5], "big")
    out = []
    for n in range(cells):
        at = int.from_bytes(page[8 + 2 * n : 10 + 2 * n], "big")
        _, at = _varint(page, at)
        rowid, _ = _varint(page, at)
        out.append(rowid)
    return out


def smash(path: Path, page: int) -> None:
    """Overwrite one page with garbage, as a torn write on an SD card leaves it."""
    with closing(sqlite3.connect(path)) as conn:
        size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    with path.open("r+b") as f:
        f.seek((page - 1) * size)
        f.write(bytes([0xA5]) * size)
