"""The event log: events built on the box, appended with their outbox row in one transaction.

An event is what HQ learns about a state change: a time-ordered id generated here (UUIDv7
layout, so ids sort by time and append at the right edge of any index), this box's id, a per-box
sequence number that is gap-free because it is allocated inside the same SQLite transaction as
the change (a rollback returns it), the type, when, the attribution DOMAIN.md section 3 asks
for, and the amount. The outbox holds the serialised event until HQ acknowledges its sequence
number; acknowledged rows are deleted so the hot tables stay small.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from edge_agent.cache.timestamps import to_us


class EventType(StrEnum):
    RESERVED = "code.reserved"
    REDEEMED = "code.redeemed"
    VOIDED = "code.voided"
    REVERSED = "code.reversed"
    LINKED = "code.linked"
    TILL_THROTTLED = "till.throttled"  # fraud flag: brute force from one till
    COUPON_ISSUED = "coupon.issued"  # a receipt coupon minted at checkout
    COUPON_WITHHELD = "coupon.withheld"  # holdout: what the member would have got


@dataclass(frozen=True, slots=True, kw_only=True)
class Attribution:
    store_id: str
    till_id: str
    cashier_id: str
    transaction_id: str | None = None
    member_id: str | None = None
    campaign_id: str | None = None
    variant: str | None = None
    channel: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerEvent:
    event_id: str
    box_id: str
    seq: int
    type: EventType
    occurred_at: datetime
    code: str | None
    attribution: Attribution
    amount: int = 0  # minor units: discount granted (redeemed) or given back (reversed)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        a = self.attribution
        return {
            "event_id": self.event_id,
            "box_id": self.box_id,
            "seq": self.seq,
            "type": self.type.value,
            "occurred_at": self.occurred_at.astimezone(UTC).isoformat(),
            "code": self.code,
            "store_id": a.store_id,
            "till_id": a.till_id,
            "cashier_id": a.cashier_id,
            "transaction_id": a.transaction_id,
            "member_id": a.member_id,
            "campaign_id": a.campaign_id,
            "variant": a.variant,
            "channel": a.channel,
            "amount": self.amount,
            "details": self.details,
        }

    def to_json(self) -> str:
        return _EVENT_JSON.encode(self.to_dict())


# One encoder for every event: json.dumps with options builds a new one per call.
_EVENT_JSON = json.JSONEncoder(separators=(",", ":"), sort_keys=True)


def event_id(at: datetime, random_bytes: bytes) -> str:
    """A UUIDv7-layout id as 32 hex digits: 48-bit Unix ms, version 7, variant, 74 random bits."""
    if len(random_bytes) != 10:
        raise ValueError("event_id needs 10 random bytes")
    ms = int(at.timestamp() * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(random_bytes, "big")
    rand_a = (rand >> 68) & 0xFFF  # 12 bits
    rand_b = rand & ((1 << 62) - 1)  # 62 bits
    value = (ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return f"{value:032x}"


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
) -> LedgerEvent:
    """Pure: everything, including randomness, comes in as arguments."""
    return LedgerEvent(
        event_id=event_id(occurred_at, random_bytes),
        box_id=box_id,
        seq=seq,
        type=type,
        occurred_at=occurred_at,
        code=code,
        attribution=attribution,
        amount=amount,
        details=dict(details or {}),
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
) -> LedgerEvent:
    """Allocate the next sequence number and write the event and its outbox row.

    Must run inside the caller's BEGIN IMMEDIATE transaction: that is what makes the state
    change, the event and the outbox row all-or-nothing and the sequence gap-free.
    """
    if not conn.in_transaction:
        raise RuntimeError("event_log.append must run inside the caller's transaction")
    row = conn.execute(
        "UPDATE meta SET value = value + 1 WHERE key = 'next_seq' RETURNING value - 1"
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
    )
    payload = event.to_json()
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
    conn.execute("BEGIN IMMEDIATE")
    try:
        deleted = conn.execute("DELETE FROM outbox WHERE seq <= ?", (up_to_seq,)).rowcount
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return int(deleted)
