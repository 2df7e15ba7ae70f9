"""Many tills at once: durable reserve+commit pairs from 1, 4 and 16 concurrent tills.

Each till is a thread making sequential reserve+commit pairs through the agent's ``DbThread``
(the one thread that owns SQLite), on a fresh cache file with ``synchronous=FULL``. Each count
runs twice in the same run: with group commit (``group=True``, as the POS API's write routes
submit: what is waiting shares one transaction and one fsync) and without (one transaction and
fsync each, as before). The floor beside each is the raw fsync'd transaction pairs of
bench_redemption, from one thread, measured in the same run just before; grouped throughput can
exceed it, which is the point of sharing fsyncs.
"""

from __future__ import annotations

import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.bench_redemption import BASKET, FMT, RawPairs
from bench.fixtures import bench_campaign
from bench.report import against_floor, figure
from edge_agent.cache.code_cache import CodeCache
from edge_agent.domain.code_format import make_code, random_symbols
from edge_agent.domain.code_record import CodeRecord
from edge_agent.domain.decision import ValidationRequest
from edge_agent.redemption.service import RedemptionService
from edge_agent.runtime.db_thread import DbThread
from edge_agent.services import StoreServices

SECONDS = 3.0  # per measurement
TILLS = (1, 4, 16)
FLOOR_PAIRS = 1_000


def _open(path: Path, codes: list[str]) -> DbThread:
    now = datetime.now(UTC)

    def open_services() -> StoreServices:
        cache = CodeCache.open(path, store_id="S1")
        cache.put_campaign(bench_campaign(now))
        cache.put_codes(CodeRecord(code=c, campaign_id="B1", member_id=None) for c in codes)
        cache.set_synced_at(now)
        cache.checkpoint(truncate=True)
        return StoreServices(
            cache=cache, redemption=RedemptionService(cache, fmt=FMT), issuing_service=None
        )

    return DbThread(open_services)


def _run(db: DbThread, tills: int, codes: list[str], *, group: bool) -> float:
    """Pairs per second from ``tills`` concurrent tills for about SECONDS."""
    stop = time.perf_counter() + SECONDS
    done = [0] * tills
    start = threading.Barrier(tills + 1)

    def till(n: int) -> None:
        mine = iter(codes[n::tills])
        start.wait()
        while time.perf_counter() < stop:
            code = next(mine)
            request = ValidationRequest(
                codes=(code,),
                store_id="S1",
                till_id=f"till-{n}",
                cashier_id="k",
                basket=BASKET,
                now=datetime.now(UTC),
                member_id=None,
                transaction_id=f"T-{code}",
            )
            (held,) = db.call(lambda s, r=request: s.redemption.reserve(r), group=group)
            (paid,) = db.call(lambda s, r=request: s.redemption.commit(r), group=group)
            if held.hold_until is None or paid.redemption is None:
                raise SystemExit(f"unexpected refusal: {held.decision} / {paid.decision}")
            done[n] += 1

    threads = [threading.Thread(target=till, args=(n,)) for n in range(tills)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    db.call(lambda s: s.cache.checkpoint())  # between measurements, as the agent does when idle
    return sum(done) / elapsed


def main() -> None:
    symbols = random_symbols(6 * 400_000)
    codes = sorted({make_code(FMT, "B7", symbols[i : i + 6]) for i in range(0, len(symbols), 6)})
    with tempfile.TemporaryDirectory() as tmp:
        db = _open(Path(tmp) / "bench.db", codes)
        raw = RawPairs(Path(tmp) / "floor.db")
        try:
            for _ in range(FLOOR_PAIRS):  # a fresh file's first pairs pay for growing the WAL
                raw.pair()
            raw.checkpoint()
            offset = 0
            for tills in TILLS:
                for group in (False, True):
                    t = time.perf_counter()
                    for _ in range(FLOOR_PAIRS):
                        raw.pair()
                    raw.checkpoint()
                    floor = FLOOR_PAIRS / (time.perf_counter() - t)
                    batches, batched = db.batches, db.batched
                    rate = _run(db, tills, codes[offset:], group=group)
                    offset += int(rate * SECONDS * 1.5) + 1000 * tills  # fresh codes each time
                    mode = "group commit" if group else "one fsync each"
                    against_floor(
                        f"durable reserve+commit pairs, {tills:>2} tills, {mode}",
                        rate,
                        floor,
                        "pairs/s",
                        lower_is_better=False,
                    )
                    if group:
                        n = db.batches - batches
                        size = (db.batched - batched) / n if n else 1.0
                        figure(f"  mean operations per grouped commit, {tills} tills", size, "ops")
        finally:
            db.close()
            raw.conn.close()


if __name__ == "__main__":
    main()
