"""Print jobs for tests: a sample coupon queued for a sale, as the issuing path queues one."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from edge_agent.cache.code_cache import CodeCache
from edge_agent.printing import print_queue
from edge_agent.printing.document import sample_document


def queue_job(
    conn: sqlite3.Connection,
    *,
    code: str,
    transaction_id: str,
    till_id: str = "till-1",
    now: datetime | None = None,
) -> int:
    """Queue the sample coupon for (``till_id``, ``transaction_id``) in the open transaction."""
    return print_queue.enqueue(
        conn,
        code=code,
        till_id=till_id,
        transaction_id=transaction_id,
        document=sample_document(),
        now=now or datetime.now(UTC),
    )


def queue_job_in(cache_path: Path, *, code: str, transaction_id: str) -> None:
    """Open the cache file, queue one sample job and close it (as an agent left it)."""
    cache = CodeCache.open(cache_path, store_id="store-001")
    with cache.transaction() as conn:
        queue_job(conn, code=code, transaction_id=transaction_id)
    cache.close()
