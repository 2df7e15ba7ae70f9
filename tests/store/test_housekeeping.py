"""Pruning keeps hot tables small without losing anything single use depends on."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from edge_agent.domain.decision import Accepted
from edge_agent.store.housekeeping import prune
from edge_agent.store.redemptions import RedemptionService
from tests.store.factories import FMT, NOW, A, G, open_cache, req


def count(service: RedemptionService, table: str) -> int:
    return int(service.cache.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_prune_drops_old_acked_history_but_keeps_single_use(tmp_path: Path) -> None:
    cache = open_cache(tmp_path / "c.db")
    service = RedemptionService(cache, fmt=FMT, hold=timedelta(minutes=5))
    (old,) = service.commit(req(A, txn="T-old", member="M1", now=NOW))
    assert isinstance(old.decision, Accepted)
    later = NOW + timedelta(days=25)  # the campaign runs until NOW + 30 days
    cache.set_synced_at(later)
    service.reserve(req(G, txn="T-new", member="M2", now=later))  # a live hold, recent event
    assert count(service, "ledger_events") == 2

    # Nothing acknowledged yet: old events stay, whatever their age.
    report = prune(cache, now=later, keep=timedelta(days=20))
    assert report.events == 0
    assert report.requests == 1  # the old commit's idempotency record
    cache.ack_outbox(1)  # HQ acknowledged the old redemption's event
    report = prune(cache, now=later, keep=timedelta(days=20))
    assert report.events == 1
    assert count(service, "ledger_events") == 1  # the recent one stays
    assert count(service, "reservations") == 1  # still live

    # Single use survives pruning: the code is still redeemed.
    (again,) = service.validate(req(A, txn=None, member="M1", now=later))
    assert again.reason.value == "ALREADY_REDEEMED"  # type: ignore[union-attr]
    assert prune(cache, now=later + timedelta(minutes=6), keep=timedelta(days=20)).holds == 1
    cache.close()
