"""Schema migration for the trusted store keys (v5). (Initial; the signing work owns it.)"""

from __future__ import annotations

import sqlite_utils


def migrate(db: sqlite_utils.Database) -> None:
    """Public keys of every store's coupon signing key, as HQ distributes them."""
    db.execute(
        "CREATE TABLE store_keys (key_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, "
        "public_key BLOB NOT NULL, not_before INTEGER, not_after INTEGER, "
        "revoked INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID"
    )
