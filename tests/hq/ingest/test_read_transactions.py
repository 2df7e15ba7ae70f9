"""``EventStore.read``: a consistent read-only view that takes no write lock, on both
backends. A reader (the ledger API, finance reports, the fleet views) must never hold up
ingest, and a write slipped into a read is an error, not a lock taken quietly."""

from __future__ import annotations

import threading

import psycopg
import pytest

from cloud_sync.hq.ingest.errors import StoreUnavailableError
from cloud_sync.hq.ingest.event_store import EventStore, Tx, open_event_store


def _count(tx: Tx) -> int:
    return int(tx.query("SELECT COUNT(*) FROM ledger_refusal_probe")[0][0])


def test_a_write_inside_a_read_fails_and_the_store_still_writes(store: EventStore) -> None:
    store.run(lambda tx: tx.execute("CREATE TABLE ledger_refusal_probe (n INTEGER)"))
    with pytest.raises((StoreUnavailableError, psycopg.errors.ReadOnlySqlTransaction)):
        store.read(lambda tx: tx.execute("INSERT INTO ledger_refusal_probe VALUES (1)"))
    store.run(lambda tx: tx.execute("INSERT INTO ledger_refusal_probe VALUES (2)"))
    assert store.read(_count) == 1


def test_a_reader_holds_no_lock_a_writer_waits_for(location: str) -> None:
    """Another process's writer (a second handle on the same store) commits while a read is
    open, and the open read keeps its own consistent view until it ends."""
    reader, writer = open_event_store(location), open_event_store(location)
    try:
        reader.run(lambda tx: tx.execute("CREATE TABLE ledger_refusal_probe (n INTEGER)"))
        seen: list[int] = []
        written = threading.Event()

        def long_read(tx: Tx) -> None:
            seen.append(_count(tx))
            # The writer commits while this read is open: with run's write lock it would wait
            # out the busy timeout and fail instead.
            thread = threading.Thread(
                target=lambda: (
                    writer.run(lambda w: w.execute("INSERT INTO ledger_refusal_probe VALUES (1)")),
                    written.set(),
                )
            )
            thread.start()
            assert written.wait(timeout=3), "the writer waited for the reader"
            thread.join()
            seen.append(_count(tx))

        reader.read(long_read)
        assert seen == [0, 0]  # one view from its first read to its end
        assert reader.read(_count) == 1
    finally:
        reader.close()
        writer.close()
