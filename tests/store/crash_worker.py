"""Child process for the kill -9 test: redeem codes in a loop, print each acknowledged one.

Usage: python -m tests.store.crash_worker CACHE_PATH ROUND

Every line printed (and flushed) is a promise: "this transaction is committed". The parent
kills this process with SIGKILL at a random moment and then checks every promise was kept.
Each fifth code is reserved then voided instead, so holds and voids are in flight too.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from edge_agent.domain.decision import ValidationRequest
from edge_agent.store.cache import CodeCache
from edge_agent.store.redemptions import RedemptionService
from tests.store.factories import BASKET, FMT, STORE


def main(path: str, round_: str) -> None:
    cache = CodeCache.open(path, store_id=STORE)
    service = RedemptionService(cache, fmt=FMT)
    free = [
        c
        for (c,) in cache.conn.execute(
            "SELECT code FROM codes WHERE campaign_id = 'CRASH' "
            "AND code NOT IN (SELECT code FROM redemptions) "
            "AND code NOT IN (SELECT code FROM reservations) ORDER BY code"
        )
    ]
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
        (held,) = service.reserve(request)
        if not held.decision.ok:
            raise SystemExit(f"reserve refused: {held.decision}")
        if i % 5 == 4:
            service.void(
                transaction_id=txn,
                code=code,
                store_id=STORE,
                till_id=request.till_id,
                cashier_id="cashier-1",
                now=datetime.now(UTC),
            )
            print(f"void {txn} {code}", flush=True)
            continue
        (done,) = service.commit(request)
        if done.redemption is None:
            raise SystemExit(f"commit refused: {done.decision}")
        print(f"commit {txn} {code}", flush=True)
    print("exhausted", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
