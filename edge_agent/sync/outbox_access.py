"""The pump's reads and writes of the cache: run on the DB thread, each a short statement.

The outbox (``events/event_log.py``) holds the stored text of every event HQ has not
acknowledged, keyed by seq; the ``events`` table keeps each event for the retention period
after that, which is what a resend request is answered from. The rows the outbox holds are
always one contiguous run (events are appended at the top, acks delete from the bottom), so
its depth is ``max - min + 1`` read off the primary key, never a ``COUNT(*)`` over a backlog
of a million rows.

The link's own facts live in ``meta`` beside the sequence they describe, so ``edge-agent sync
status`` can read them from the file while the agent runs:

    acked_through   HQ's highest stored_through (outbox rows up to it are deleted with it)
    last_ack_us     when it last moved
    sync_session    the number of the link's latest connection (``presence.State.session``)
    sync_connected  1 while the agent holds a connection to the broker, 0 after it lost it
    sync_link_us    when that last changed
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from edge_agent.cache.code_cache import CodeCache
from edge_agent.cache.timestamps import from_us, to_us

Rows = list[tuple[int, str]]


def _meta(cache: CodeCache, key: str) -> str | None:
    row = cache.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def _set(cache: CodeCache, key: str, value: object) -> None:
    cache.conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def unsent(cache: CodeCache, *, from_seq: int, limit: int) -> Rows:
    """Up to ``limit`` outbox rows from ``from_seq`` on, in seq order."""
    rows = cache.conn.execute(
        "SELECT seq, payload FROM outbox WHERE seq >= ? ORDER BY seq LIMIT ?", (from_seq, limit)
    )
    return [(int(s), str(p)) for s, p in rows]


def history(cache: CodeCache, *, first: int, last: int, limit: int) -> Rows:
    """Events ``first..last`` as stored (for a resend request), at most ``limit``; what
    retention has pruned is simply not there."""
    rows = cache.conn.execute(
        "SELECT seq, body FROM events WHERE seq BETWEEN ? AND ? ORDER BY seq LIMIT ?",
        (first, last, limit),
    )
    return [(int(s), str(b)) for s, b in rows]


def acknowledge(cache: CodeCache, *, through: int, at: datetime) -> int:
    """HQ holds every event up to ``through``: drop them from the outbox and record the ack.
    Answers how many rows went. An ack below the recorded one changes nothing."""
    with cache.transaction() as conn:
        recorded = int(_meta(cache, "acked_through") or 0)
        if through <= recorded:
            return 0
        deleted = conn.execute("DELETE FROM outbox WHERE seq <= ?", (through,)).rowcount
        _set(cache, "acked_through", through)
        _set(cache, "last_ack_us", to_us(at))
    return int(deleted)


def acked_through(cache: CodeCache) -> int:
    return int(_meta(cache, "acked_through") or 0)


def new_session(cache: CodeCache) -> int:
    """The number of the connection about to be attempted: one more than the last."""
    with cache.transaction():
        number = session(cache) + 1
        _set(cache, "sync_session", number)
    return number


def session(cache: CodeCache) -> int:
    """The latest connection's session number; the next will be one more."""
    return int(_meta(cache, "sync_session") or 0)


def link_changed(cache: CodeCache, *, connected: bool, at: datetime) -> None:
    with cache.transaction():
        _set(cache, "sync_connected", 1 if connected else 0)
        _set(cache, "sync_link_us", to_us(at))


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncFacts:
    """How far behind the box is, as its file says (health and ``sync status``)."""

    outbox_depth: int
    oldest_unsent_seq: int | None
    oldest_unsent_at: datetime | None
    next_seq: int
    acked_through: int
    last_ack_at: datetime | None
    oldest_retained_seq: int | None
    session: int
    connected: bool | None  # None: the agent has never connected
    link_changed_at: datetime | None
    cache_version: str | None  # the loaded snapshot: "generation N, synced <time>"


def facts(cache: CodeCache) -> SyncFacts:
    conn = cache.conn
    low, high = conn.execute("SELECT min(seq), max(seq) FROM outbox").fetchone()
    oldest_at = None
    if low is not None:
        row = conn.execute("SELECT occurred_us FROM events WHERE seq = ?", (low,)).fetchone()
        oldest_at = None if row is None else from_us(int(row[0]))
    (retained,) = conn.execute("SELECT min(seq) FROM events").fetchone()
    last_ack = _meta(cache, "last_ack_us")
    connected = _meta(cache, "sync_connected")
    changed = _meta(cache, "sync_link_us")
    generation, synced = _meta(cache, "generation"), _meta(cache, "synced_at")
    return SyncFacts(
        outbox_depth=0 if low is None else int(high) - int(low) + 1,
        oldest_unsent_seq=None if low is None else int(low),
        oldest_unsent_at=oldest_at,
        next_seq=int(_meta(cache, "next_seq") or 1),
        acked_through=acked_through(cache),
        last_ack_at=None if last_ack is None else from_us(int(last_ack)),
        oldest_retained_seq=None if retained is None else int(retained),
        session=session(cache),
        connected=None if connected is None else connected == "1",
        link_changed_at=None if changed is None else from_us(int(changed)),
        cache_version=None if generation is None else f"generation {generation}, synced {synced}",
    )
