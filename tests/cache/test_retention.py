"""Pruning keeps hot tables small without losing anything single use depends on."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from config.model import AgentConfig
from edge_agent.cache.retention import prune
from edge_agent.domain.decision import Accepted
from edge_agent.domain.promotion import Member
from edge_agent.domain.receipt_campaigns import default_receipt_campaigns
from edge_agent.issuing import signing_key
from edge_agent.issuing.outcome import Checkout
from edge_agent.printing import print_queue
from edge_agent.redemption.service import RedemptionService
from edge_agent.wiring import open_services
from tests.cache.factories import BASKET, FMT, NOW, A, G, open_cache, req, write_snapshot
from tests.printing.factories import queue_job


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
    assert count(service, "events") == 2

    # Nothing acknowledged yet: old events stay, whatever their age.
    report = prune(cache, now=later, keep=timedelta(days=20))
    assert report.events == 0
    assert report.requests == 1  # the old commit's idempotency record
    cache.ack_outbox(1)  # HQ acknowledged the old redemption's event
    report = prune(cache, now=later, keep=timedelta(days=20))
    assert report.events == 1
    assert count(service, "events") == 1  # the recent one stays
    assert count(service, "reservations") == 1  # still live

    # Single use survives pruning: the code is still redeemed.
    (again,) = service.validate(req(A, txn=None, member="M1", now=later))
    assert again.reason.value == "ALREADY_REDEEMED"  # type: ignore[union-attr]
    assert prune(cache, now=later + timedelta(minutes=6), keep=timedelta(days=20)).holds == 1
    cache.close()


def test_prune_drops_finished_print_jobs_but_keeps_open_ones(tmp_path: Path) -> None:
    cache = open_cache(tmp_path / "c.db")
    with cache.transaction() as conn:
        done = queue_job(conn, code=A, transaction_id="T-1", now=NOW)
        queue_job(conn, code=G, transaction_id="T-2", now=NOW)
    job = print_queue.claim(cache.conn, now=NOW, policy=print_queue.RetryPolicy())
    assert job is not None and job.id == done
    assert print_queue.mark_printed(cache.conn, done, now=NOW)
    later = NOW + timedelta(days=25)
    assert prune(cache, now=later, keep=timedelta(days=30)).print_jobs == 0  # too recent
    assert prune(cache, now=later, keep=timedelta(days=20)).print_jobs == 1
    assert (
        print_queue.transaction_status(cache.conn, till_id="till-1", transaction_id="T-2")
        is not None
    )  # still to print
    cache.close()


def test_services_housekeeping_also_forgets_old_coupon_issues(tmp_path: Path) -> None:
    cfg = AgentConfig.model_validate(
        {
            "store": {"store_id": "S1", "namespace": "K7"},
            "cache": {"path": str(tmp_path / "c.db")},
            "signing": {"key_path": str(tmp_path / "store.key")},
        }
    )
    signing_key.create(tmp_path / "store.key")
    services = open_services(cfg)
    try:
        snapshot = write_snapshot(  # HQ's: the campaigns, the member and S1's namespace
            tmp_path / "s1.snapshot.db",
            store_id="S1",
            campaigns=default_receipt_campaigns(
                starts_at=NOW - timedelta(days=1), ends_at=NOW + timedelta(days=90)
            ),
            members=[Member(member_id="M9", segment="loyal")],
            namespace="K7",
        )
        services.cache.load_snapshot(snapshot)
        services.cache.set_synced_at(NOW)
        services.issuing.issue(  # issued or held out: either way an issue row is written
            Checkout(
                transaction_id="T-9",
                till_id="till-1",
                cashier_id="c",
                basket=BASKET,
                now=NOW,
                member_id="M9",
            )
        )
        report = services.housekeeping(now=NOW + timedelta(days=60), keep=timedelta(days=30))
        assert report.issues == 1 and report.anything
    finally:
        services.close()
