"""Child process for the kill -9 test: redeem codes in a loop, print each acknowledged one.

Usage: python -m tests.redemption.crash_worker CACHE_PATH ROUND [TILLS]

Every line printed (and flushed) is a promise: "this transaction is committed". The parent
kills this process with SIGKILL at a random moment and then checks every promise was kept.
Each fifth code is reserved then voided instead, so holds and voids are in flight too.
With TILLS, that many threads act as tills at once through the agent's ``DbThread`` with group
commit, so the kill lands while batches sharing one fsync are in flight; a line is printed
only once the call that acknowledged it has returned.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from edge_agent.cache.code_cache import CodeCache
from edge_agent.domain.decision import ValidationRequest
from edge_agent.redemption.outcomes import CommitOutcome, ReserveOutcome
from edge_agent.redemption.service import RedemptionService
from edge_agent.runtime.db_thread import DbThread
from edge_agent.services import StoreServices
from tests.cache.factories import BASKET, FMT, STORE


class Till:
    """How a till reaches the service: directly, or (``ViaDb``) through the DB thread."""

    def __init__(self, service: RedemptionService) -> None:
        self.service = service

    def reserve(self, r: ValidationRequest) -> tuple[ReserveOutcome, ...]:
        return self.service.reserve(r)

    def commit(self, r: ValidationRequest) -> tuple[CommitOutcome, ...]:
        return self.service.commit(r)

    def void(self, r: ValidationRequest) -> None:
        void(self.service, r)


class ViaDb(Till):
    def __init__(self, db: DbThread) -> None:
        self.db = db

    def reserve(self, r: ValidationRequest) -> tuple[ReserveOutcome, ...]:
        return self.db.call(lambda s: s.redemption.reserve(r), group=True)

    def commit(self, r: ValidationRequest) -> tuple[CommitOutcome, ...]:
        return self.db.call(lambda s: s.redemption.commit(r), group=True)

    def void(self, r: ValidationRequest) -> None:
        self.db.call(lambda s: void(s.redemption, r), group=True)


def void(service: RedemptionService, r: ValidationRequest) -> None:
    service.void(
        transaction_id=r.transaction_id or "",
        code=r.codes[0],
        store_id=STORE,
        till_id=r.till_id,
        cashier_id="cashier-1",
        now=datetime.now(UTC),
    )


def free_codes(cache: CodeCache) -> list[str]:
    return [
        c
        for (c,) in cache.conn.execute(
            "SELECT code FROM codes WHERE campaign_id = 'CRASH' "
            "AND code NOT IN (SELECT code FROM redemptions) "
            "AND code NOT IN (SELECT code FROM reservations) ORDER BY code"
        )
    ]


def till(round_: str, free: list[str], via: Till, say: Callable[[str], None]) -> None:
    for i, code in enumerate(free):
        txn = f"K-{round_}-{i}"
        request = ValidationRequest(
            codes=(code,),
            store_id=STORE,
            till_id=f"till-{i % 3}",
            cashier_id="cashier-1",
            basket=BASKET,
            now=datetime.now(UTC),
            member_id=None,
            transaction_id=txn,
        )
        (held,) = via.reserve(request)
        if not held.decision.ok:
            raise SystemExit(f"reserve refused: {held.decision}")
        if i % 5 == 4:
            via.void(request)
            say(f"void {txn} {code}")
            continue
        (done,) = via.commit(request)
        if done.redemption is None:
            raise SystemExit(f"commit refused: {done.decision}")
        say(f"commit {txn} {code}")


def say_flushed(line: str) -> None:
    print(line, flush=True)


def main(path: str, round_: str) -> None:
    cache = CodeCache.open(path, store_id=STORE)
    service = RedemptionService(cache, fmt=FMT)
    till(round_, free_codes(cache), Till(service), say_flushed)
    say_flushed("exhausted")


def main_tills(path: str, round_: str, tills: int) -> None:
    def open_services() -> StoreServices:
        cache = CodeCache.open(path, store_id=STORE)
        return StoreServices(
            cache=cache, redemption=RedemptionService(cache, fmt=FMT), issuing_service=None
        )

    db = DbThread(open_services)
    free = db.call(lambda s: free_codes(s.cache))
    lock = threading.Lock()

    def say(line: str) -> None:
        with lock:
            say_flushed(line)

    threads = [
        threading.Thread(target=till, args=(f"{round_}-{n}", free[n::tills], ViaDb(db), say))
        for n in range(tills)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    say("exhausted")


if __name__ == "__main__":
    if len(sys.argv) > 3:
        main_tills(sys.argv[1], sys.argv[2], int(sys.argv[3]))
    else:
        main(sys.argv[1], sys.argv[2])
