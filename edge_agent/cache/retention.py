"""Keeping the cache's hot tables small, off the till's request path.

PERFORMANCE.md measured it: with ~1.4M unpruned event/outbox rows, redemption throughput fell
40-60% and p99.9 rose to 40-55 ms. So, on a timer:

* idempotency records (``requests``) older than the retention are dropped: no till retries a
  request after weeks;
* events older than the retention are dropped once HQ has acknowledged them (no longer
  in the outbox): HQ holds the events of record; the box keeps recent history for the till;
* holds past their time are deleted (they already stopped counting);
* print jobs that printed or were given up on are dropped after the retention.

Redemptions, reversals, links and usage counters are never pruned: they are what enforces
single use. Deletes run in small batches, each its own short transaction, so a till waiting
for the write lock waits for one batch at most.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from edge_agent.cache.code_cache import CodeCache
from edge_agent.cache.timestamps import to_us
from edge_agent.redemption.holds import expire_holds

_BATCH = 2_000


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneReport:
    requests: int
    events: int
    holds: int
    print_jobs: int
    issues: int = 0  # receipt coupon issue and proximity offer rows (the services fill it in)

    @property
    def anything(self) -> bool:
        return any((self.requests, self.events, self.holds, self.print_jobs, self.issues))


def _delete_in_batches(cache: CodeCache, sql: str, params: tuple[int, ...]) -> int:
    total = 0
    while True:
        with cache.transaction() as conn:
            deleted = conn.execute(sql, (*params, _BATCH)).rowcount
        total += deleted
        if deleted < _BATCH:
            return total


def prune(cache: CodeCache, *, now: datetime, keep: timedelta) -> PruneReport:
    """Drop what is older than ``keep`` and no longer needed; see the module docstring."""
    horizon = to_us(now - keep)
    requests = _delete_in_batches(
        cache,
        # WITHOUT ROWID tables: delete by primary key.
        "DELETE FROM requests WHERE (till_id, transaction_id, code, operation) IN "
        "(SELECT till_id, transaction_id, code, operation FROM requests "
        "WHERE created_us < ? LIMIT ?)",
        (horizon,),
    )
    events = _delete_in_batches(
        cache,
        "DELETE FROM events WHERE seq IN (SELECT seq FROM events "
        "WHERE occurred_us < ? AND seq < coalesce((SELECT min(seq) FROM outbox), 1 << 62) "
        "ORDER BY seq LIMIT ?)",
        (horizon,),
    )
    print_jobs = _delete_in_batches(
        cache,
        "DELETE FROM print_jobs WHERE id IN (SELECT id FROM print_jobs "
        "WHERE state IN ('printed', 'abandoned') AND updated_us < ? LIMIT ?)",
        (horizon,),
    )
    holds = expire_holds(cache, now)
    return PruneReport(requests=requests, events=events, holds=holds, print_jobs=print_jobs)
