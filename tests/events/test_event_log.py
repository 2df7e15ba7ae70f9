"""Event ids, time encoding, and the outbox's sequence and acknowledgement."""

from __future__ import annotations

import os
import uuid
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_sync.contract.chain import ChainLink, ChainVerdict, Sealed, verify_chain
from edge_agent.cache.code_cache import CodeCache
from edge_agent.cache.timestamps import from_us, to_us
from edge_agent.events import event_log
from edge_agent.events.event_log import Attribution, EventType
from tests.cache.factories import NOW, STORE, open_cache


class _RollBackError(Exception):
    """Raised inside a transaction to roll it back."""


def test_event_ids_are_uuidv7_and_sort_by_time() -> None:
    ids = [event_log.event_id(NOW + timedelta(milliseconds=ms), os.urandom(10)) for ms in range(50)]
    assert ids == sorted(ids)
    parsed = uuid.UUID(hex=ids[0])
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert int(ids[0][:12], 16) == int(NOW.timestamp() * 1000)


@settings(max_examples=300)
@given(st.datetimes(timezones=st.just(UTC), min_value=datetime(1971, 1, 1)))
def test_microsecond_times_round_trip_exactly(at: datetime) -> None:
    assert from_us(to_us(at)) == at


def _append_linked(cache: CodeCache) -> None:
    event_log.append(
        cache.conn,
        box_id=cache.box_id,
        type=EventType.LINKED,
        occurred_at=NOW,
        code=None,
        attribution=Attribution(store_id=STORE, till_id="t", cashier_id="k"),
    )


def test_append_outside_a_transaction_is_a_bug(tmp_path: Path) -> None:
    cache = open_cache(tmp_path / "c.db")
    try:
        _append_linked(cache)
    except RuntimeError:
        pass
    else:
        raise AssertionError("append outside a transaction must refuse")
    cache.close()


def test_sequence_is_gap_free_across_rollbacks_and_acks_prune(tmp_path: Path) -> None:
    cache = open_cache(tmp_path / "c.db")

    def one(commit: bool) -> None:
        with suppress(_RollBackError), cache.transaction():
            _append_linked(cache)
            if not commit:
                raise _RollBackError

    for i in range(10):
        one(commit=i % 3 != 0)  # every third is rolled back: its number must be reused
    pending = cache.pending_outbox(100)
    assert [p.seq for p in pending] == list(range(1, 7))
    assert cache.pending_outbox(2)[-1].seq == 2
    assert cache.ack_outbox(4) == 4
    assert [p.seq for p in cache.pending_outbox(100)] == [5, 6]
    assert cache.ack_outbox(4) == 0  # a repeated ack is harmless
    one(commit=True)
    assert [p.seq for p in cache.pending_outbox(100)] == [5, 6, 7]
    # The event log itself keeps every event; only the outbox is pruned.
    seqs = [r[0] for r in cache.conn.execute("SELECT seq FROM events ORDER BY seq")]
    assert seqs == list(range(1, 8))
    cache.close()


def _chain_of(cache: CodeCache) -> ChainVerdict:
    bodies = [r[0] for r in cache.conn.execute("SELECT body FROM events ORDER BY seq")]
    return verify_chain([Sealed.of(b) for b in bodies], anchor=ChainLink.start(cache.box_id))


def test_appended_events_form_one_unbroken_chain_across_rollbacks(tmp_path: Path) -> None:
    cache = open_cache(tmp_path / "c.db")
    for i in range(9):  # every third rolled back: its seq and its link are both returned
        with suppress(_RollBackError), cache.transaction():
            _append_linked(cache)
            if i % 3 == 0:
                raise _RollBackError
    verdict = _chain_of(cache)
    assert verdict.ok and verdict.head.seq == 6 and verdict.head.chained
    (head,) = cache.conn.execute("SELECT value FROM meta WHERE key = 'chain_head'").fetchone()
    assert head == verdict.head.hash  # the next append links on the last stored event
    # What the outbox sends is what was chained, byte for byte.
    outbox = [Sealed.of(p.payload) for p in cache.pending_outbox(100)]
    assert verify_chain(outbox, anchor=ChainLink.start(cache.box_id)).head == verdict.head
    cache.close()


def test_the_chain_survives_a_reopen(tmp_path: Path) -> None:
    cache = open_cache(tmp_path / "c.db")
    with cache.transaction():
        _append_linked(cache)
    cache.close()
    cache = CodeCache.open(tmp_path / "c.db", store_id=STORE)
    with cache.transaction():
        _append_linked(cache)
    assert _chain_of(cache).ok and _chain_of(cache).head.seq == 2
    cache.close()
