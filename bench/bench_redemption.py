"""Durable redemptions: reserve at scan + commit at payment, each fsync'd (synchronous=FULL).

Runs the real RedemptionService (lookup + evaluate + state + ledger event + outbox, one
BEGIN IMMEDIATE transaction per step) against a fresh cache file in a temporary directory.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.report import figure, latency
from edge_agent.domain.basket import Basket, BasketLine
from edge_agent.domain.code_format import CodeFormat, make_code, random_symbols
from edge_agent.domain.code_record import CodeRecord
from edge_agent.domain.decision import ValidationRequest
from edge_agent.domain.promotion import Benefit, BenefitKind, Promotion, StackingRule
from edge_agent.store.cache import CodeCache
from edge_agent.store.redemptions import RedemptionService

N = 5_000
FMT = CodeFormat(prefix="SS")
BASKET = Basket(lines=(BasketLine(sku="SKU1", category="food", quantity=2, unit_price=1500),))


def main() -> None:
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        cache = CodeCache.open(Path(tmp) / "bench.db", store_id="S1")
        cache.put_campaign(
            Promotion(
                campaign_id="B1",
                name="Bench",
                benefit=Benefit(kind=BenefitKind.PERCENT_OFF, value=1000),
                stacking=StackingRule(stacking_class="coupon"),
                starts_at=now - timedelta(days=1),
                ends_at=now + timedelta(days=30),
            )
        )
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
        reserve_s: list[float] = []
        commit_s: list[float] = []
        started = time.perf_counter()
        for i, c in enumerate(codes):
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
        elapsed = time.perf_counter() - started
        figure("durable redemptions (reserve + commit)", N / elapsed, "per s", target=">= 500")
        latency("reserve", reserve_s)
        latency("commit", commit_s)
        cache.close()


if __name__ == "__main__":
    main()
