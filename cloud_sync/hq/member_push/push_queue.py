"""The member-push queue: one row per stored ``offer.triggered``, its delivery record for good.

Theory of operation
-------------------
Ingest queues every stored ``offer.triggered`` in the transaction that stores the event
(``enqueue``, called by ``ingest/stream.py``): an event is stored exactly once, so it is queued
exactly once, and a resent batch (all duplicates) stores and queues nothing. The row is keyed
by the event id (the receiver's idempotency key) and stays after delivery: it is the offer's
delivery record, which ``status.py`` reads.

A row is ``pending`` until it is ``delivered`` (the receiver answered 2xx) or ``failed`` (a
permanent refusal, an offer that cannot be pushed or has expired, or the retries ran out);
both are final, until an operator requeues a failed one (``requeue``). A worker takes one due
pending row at a time (``claim``): in the same transaction it counts the attempt, pushes
``due_at`` a lease into the future and writes its claim token, so no other worker takes the
row while it is being sent, and a worker that dies mid-request leaves a row that falls due
again when the lease ends (the receiver then sees the event id a second time: at-least-once
delivery, see ``worker.py``). On PostgreSQL the pick skips rows another worker has locked
(``FOR UPDATE ... SKIP LOCKED``), so workers do not queue behind each other; SQLite has one
writer anyway. The conditional update is the claim either way.

Recording an outcome is conditional too: ``retry`` and ``fail`` only by the claim that took
the row (a worker whose lease ran out, and whose row another worker has claimed since, changes
nothing); ``delivered`` by any claim, since a 2xx is the final word whoever heard it, and a
delivered row is never set back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from cloud_sync.contract.event_envelope import EventType
from cloud_sync.hq.ingest.event_store import Tx, to_micros
from cloud_sync.hq.ingest.schema import Dialect

QUEUED: Final = EventType.OFFER_TRIGGERED.value
MAX_ERROR_CHARS: Final = 500  # what is kept of a failure's reason


class PushState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Claimed:
    """A row a worker has claimed: the attempt it is on, and the stored event's text."""

    event_id: str
    box_id: str
    seq: int
    attempt: int  # 1 for the first
    claim: str
    body: str


COLUMNS: Final = ("event_id", "box_id", "seq", "state", "attempts", "due_at", "queued_at",
                  "updated_at")  # fmt: skip
_PICK: Final = (
    "SELECT p.event_id, p.box_id, p.seq, p.attempts, e.body FROM member_push AS p "
    "JOIN events AS e ON e.box_id = p.box_id AND e.seq = p.seq "
    "WHERE p.state = 'pending' AND p.due_at <= ? ORDER BY p.due_at, p.event_id LIMIT 1"
)
_TAKE: Final = (
    "UPDATE member_push SET attempts = attempts + 1, due_at = ?, claim = ?, updated_at = ? "
    "WHERE event_id = ? AND state = 'pending' AND due_at <= ?"
)


def enqueue(tx: Tx, items: Sequence[tuple[str, str, int, int]]) -> None:
    """Queue ``(event_id, box_id, seq, received_at micros)`` of stored offers, due at once."""
    if items:
        tx.insert_many(
            "member_push",
            COLUMNS,
            [(e, b, s, PushState.PENDING.value, 0, at, at, at) for e, b, s, at in items],
        )


def claim(tx: Tx, *, now: datetime, lease: timedelta, token: str) -> Claimed | None:
    """The most overdue pending row, claimed for ``lease`` by ``token``; None if none is due."""
    at = to_micros(now)
    pick = _PICK + (" FOR UPDATE OF p SKIP LOCKED" if tx.dialect is Dialect.POSTGRESQL else "")
    rows = tx.query(pick, (at,))
    if not rows:
        return None
    event_id, box_id, seq, attempts, body = rows[0]
    if tx.execute(_TAKE, (to_micros(now + lease), token, at, event_id, at)) != 1:
        return None  # another worker took it between our read and our write
    return Claimed(
        event_id=str(event_id),
        box_id=str(box_id),
        seq=int(seq),
        attempt=int(attempts) + 1,
        claim=token,
        body=str(body),
    )


def delivered(tx: Tx, event_id: str, *, status: int, now: datetime) -> bool:
    """Record a 2xx; False if the row was not pending (delivered or failed already)."""
    return (
        tx.execute(
            "UPDATE member_push SET state = ?, last_status = ?, last_error = NULL, claim = NULL, "
            "updated_at = ? WHERE event_id = ? AND state = ?",
            (PushState.DELIVERED.value, status, to_micros(now), event_id, PushState.PENDING.value),
        )
        == 1
    )


def retry(
    tx: Tx, item: Claimed, *, due_at: datetime, status: int | None, error: str, now: datetime
) -> bool:
    """Record a transient failure: due again at ``due_at``; False if the claim was lost."""
    return _settle(tx, item, PushState.PENDING, due_at=due_at, status=status, error=error, now=now)


def fail(tx: Tx, item: Claimed, *, status: int | None, error: str, now: datetime) -> bool:
    """Record a permanent failure with its reason; False if the claim was lost."""
    return _settle(tx, item, PushState.FAILED, due_at=now, status=status, error=error, now=now)


def _settle(
    tx: Tx,
    item: Claimed,
    state: PushState,
    *,
    due_at: datetime,
    status: int | None,
    error: str,
    now: datetime,
) -> bool:
    """The claimed row ``state`` with its last answer, if the claim still holds it."""
    changed = tx.execute(
        "UPDATE member_push SET state = ?, due_at = ?, claim = NULL, last_status = ?, "
        "last_error = ?, updated_at = ? WHERE event_id = ? AND claim = ? AND state = ?",
        (
            state.value,
            to_micros(due_at),
            status,
            error[:MAX_ERROR_CHARS],
            to_micros(now),
            item.event_id,
            item.claim,
            PushState.PENDING.value,
        ),
    )
    return changed == 1


def requeue(tx: Tx, event_ids: Sequence[str] | None, *, now: datetime) -> int:
    """Failed offers (``event_ids``, or every one for None) pending again from their first
    attempt, due now: after the webhook or its secret is fixed. How many were requeued."""
    sql = (
        "UPDATE member_push SET state = ?, attempts = 0, due_at = ?, claim = NULL, "
        "updated_at = ? WHERE state = ?"
    )
    base: tuple[object, ...] = (
        PushState.PENDING.value,
        to_micros(now),
        to_micros(now),
        PushState.FAILED.value,
    )
    if event_ids is None:
        return tx.execute(sql, base)
    return sum(tx.execute(sql + " AND event_id = ?", (*base, e)) for e in dict.fromkeys(event_ids))
