"""What an operator reads of the pushes: counts per state, the last failures, one offer.

Each view is a dataclass and a function over the store, as ``ingest/views.py``'s are: the CLI
prints them as text or as JSON through one pydantic ``TypeAdapter``, and tests read the same
functions. Each reads in one transaction, one consistent moment while workers write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cloud_sync.hq.ingest.event_store import EventStore, Row, Tx, from_micros, to_micros
from cloud_sync.hq.member_push.push_queue import PushState


@dataclass(frozen=True, slots=True, kw_only=True)
class PushRecord:
    """One offer's delivery record."""

    event_id: str
    box_id: str
    seq: int
    store_id: str
    member_id: str | None
    state: str  # PushState
    attempts: int
    due_at: datetime | None  # pending: when it is (next) due; None once final
    queued_at: datetime
    updated_at: datetime
    last_status: int | None  # the receiver's last HTTP status, None: no answer
    last_error: str | None  # the last failure's reason (a retry's, or the final one)


@dataclass(frozen=True, slots=True, kw_only=True)
class PushSummary:
    pending: int
    in_flight: int  # pending and claimed by a worker right now (its lease runs)
    delivered: int
    failed: int
    oldest_pending_at: datetime | None  # when the oldest pending offer was queued
    last_failures: tuple[PushRecord, ...]  # newest first


_RECORD = (
    "SELECT p.event_id, p.box_id, p.seq, e.store_id, e.member_id, p.state, p.attempts, "
    "p.due_at, p.queued_at, p.updated_at, p.last_status, p.last_error FROM member_push AS p "
    "JOIN events AS e ON e.box_id = p.box_id AND e.seq = p.seq"
)


def _record(row: Row) -> PushRecord:
    event_id, box, seq, store, member, state, attempts, due, queued, updated, status, error = row
    return PushRecord(
        event_id=str(event_id),
        box_id=str(box),
        seq=int(seq),
        store_id=str(store),
        member_id=None if member is None else str(member),
        state=str(state),
        attempts=int(attempts),
        due_at=from_micros(int(due)) if state == PushState.PENDING.value else None,
        queued_at=from_micros(int(queued)),
        updated_at=from_micros(int(updated)),
        last_status=None if status is None else int(status),
        last_error=None if error is None else str(error),
    )


def summary(store: EventStore, *, now: datetime, failures: int = 10) -> PushSummary:
    def read(tx: Tx) -> PushSummary:
        counts = {str(s): int(n) for s, n in tx.query(
            "SELECT state, count(*) FROM member_push GROUP BY state")}  # fmt: skip
        flight, oldest = tx.query(
            "SELECT count(CASE WHEN claim IS NOT NULL AND due_at > ? THEN 1 END), "
            "min(queued_at) FROM member_push WHERE state = ?",
            (to_micros(now), PushState.PENDING.value),
        )[0]
        failed = tx.query(
            _RECORD + " WHERE p.state = ? ORDER BY p.updated_at DESC, p.event_id LIMIT ?",
            (PushState.FAILED.value, failures),
        )
        return PushSummary(
            pending=counts.get(PushState.PENDING.value, 0),
            in_flight=int(flight or 0),
            delivered=counts.get(PushState.DELIVERED.value, 0),
            failed=counts.get(PushState.FAILED.value, 0),
            oldest_pending_at=None if oldest is None else from_micros(int(oldest)),
            last_failures=tuple(_record(r) for r in failed),
        )

    return store.run(read)


def record(store: EventStore, event_id: str) -> PushRecord | None:
    """The delivery record of the offer with ``event_id``; None if HQ queued no such offer."""
    rows = store.run(lambda tx: tx.query(_RECORD + " WHERE p.event_id = ?", (event_id,)))
    return _record(rows[0]) if rows else None
