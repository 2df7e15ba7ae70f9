"""Schema migration for the trusted store keys (v5).

``store_keys`` holds the public half of every store's coupon signing key, as HQ distributes
them in snapshots (the same columns as the snapshot's optional ``store_keys`` table). Revoked
keys stay listed with ``revoked_at`` set: a revoked key must be refused even when it is the
store's own key, which ``TrustedKeys`` otherwise trusts without HQ's word. Times are UTC epoch
seconds, like every table HQ ships.
"""

from __future__ import annotations

import sqlite_utils

STORE_KEYS_DDL = (
    "CREATE TABLE {name} (key_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, "
    "public_key BLOB NOT NULL, registered_at INTEGER NOT NULL, revoked_at INTEGER) WITHOUT ROWID"
)
STORE_KEY_COLUMNS = ("key_id", "store_id", "public_key", "registered_at", "revoked_at")


def migrate(db: sqlite_utils.Database) -> None:
    """Public keys of every store's coupon signing key, as HQ distributes them."""
    db.execute(STORE_KEYS_DDL.format(name="store_keys"))
