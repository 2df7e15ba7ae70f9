"""The HQ keys a box has accepted from announcements, kept in the cache (``hq_keys``), so a
restart trusts what the box had already checked (the pin itself is config's, never here)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from edge_agent.cache.code_cache import CodeCache
from edge_agent.cache.timestamps import from_us, to_us
from edge_agent.sync.hq_trust import HqKey


def read(conn: sqlite3.Connection) -> list[HqKey]:
    return [
        HqKey(
            key_id=str(kid),
            public_key=bytes(raw),
            retire_at=None if at is None else from_us(int(at)),
        )
        for kid, raw, at in conn.execute(
            "SELECT key_id, public_key, retire_at_us FROM hq_keys ORDER BY key_id"
        )
    ]


def write(cache: CodeCache, keys: Iterable[HqKey]) -> None:
    """Replace the kept keys with ``keys`` (the whole announced set), in one transaction."""
    with cache.transaction() as conn:
        conn.execute("DELETE FROM hq_keys")
        conn.executemany(
            "INSERT INTO hq_keys VALUES (?, ?, ?)",
            [
                (k.key_id, k.public_key, None if k.retire_at is None else to_us(k.retire_at))
                for k in keys
            ],
        )
