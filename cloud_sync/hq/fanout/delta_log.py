"""Each store's delta stream at HQ: appended in order, signed once, kept to catch boxes up.

Theory of operation
-------------------
A store's stream (``delta_heads``) is made on its first delta, with a random 32-hex id, and
grows by one seq per delta, without a gap, in the transaction that appends it; the signed
document is stored as sent (``deltas``), so a box that asks again (``catch_up``) gets the very
bytes the others got, and a resend costs no signature. One fan-out appends at a time
(``LOCK``), so seqs need no other guard.

``append`` cuts the changes into deltas of at most ``delta.MAX_CHANGES`` changes and
``delta.MAX_DELTA_BYTES`` of text: a page of changes that is too big is halved until it fits.

A box's position (``follow_position.py``) is answered by ``catch_up``: the deltas after its
watermark, oldest first, at most ``limit`` of them (the box says its position again when it
has applied them, so a box far behind comes up page by page). When the box's cache follows
another stream, or none, or the deltas it lacks are no longer kept (``prune``), deltas cannot
bring it up: the answer says why, and the box needs a snapshot.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.contract import delta
from cloud_sync.contract.delta import Change, Delta
from cloud_sync.contract.follow_position import FollowPosition
from cloud_sync.contract.hq_document import Kind
from cloud_sync.hq import hq_signer
from cloud_sync.hq.fanout import member_issues, member_points
from cloud_sync.hq.ingest.event_store import Tx, to_micros
from cloud_sync.hq.snapshot import FollowPoint

LOCK: Final = "storeside:fanout"


@dataclass(frozen=True, slots=True, kw_only=True)
class Head:
    stream: str
    seq: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Published:
    store_id: str
    seq: int
    document: bytes  # the signed document, as published


@dataclass(frozen=True, slots=True, kw_only=True)
class CatchUp:
    documents: tuple[Published, ...] = ()
    needs_snapshot: str | None = None  # why deltas cannot bring the box up


def head(tx: Tx, store_id: str) -> Head | None:
    rows = tx.query("SELECT stream, seq FROM delta_heads WHERE store_id = ?", (store_id,))
    return Head(stream=str(rows[0][0]), seq=int(rows[0][1])) if rows else None


def start(tx: Tx, store_id: str, *, now: datetime) -> Head:
    """The store's stream head, made (a new stream at seq 0) if it has none."""
    found = head(tx, store_id)
    if found is not None:
        return found
    made = Head(stream=secrets.token_hex(16), seq=0)
    tx.execute(
        "INSERT INTO delta_heads (store_id, stream, seq, updated_at) VALUES (?, ?, 0, ?)",
        (store_id, made.stream, to_micros(now)),
    )
    return made


def restart(tx: Tx, store_id: str, *, now: datetime) -> Head:
    """Give the store a new stream at seq 0 and forget the old one's deltas: every box
    following the old stream then needs a snapshot (``catch_up`` says so), which is how a
    backlog too big for deltas reaches the boxes (``producer.step``)."""
    made = Head(stream=secrets.token_hex(16), seq=0)
    tx.execute("DELETE FROM deltas WHERE store_id = ?", (store_id,))
    tx.execute("DELETE FROM delta_heads WHERE store_id = ?", (store_id,))
    tx.execute(
        "INSERT INTO delta_heads (store_id, stream, seq, updated_at) VALUES (?, ?, 0, ?)",
        (store_id, made.stream, to_micros(now)),
    )
    return made


def follow_point(tx: Tx, store_id: str, *, now: datetime) -> FollowPoint:
    """Where a snapshot of ``store_id`` cut now stands in its stream (made if it has none),
    with the use totals the deltas so far carried and the fleet's issues of the last
    ``member_issues.WINDOW``; under ``LOCK``, so no step is half in it."""
    tx.lock_keys([LOCK])
    at = start(tx, store_id, now=now)
    uses = tx.query(
        "SELECT code, box_id, store_id, till_id, transaction_id, last_at, uses "
        "FROM code_box_use WHERE last_at > 0 ORDER BY code, box_id"
    )
    campaign_uses = tx.query(
        "SELECT campaign_id, box_id, store_id, redemptions, discount FROM campaign_box_use "
        "ORDER BY campaign_id, box_id"
    )
    return FollowPoint(
        stream=at.stream,
        seq=at.seq,
        uses=uses,
        campaign_uses=campaign_uses,
        issues=member_issues.recent(tx, now=now),
        points=member_points.balances(tx),
    )


def append(
    tx: Tx,
    store_id: str,
    changes: Sequence[Change],
    *,
    key: Ed25519PrivateKey,
    now: datetime,
) -> list[Published]:
    """``changes`` as the store's next deltas, signed and stored; what to publish."""
    if not changes:
        return []
    at = start(tx, store_id, now=now)
    seq = at.seq
    made: list[Published] = []
    rest = list(changes)
    while rest:
        size = min(len(rest), delta.MAX_CHANGES)
        while True:
            step = Delta(
                store_id=store_id,
                stream=at.stream,
                seq=seq + 1,
                issued_at=now,
                changes=tuple(rest[:size]),
            )
            try:
                body = delta.encode(step)
                break
            except ValueError:  # over the byte bound: fewer changes
                if size == 1:
                    raise
                size //= 2
        seq += 1
        document = hq_signer.sign(Kind.DELTA, body, key)
        tx.execute(
            "INSERT INTO deltas (store_id, seq, made_at, changes, document) VALUES (?, ?, ?, ?, ?)",
            (store_id, seq, to_micros(now), size, document),
        )
        made.append(Published(store_id=store_id, seq=seq, document=document))
        rest = rest[size:]
    tx.execute(
        "UPDATE delta_heads SET seq = ?, updated_at = ? WHERE store_id = ?",
        (seq, to_micros(now), store_id),
    )
    return made


def catch_up(tx: Tx, position: FollowPosition, *, limit: int) -> CatchUp:
    """What to send a box at ``position`` (see the module docstring)."""
    at = head(tx, position.store_id)
    if position.stream is None:
        return CatchUp(needs_snapshot="the cache follows no delta stream")
    if at is None:  # HQ never started this stream (restored from a backup before it?)
        return CatchUp(
            needs_snapshot=f"the store has no stream; the cache follows {position.stream}"
        )
    if position.stream != at.stream:
        return CatchUp(
            needs_snapshot=f"the cache follows stream {position.stream}, not {at.stream}"
        )
    if position.watermark >= at.seq:
        return CatchUp()
    rows = tx.query(
        "SELECT seq, document FROM deltas WHERE store_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        (position.store_id, position.watermark, limit),
    )
    if not rows or int(rows[0][0]) != position.watermark + 1:
        why = f"delta {position.watermark + 1} is no longer kept"
        return CatchUp(needs_snapshot=why)
    return CatchUp(
        documents=tuple(
            Published(store_id=position.store_id, seq=int(s), document=bytes(d)) for s, d in rows
        )
    )


def prune(tx: Tx, *, before: datetime, keep: int) -> int:
    """Forget deltas made before ``before``, but never a store's last ``keep``; how many."""
    return tx.execute(
        "DELETE FROM deltas WHERE made_at < ? AND seq <= "
        "(SELECT h.seq FROM delta_heads AS h WHERE h.store_id = deltas.store_id) - ?",
        (to_micros(before), keep),
    )
