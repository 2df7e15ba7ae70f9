"""HQ's key rotation at HQ: the next signing key announced, signed by the current one.

Theory of operation
-------------------
``announce`` signs a ``KeyAnnouncement`` (``cloud_sync/contract/hq_key.py``) of the next key
with the key HQ signs with now, optionally retiring the current one from ``retire_at``, and
keeps the signed document in the event store (``hq_announcements``). The fan-out sends every
kept announcement, oldest first, to a box with each answer to its position, so a box that
connects hears every step of the chain from its pinned key on (A announced B, B announced C)
before any delta signed by the newest key. Only then does the operator switch the fan-out to
the next key (``storeside-hq fanout --hq-key NEXT``); a box that missed all of it refuses the
new key's deltas (``unknown_key``, in its log) until its installer pins the new key.
"""

from __future__ import annotations

from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.contract import hq_key
from cloud_sync.contract.hq_document import Kind
from cloud_sync.contract.hq_key import KeyAnnouncement
from cloud_sync.hq import hq_signer
from cloud_sync.hq.ingest.event_store import Tx, to_micros
from edge_agent.domain.coupon_token import key_id, raw_public_key


def announce(
    tx: Tx,
    *,
    current: Ed25519PrivateKey,
    next_key: Ed25519PrivateKey,
    retire_at: datetime | None,
    now: datetime,
) -> KeyAnnouncement:
    """Announce ``next_key`` signed by ``current`` (retiring it from ``retire_at`` if given);
    kept for the fan-out to send. Announcing the same key again replaces its announcement."""
    public = next_key.public_key()
    announcement = KeyAnnouncement(
        key_id=key_id(public),
        public_key=raw_public_key(public),
        announced_at=now,
        retires=None if retire_at is None else key_id(current.public_key()),
        retire_at=retire_at,
    )
    document = hq_signer.sign(Kind.HQ_KEY, hq_key.encode(announcement), current)
    tx.execute(
        "INSERT INTO hq_announcements (key_id, made_at, document) VALUES (?, ?, ?) "
        "ON CONFLICT (key_id) DO UPDATE SET made_at = excluded.made_at, "
        "document = excluded.document",
        (announcement.key_id, to_micros(now), document),
    )
    return announcement


def documents(tx: Tx) -> list[bytes]:
    """Every announcement kept, oldest first: the chain from the first key on."""
    rows = tx.query("SELECT document FROM hq_announcements ORDER BY made_at, key_id")
    return [bytes(r[0]) for r in rows]
