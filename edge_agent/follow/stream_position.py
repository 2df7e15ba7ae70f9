"""Where the cache stands in its store's delta stream, and the sums the hot path reads.

Kept apart from ``delta_apply`` so the snapshot load (``edge_agent/cache/snapshot_load.py``),
which sets the position a snapshot was cut at, needs nothing of the delta machinery.

    meta.delta_stream     the stream the cache follows; absent: none
    meta.delta_watermark  the seq of the last delta applied
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

# Per campaign: every other box's use, and this store's other boxes' (meta.store_id), from
# campaign_box_use; ?1 a campaign id, or NULL for all of them.
_SUMS_SQL = (
    "INSERT OR REPLACE INTO campaign_elsewhere SELECT campaign_id, sum(redemptions), "
    "sum(discount), coalesce(sum(redemptions) FILTER (WHERE store_id = "
    "(SELECT value FROM meta WHERE key = 'store_id')), 0) "
    "FROM campaign_box_use WHERE ?1 IS NULL OR campaign_id = ?1 GROUP BY campaign_id"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Position:
    stream: str | None  # None: the cache follows no stream yet
    watermark: int


def position(conn: sqlite3.Connection) -> Position:
    rows = dict(
        conn.execute(
            "SELECT key, value FROM meta WHERE key IN ('delta_stream', 'delta_watermark')"
        ).fetchall()
    )
    stream = rows.get("delta_stream")
    return Position(
        stream=None if stream is None else str(stream),
        watermark=int(rows.get("delta_watermark", 0)),
    )


def follow(conn: sqlite3.Connection, *, stream: str, watermark: int) -> None:
    """Inside the caller's transaction: from now on the cache follows ``stream`` after
    ``watermark`` (what a snapshot cut at that point says)."""
    conn.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
        "DO UPDATE SET value = excluded.value",
        (("delta_stream", stream), ("delta_watermark", watermark)),
    )


def refresh_campaign_sums(conn: sqlite3.Connection, campaign_id: str | None = None) -> None:
    """Inside the caller's transaction: ``campaign_elsewhere`` again from ``campaign_box_use``,
    for one campaign or (None) for all."""
    if campaign_id is None:
        conn.execute("DELETE FROM campaign_elsewhere")
    conn.execute(_SUMS_SQL, (campaign_id,))
