"""HQ's registry of store coupon signing keys: register, revoke, list; shipped in snapshots.

A store prints receipt coupons signed with its own Ed25519 key (``edge-agent keys init``; the
private half never leaves the box). HQ registers the public half under the store's id and every
snapshot carries the whole registry (``store_keys``), so any store can verify any store's
coupons offline. A key is never deleted: revoking it (a stolen or retired box) keeps the row
with ``revoked_at`` so that stores refuse its coupons, the store's own copy included.

Key ids are 4-byte fingerprints (``token_codec.key_id_of``), which is what a token carries; two
keys with one id are refused at registration (a new key is then generated), so an id always
names one key.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from cloud_sync.hq import change_journal
from cloud_sync.hq.central_store import CentralStore, from_epoch, to_epoch
from cloud_sync.hq.change_journal import Kind
from cloud_sync.hq.errors import InputError
from cloud_sync.hq.hq_schema import transaction
from edge_agent.domain.token_codec import key_id_of, public_key_from_text, public_key_text


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreKey:
    key_id: str
    store_id: str
    public_key: str  # text form (unpadded base64url)
    registered_at: datetime
    revoked_at: datetime | None


def _row(row: sqlite3.Row | tuple[object, ...]) -> StoreKey:
    kid, store, raw, registered, revoked = row
    assert isinstance(raw, bytes) and isinstance(registered, int)
    return StoreKey(
        key_id=str(kid),
        store_id=str(store),
        public_key=public_key_text(raw),
        registered_at=from_epoch(registered),
        revoked_at=None if revoked is None else from_epoch(int(str(revoked))),
    )


_SELECT = "SELECT key_id, store_id, public_key, registered_at, revoked_at FROM store_keys"


def register(central: CentralStore, store_id: str, public_key: str, *, now: datetime) -> StoreKey:
    """Trust ``public_key`` (text form) as ``store_id``'s. Registering the same key for the
    same store again answers the existing row; anything else that clashes is refused."""
    store_id = store_id.strip()
    if not store_id:
        raise InputError("store id must not be empty")
    raw = public_key_from_text(public_key)
    if raw is None:
        raise InputError(
            "public key: expected the 32-byte Ed25519 key as base64url or 64 hex digits "
            "(as `edge-agent keys show` prints it)"
        )
    kid = key_id_of(raw)
    conn = central.conn
    with transaction(conn):
        row = conn.execute(f"{_SELECT} WHERE key_id = ?", (kid,)).fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO store_keys VALUES (?, ?, ?, ?, NULL)",
                (kid, store_id, raw, to_epoch(now)),
            )
            change_journal.record(conn, Kind.STORE_KEY, [kid], at=to_epoch(now))
            row = conn.execute(f"{_SELECT} WHERE key_id = ?", (kid,)).fetchone()
    key = _row(row)
    if key.store_id != store_id or public_key_text(raw) != key.public_key:
        raise InputError(
            f"key id {kid} is already registered for store {key.store_id} with "
            f"{'this' if key.public_key == public_key_text(raw) else 'another'} key; "
            "generate a new key on the store"
        )
    if key.revoked_at is not None:
        raise InputError(f"key {kid} was revoked on {key.revoked_at:%Y-%m-%d}; generate a new one")
    return key


def revoke(central: CentralStore, key_id: str, *, now: datetime) -> StoreKey:
    conn = central.conn
    with transaction(conn):
        changed = conn.execute(
            "UPDATE store_keys SET revoked_at = coalesce(revoked_at, ?) WHERE key_id = ?",
            (to_epoch(now), key_id.strip().lower()),
        ).rowcount
        if changed:
            change_journal.record(conn, Kind.STORE_KEY, [key_id.strip().lower()], at=to_epoch(now))
    if not changed:
        raise InputError(f"no store key {key_id!r}")
    row = conn.execute(f"{_SELECT} WHERE key_id = ?", (key_id.strip().lower(),)).fetchone()
    return _row(row)


def keys(central: CentralStore) -> list[StoreKey]:
    return [_row(r) for r in central.conn.execute(f"{_SELECT} ORDER BY store_id, registered_at")]
