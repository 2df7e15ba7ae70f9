"""The periodic jobs: WAL checkpoints and pruning, run on the SQLite thread off the request path.

PERFORMANCE.md: an automatic checkpoint landing on a till request is what makes the p99.9
latency spike, so automatic checkpoints are off and this timer does them; pruning keeps the hot
tables small (``edge_agent.cache.retention``). Both are core tasks: a cache that can no longer
be checkpointed or pruned is a broken box, and a restarted process is the honest answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from edge_agent.runtime.db_thread import DbThread
from edge_agent.runtime.supervisor import Kind, TaskSpec
from edge_agent.runtime.timer import Timer
from edge_agent.services import StoreServices

log = logging.getLogger(__name__)


async def every(
    timer: Timer, seconds: float, db: DbThread, job: Callable[[StoreServices], object]
) -> None:
    """Run ``job`` on the SQLite thread every ``seconds``, after the first interval."""
    while True:
        await timer.sleep(seconds)
        await db.run(job)


def checkpoint_task(db: DbThread, *, every_s: float, timer: Timer) -> TaskSpec:
    return TaskSpec(
        name="wal_checkpoint",
        kind=Kind.CORE,
        run=lambda: every(timer, every_s, db, lambda s: s.cache.checkpoint()),
    )


def housekeeping_task(
    db: DbThread,
    *,
    every_s: float,
    retention: timedelta,
    clock: Callable[[], datetime],
    timer: Timer,
) -> TaskSpec:
    # ``clock`` is the agent's domain clock (what "30 days old" is measured against, and what
    # the tests and the demo move); ``timer`` only paces the job.
    def prune(services: StoreServices) -> None:
        report = services.housekeeping(now=clock(), keep=retention)
        if report.anything:
            log.info("housekeeping: %s", report)

    return TaskSpec(
        name="housekeeping", kind=Kind.CORE, run=lambda: every(timer, every_s, db, prune)
    )
