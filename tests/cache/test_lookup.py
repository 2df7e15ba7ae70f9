"""lookup() builds CodeFacts from the real tables: record, link overlay, member, usage."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from edge_agent.domain.code_record import CodeStatus
from edge_agent.domain.promotion import Limits
from edge_agent.redemption.service import RedemptionService
from tests.cache.factories import FMT, NOW, A, B, G, open_cache, promotion, req


def test_unknown_code_and_code_without_campaign_are_none(tmp_path: Path) -> None:
    cache = open_cache(tmp_path / "c.db")
    assert cache.lookup("SSK7ZZZZZZZ", None, NOW) is None
    cache.conn.execute("DELETE FROM campaigns WHERE campaign_id = 'C1'")
    cache._promotions.clear()
    assert cache.lookup(A, None, NOW) is None
    cache.close()


def test_record_member_and_fresh_usage(tmp_path: Path) -> None:
    cache = open_cache(tmp_path / "c.db")
    facts = cache.lookup(B, "M2", NOW)
    assert facts is not None
    assert facts.record.member_id == "M2"
    assert facts.record.expires_at == NOW + timedelta(days=3)
    assert facts.member is not None and facts.member.segment == "champion"
    assert facts.usage.code_uses == 0
    assert facts.usage.last_redemption is None
    assert cache.lookup(B, "M-unknown", NOW).member is None  # type: ignore[union-attr]
    assert cache.lookup(B, None, NOW).member is None  # type: ignore[union-attr]
    cache.close()


def test_usage_counts_holds_and_last_redemption(tmp_path: Path) -> None:
    cache = open_cache(tmp_path / "c.db")
    service = RedemptionService(cache, fmt=FMT, hold=timedelta(minutes=2))
    service.commit(req(G, txn="T-1", member="M1"))
    service.commit(req(G, txn="T-2", member="M2", now=NOW + timedelta(seconds=5)))
    service.reserve(req(G, txn="T-3", member="M1", till="till-3", now=NOW + timedelta(seconds=6)))
    facts = cache.lookup(G, "M1", NOW + timedelta(seconds=10))
    assert facts is not None
    assert facts.usage.code_uses == 2
    assert facts.usage.member_code_uses == 1
    assert facts.usage.campaign_uses == 2
    assert facts.usage.store_campaign_uses == 2
    assert facts.usage.campaign_money == 1000
    assert [h.till_id for h in facts.usage.reservations] == ["till-3"]
    last = facts.usage.last_redemption
    assert last is not None and last.transaction_id == "T-2"
    # Past its time, the hold stops counting without anyone deleting it.
    later = cache.lookup(G, "M1", NOW + timedelta(minutes=3))
    assert later is not None and later.usage.reservations == ()
    cache.close()


def test_link_overlays_the_record(tmp_path: Path) -> None:
    cache = open_cache(tmp_path / "c.db")
    service = RedemptionService(cache, fmt=FMT)
    service.link(code=G, member_id="M2", store_id="S1", till_id="t", cashier_id="k", now=NOW)
    facts = cache.lookup(G, None, NOW)
    assert facts is not None and facts.record.linked_member_id == "M2"
    cache.close()


def test_velocity_facts_are_the_members_recent_redemptions_newest_first(tmp_path: Path) -> None:
    cache = open_cache(tmp_path / "c.db")
    limits = Limits(total_uses_per_code=None, member_velocity_count=5)
    cache.put_campaign(replace(promotion("G1"), limits=limits))
    service = RedemptionService(cache, fmt=FMT)
    times = [NOW - timedelta(hours=30), NOW - timedelta(hours=2), NOW - timedelta(minutes=5)]
    for i, at in enumerate(times):
        assert service.commit(req(G, txn=f"T-{i}", now=at))[0].redemption is not None
    facts = cache.lookup(G, "M1", NOW)
    assert facts is not None
    assert facts.usage.member_recent_redemptions == (times[2], times[1])  # 24 h window
    cache.close()


def test_promotion_cache_is_invalidated_on_change(tmp_path: Path) -> None:
    cache = open_cache(tmp_path / "c.db")
    assert cache.promotion("C1") is cache.promotion("C1")
    cache.put_campaign(promotion(name="Renamed"))
    facts = cache.lookup(A, None, NOW)
    assert facts is not None and facts.promotion.name == "Renamed"
    assert cache.revoke(A)
    assert not cache.revoke("SSK7ZZZZZZZ")
    facts = cache.lookup(A, None, NOW)
    assert facts is not None and facts.record.status is CodeStatus.REVOKED
    cache.close()
