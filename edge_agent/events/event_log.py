"""The event log: events built on the box, appended with their outbox row in one transaction.

An event is what HQ learns about a state change, in the wire contract's envelope
(``cloud_sync/contract/event_envelope.py``, schema version 2): a time-ordered id generated here
(UUIDv7 layout, so ids sort by time and append at the right edge of any index), this box's id, a
per-box sequence number that is gap-free because it is allocated inside the same SQLite
transaction as the change (a rollback returns it), the type, when, the attribution DOMAIN.md
section 3 asks for, the amount, and the hash chain's link: the hash of the previous event's
stored text (``event_hash``), which ``meta.chain_head`` keeps so the append reads one value
instead of re-reading and hashing the last event. ``chain_head`` is read and advanced in the
same transaction as ``next_seq``, so a rollback returns both and the chain cannot fork; it
starts at ``GENESIS_HASH`` on a fresh file and, on a file upgraded with version 1 events, at
the hash of its last event (migration v9, ``chain_schema.py``). ``append`` encodes the event
once and stores that text in both ``events.body`` and ``outbox.payload``; the outbox holds it
until HQ acknowledges its sequence number, and acknowledged rows are deleted so the hot tables
stay small. Rows written before the chain (version 1, with or without ``schema_version``) stay
as they were: the contract reads them as version 1, unchained history.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloud_sync.contract.event_envelope import (
    Attribution,
    EventEnvelope,
    EventType,
    encode,
    event_hash,
    event_id,
)
from edge_agent.cache.timestamps import to_us
from edge_agent.cache.transaction import transaction

# The envelope, its types and its id are the wire contract's; the box's writers take them
# from here with the rest of the event log.
__all__ = [
    "Attribution",
    "EventEnvelope",
    "EventType",
    "OutboxItem",
    "ack",
    "append",
    "build_event",
    "event_id",
    "pending",
]


def build_event(
    *,
    box_id: str,
    seq: int,
    type: EventType,
    occurred_at: datetime,
    code: str | None,
    attribution: Attribution,
    amount: int = 0,
    details: dict[str, Any] | None = None,
    random_bytes: bytes,
    prev_hash: str,
) -> EventEnvelope:
    """Pure: everything, including randomness, comes in as arguments."""
    return EventEnvelope(
        event_id=event_id(occurred_at, random_bytes),
        box_id=box_id,
        seq=seq,
        type=type,
        occurred_at=occurred_at,
        code=code,
        attribution=attribution,
        amount=amount,
        details=dict(details or {}),
        prev_hash=prev_hash,
    )


def append(
    conn: sqlite3.Connection,
    *,
    box_id: str,
    type: EventType,
    occurred_at: datetime,
    code: str | None,
    attribution: Attribution,
    amount: int = 0,
    details: dict[str, Any] | None = None,
) -> EventEnvelope:
    """Allocate the next sequence number and write the event and its outbox row.

    Must run inside the caller's BEGIN IMMEDIATE transaction: that is what makes the state
    change, the event and the outbox row all-or-nothing, the sequence gap-free and the chain
    unforked.
    """
    if not conn.in_transaction:
        raise RuntimeError("event_log.append must run inside the caller's transaction")
    # One statement reads the sequence and the chain head: append is on the till's path.
    row = conn.execute(
        "UPDATE meta SET value = value + 1 WHERE key = 'next_seq' "
        "RETURNING value - 1, (SELECT value FROM meta WHERE key = 'chain_head')"
    ).fetchone()
    event = build_event(
        box_id=box_id,
        seq=int(row[0]),
        type=type,
        occurred_at=occurred_at,
        code=code,
        attribution=attribution,
        amount=amount,
        details=details,
        random_bytes=os.urandom(10),
        prev_hash=str(row[1]),
    )
    payload = encode(event)  # the same text in both tables: the outbox sends what was logged
    conn.execute("UPDATE meta SET value = ? WHERE key = 'chain_head'", (event_hash(payload),))
    conn.execute(
        "INSERT INTO events (seq, event_id, type, code, occurred_us, body) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (event.seq, event.event_id, event.type.value, code, to_us(occurred_at), payload),
    )
    conn.execute("INSERT INTO outbox (seq, payload) VALUES (?, ?)", (event.seq, payload))
    return event


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxItem:
    seq: int
    payload: str  # the event as JSON, exactly as it will be sent


def pending(conn: sqlite3.Connection, limit: int) -> tuple[OutboxItem, ...]:
    rows = conn.execute("SELECT seq, payload FROM outbox ORDER BY seq LIMIT ?", (limit,))
    return tuple(OutboxItem(seq=s, payload=p) for s, p in rows)


def ack(conn: sqlite3.Connection, up_to_seq: int) -> int:
    """Delete every outbox row up to and including ``up_to_seq``; return how many went."""
    with transaction(conn):
        deleted = conn.execute("DELETE FROM outbox WHERE seq <= ?", (up_to_seq,)).rowcount
    return int(deleted)
