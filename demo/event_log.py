"""The event log's part of the demo: what waits in the outbox for HQ."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from demo.narration import say, step


def event_log_story(cache_path: Path, store_id: str) -> None:
    step(f"{store_id}'s event log: every change is an event; HQ's acks emptied the outbox")
    with sqlite3.connect(cache_path) as conn:
        rows = conn.execute(
            "SELECT type, count(*) FROM events GROUP BY type ORDER BY min(seq)"
        ).fetchall()
        pending = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
    for event_type, count in rows:
        say(f"   {event_type:<16} x{count}")
    say(f"   {pending} events pending sync (each left the outbox on HQ's ack, not the broker's)")
