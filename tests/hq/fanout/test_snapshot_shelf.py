"""HQ's snapshot shelf on its own: a cut is reused, chunks read back to the file, another
store's request is answered missing, and starting it deletes only its own leftovers."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.contract.snapshot_offer import Request
from cloud_sync.hq.central_store import CentralStore
from cloud_sync.hq.errors import HqError
from cloud_sync.hq.fanout.snapshot_shelf import SnapshotShelf
from cloud_sync.hq.ingest.event_store import open_event_store
from tests.hq.conftest import NOW

KEY = Ed25519PrivateKey.generate()


def test_a_cut_is_reused_and_its_chunks_make_the_file(
    central: CentralStore, tmp_path: Path
) -> None:
    central.create_generic("SPRING", "HOLIMAN100", now=NOW)
    shelf_dir = tmp_path / "shelf"
    shelf_dir.mkdir()
    (shelf_dir / "hq.db").write_bytes(b"not the shelf's")  # an operator's file, kept
    (shelf_dir / ("a" * 32 + ".db")).write_bytes(b"left from before a restart")
    shelf = SnapshotShelf(central=central.path, directory=shelf_dir, key=KEY, chunk_bytes=1000)
    assert sorted(p.name for p in shelf_dir.iterdir()) == ["hq.db"]
    events = open_event_store(str(tmp_path / "events.db"))
    try:
        first = shelf.offer(events, "S1")
        assert shelf.offer(events, "S1") is first
    finally:
        events.close()
    offer = first.offer
    data = b""
    while len(data) < offer.size:
        chunk = shelf.chunk(
            Request(store_id="S1", box_id="b", snapshot_id=offer.snapshot_id, offset=len(data))
        )
        assert chunk.offset == len(data) and not chunk.missing
        data += chunk.data
    assert hashlib.sha256(data).hexdigest() == offer.sha256
    other = shelf.chunk(Request(store_id="S2", box_id="b", snapshot_id=offer.snapshot_id, offset=0))
    assert other.missing and other.data == b""


def test_a_cut_while_hqs_db_is_locked_fails_with_hqs_own_error(
    central: CentralStore, tmp_path: Path
) -> None:
    """A long mint holding HQ's database: the cut fails with an ``HqError`` (which the fan-out
    logs, offering the box a snapshot at its next position), never anything unexpected."""
    other = sqlite3.connect(central.path, isolation_level=None, timeout=0.1)
    other.execute("BEGIN EXCLUSIVE")
    events = open_event_store(str(tmp_path / "events.db"))
    try:
        shelf = SnapshotShelf(central=central.path, directory=tmp_path / "shelf", key=KEY)
        with pytest.raises(HqError):
            shelf.offer(events, "S1")
    finally:
        other.execute("ROLLBACK")
        other.close()
        events.close()
