"""Schema migration for the trusted store keys (v5).

``store_keys`` holds the public half of every store's coupon signing key, as HQ distributes
them in snapshots (the same columns as the snapshot's optional ``store_keys`` table). Revoked
keys stay listed with ``revoked_at`` set: a revoked key must be refused even when it is the
store's own key, which ``TrustedKeys`` otherwise trusts without HQ's word. Times are UTC epoch
seconds, like every table HQ ships.
"""

from __future__ import annotations

import sqlite_utils

from cloud_sync.contract.snapshot_format import STORE_KEYS_DDL


def migrate(db: sqlite_utils.Database) -> None:
    """Public keys of every store's coupon signing key, as HQ distributes them."""
    db.execute(STORE_KEYS_DDL.format(name="store_keys"))
