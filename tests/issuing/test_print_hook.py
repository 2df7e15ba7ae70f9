"""The on_issued hook queues the coupon's print job in the issuing transaction."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from edge_agent.cache.code_cache import CodeCache
from edge_agent.issuing.outcome import IssuedCoupon
from edge_agent.issuing.print_hook import print_on_issue
from edge_agent.printing import print_queue as pq

COUPON = IssuedCoupon(
    code="SS22K7HQ2PM",
    display="SS-22K7-HQ2PM",
    qr_payload="SS1:TOKEN",
    campaign_id="receipt-loyal",
    campaign_name="Loyal",
    segment="loyal",
    variant="A",
    channel="receipt",
    member_id="M1",
    offer_text="10% off dairy",
    discount="10% off dairy",
    stacking_terms="Combines with tier discount, not with store sales",
    issued_at=datetime(2025, 7, 1, 9, 30, tzinfo=UTC),
    expires_at=datetime(2025, 7, 15, 0, 0, tzinfo=UTC),
    remind_at=None,
    store_id="S1",
    till_id="till-3",
    cashier_id="c-7",
    transaction_id="T-1",
    event_id="e1",
)


def test_hook_enqueues_inside_the_issue_transaction(tmp_path: Path) -> None:
    cache = CodeCache.open(tmp_path / "cache.db", store_id="S1")
    hook = print_on_issue(header_lines=["STORESIDE"], reminder="See you soon")
    with pytest.raises(RuntimeError), cache.transaction() as conn:
        hook(conn, COUPON)
        raise RuntimeError("issue rolled back")
    assert pq.transaction_status(cache.conn, till_id="till-3", transaction_id="T-1") is None
    with cache.transaction() as conn:
        hook(conn, COUPON)
    (job,) = pq.open_jobs(cache.conn)
    assert job.code == COUPON.code and job.transaction_id == "T-1"
    assert job.document.expires_on == date(2025, 7, 14)  # last valid day
    assert job.document.display_code == "SS-22K7-HQ2PM"
    assert job.document.qr_payload == "SS1:TOKEN"
    cache.close()
