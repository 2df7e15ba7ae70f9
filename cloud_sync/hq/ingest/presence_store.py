"""Each box's presence at HQ: its last state (online/offline, by session) and latest health.

Theory of operation
-------------------
Both arrive retained, so a worker that starts gets every box's last one at once, and every
worker gets them (the subscriptions are not shared): each message may be applied by several
workers and in any order between them, so applying one must be idempotent and order-proof.

State. A box's session grows with every connect (``presence.py``), and its last will may
reach the broker after the next session's birth. So a state is ranked by ``(session,
offline)``: an ``offline`` outranks the ``online`` of its own session (the session ended), a
later session outranks both, and a state is applied only if it outranks the stored one. So
a will of session 4 arriving after the birth of session 5 changes nothing, an ``offline``
ends only its own session, and the same message applied twice is a no-op.

Health is a snapshot: the stored one is replaced by one of a later ``(session, at)``. It is
kept as received (its own decoder reads it back for the fleet view: one definition).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from cloud_sync.contract.presence import BoxState, Health, State
from cloud_sync.hq.ingest.event_store import Tx, to_micros

_ROW: Final = "SELECT session, state, health_session, health_measured_at FROM presence "
_NEW: Final = (
    "INSERT INTO presence (box_id, store_id) VALUES (?, ?) ON CONFLICT (box_id) DO NOTHING"
)


def _rank(session: int | None, state: str | None) -> tuple[int, int]:
    return (session or 0, 1 if state == BoxState.OFFLINE.value else 0)


def record_state(tx: Tx, state: State, *, received_at: datetime) -> bool:
    """Apply ``state`` if it outranks the stored one; whether it did."""
    tx.execute(_NEW, (state.box_id, state.store_id))
    session, stored, _, _ = tx.query(_ROW + "WHERE box_id = ?", (state.box_id,))[0]
    if stored is not None and _rank(state.session, state.state.value) <= _rank(session, stored):
        return False
    tx.execute(
        "UPDATE presence SET store_id = ?, state = ?, session = ?, state_at = ? WHERE box_id = ?",
        (
            state.store_id,
            state.state.value,
            state.session,
            to_micros(received_at),
            state.box_id,
        ),
    )
    return True


def record_health(tx: Tx, health: Health, text: str, *, received_at: datetime) -> bool:
    """Keep ``health`` (its payload ``text``) if it is later than the stored one."""
    tx.execute(_NEW, (health.box_id, health.store_id))
    _, _, session, measured = tx.query(_ROW + "WHERE box_id = ?", (health.box_id,))[0]
    at = to_micros(health.at)
    if session is not None and (health.session, at) <= (int(session), int(measured)):
        return False
    tx.execute(
        "UPDATE presence SET store_id = ?, health = ?, health_session = ?, "
        "health_measured_at = ?, health_at = ? WHERE box_id = ?",
        (health.store_id, text, health.session, at, to_micros(received_at), health.box_id),
    )
    return True
