"""Durable redemptions: reserve at scan + commit at payment, each fsync'd (synchronous=FULL).

Runs the real RedemptionService (lookup + evaluate + state + event + outbox, one
BEGIN IMMEDIATE transaction per step) against a fresh cache file in a temporary directory.

Its floor runs in the same run, in interleaved blocks, on the same disk: raw SQLite transaction
pairs of the same shape (each an UPDATE of one row and two INSERTs, WAL, ``synchronous=FULL``,
automatic checkpoints off, checkpointed at the same points), back to back from one thread.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.fixtures import bench_campaign
from bench.report import against_floor, figure, latency
from edge_agent.cache.code_cache import CodeCache
from edge_agent.domain.basket import Basket, BasketLine
from edge_agent.domain.code_format import CodeFormat, make_code, random_symbols
from edge_agent.domain.code_record import CodeRecord
from edge_agent.domain.decision import ValidationRequest
from edge_agent.redemption.service import RedemptionService

N = 5_000
BLOCK = 500  # pairs per turn, alternating the service and the floor
FMT = CodeFormat(prefix="SS")
BASKET = Basket(lines=(BasketLine(sku="SKU1", category="food", quantity=2, unit_price=1500),))


class RawPairs:
    """The floor: two fsync'd transactions per pair, of the shape a reserve and a commit write."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = FULL")
        self.conn.execute("PRAGMA wal_autocheckpoint = 0")
        self.conn.execute("CREATE TABLE state (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
        self.conn.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        self.conn.execute("CREATE TABLE outbox (seq INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        self.conn.execute("INSERT INTO state VALUES (1, 0)")
        self.seq = 0
        self.body = "x" * 400  # about a event's JSON

    def pair(self) -> None:
        for _ in range(2):
            self.seq += 1
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute("UPDATE state SET v = v + 1 WHERE k = 1")
            self.conn.execute("INSERT INTO events VALUES (?, ?)", (self.seq, self.body))
            self.conn.execute("INSERT INTO outbox VALUES (?, ?)", (self.seq, self.body))
            self.conn.execute("COMMIT")

    def checkpoint(self) -> None:
        self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")


def main() -> None:
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        cache = CodeCache.open(Path(tmp) / "bench.db", store_id="S1")
        cache.put_campaign(bench_campaign(now))
        symbols = random_symbols(6 * N * 2)
        codes = sorted(
            {make_code(FMT, "B7", symbols[i : i + 6]) for i in range(0, len(symbols), 6)}
        )
        codes = codes[:N]
        cache.put_codes(
            CodeRecord(code=c, campaign_id="B1", member_id=f"M{i}") for i, c in enumerate(codes)
        )
        cache.set_synced_at(now)
        cache.checkpoint(truncate=True)
        service = RedemptionService(cache, fmt=FMT)
        raw = RawPairs(Path(tmp) / "floor.db")
        reserve_s: list[float] = []
        commit_s: list[float] = []
        elapsed = floor_elapsed = started = 0.0
        for i, c in enumerate(codes):
            if i % BLOCK == 0:
                if i:
                    elapsed += time.perf_counter() - started
                t = time.perf_counter()
                for j in range(BLOCK):
                    raw.pair()
                    if (i + j) % 1000 == 999:
                        raw.checkpoint()  # the same checkpoint points as the service below
                floor_elapsed += time.perf_counter() - t
                started = time.perf_counter()
            request = ValidationRequest(
                codes=(c,),
                store_id="S1",
                till_id=f"till-{i % 4}",
                cashier_id="k",
                basket=BASKET,
                now=datetime.now(UTC),
                member_id=f"M{i}",
                transaction_id=f"T-{i}",
            )
            t0 = time.perf_counter()
            (held,) = service.reserve(request)
            t1 = time.perf_counter()
            (done,) = service.commit(request)
            t2 = time.perf_counter()
            if held.hold_until is None or done.redemption is None:
                raise SystemExit(f"unexpected refusal: {held.decision} / {done.decision}")
            reserve_s.append(t1 - t0)
            commit_s.append(t2 - t1)
            if i % 1000 == 999:
                cache.checkpoint()  # off the hot path in the agent; excluded from the latencies
        elapsed += time.perf_counter() - started
        figure("durable redemptions (reserve + commit)", N / elapsed, "per s", target=">= 500")
        against_floor(
            "durable reserve+commit pairs, one till",
            N / elapsed,
            N / floor_elapsed,
            "pairs/s",
            target="ratio >= 0.8",
            lower_is_better=False,
        )
        latency("reserve", reserve_s)
        latency("commit", commit_s)
        cache.close()
        raw.conn.close()


if __name__ == "__main__":
    main()
