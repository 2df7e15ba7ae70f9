"""Receipt coupon caps across stores over a real Mosquitto (the shipped config and ACL): two
boxes of two stores (real outbox pumps over real caches), HQ's real ingest worker and fan-out.
A member issued a coupon at store 1 is refused by the frequency cap at store 2 seconds later;
store 1 hears of its own issue from HQ and counts it once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cloud_sync.hq.ingest.event_store import EventStore
from config.model import AgentConfig
from edge_agent.cache.code_cache import CodeCache
from edge_agent.domain.offer_policy import NoCouponReason
from edge_agent.domain.promotion import Member
from edge_agent.domain.receipt_campaigns import default_receipt_campaigns
from edge_agent.issuing.outcome import Checkout, IssueOutcome
from edge_agent.services import StoreServices
from edge_agent.wiring import issue_service
from tests.follow import test_follow_over_mqtt as follow_over_mqtt
from tests.follow.test_follow_over_mqtt import S1, S2, Broker, box, hq_side, wait_for
from tests.hq.ingest.test_worker_mqtt import running
from tests.issuing.factories import BASKET, member_id
from tests.sync.pump_harness import RunningPump
from tests.sync.pump_harness import running as box_running

broker = follow_over_mqtt.broker  # fixtures, as that module defines them
hq = follow_over_mqtt.hq
MEMBER = member_id("loyal", held_out=False)  # not in the default holdout: a real coupon


def receipts(cfg: AgentConfig, namespace: str) -> AgentConfig:
    """The box's cache as its store's snapshot leaves it for receipt coupons: the receipt
    campaigns, the member, and the minting namespace HQ assigned the store."""
    now = datetime.now(UTC)
    cache = CodeCache.open(Path(cfg.cache.path), store_id=cfg.store.store_id)
    for promotion in default_receipt_campaigns(
        starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=365)
    ):
        cache.put_campaign(promotion)
    cache.put_member(Member(member_id=MEMBER, segment="loyal"))
    with cache.transaction() as conn:
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('namespace', ?)", (namespace,))
    cache.close()
    return cfg


def checkout(pump: RunningPump, txn: str) -> IssueOutcome:
    """A checkout of the member at the box's till, through the issue service as the POS
    API's would run it, on the box's DB thread."""

    def run(s: StoreServices) -> IssueOutcome:
        service = issue_service(s.cache, pump.cfg, s.signer)
        assert service is not None
        return service.issue(
            Checkout(
                transaction_id=txn,
                till_id="till-1",
                cashier_id="c-1",
                basket=BASKET,
                now=datetime.now(UTC),
                member_id=MEMBER,
            )
        )

    return pump.db.call(run)


def recent(pump: RunningPump) -> int:
    """How many issues of the member the box's caps count now."""

    def run(s: StoreServices) -> int:
        service = issue_service(s.cache, pump.cfg, s.signer)
        assert service is not None
        return len(service.recent_issues(MEMBER, datetime.now(UTC)))

    return pump.db.call(run)


def test_a_member_issued_a_coupon_at_one_store_is_capped_at_another_within_seconds(
    tmp_path: Path, hq: EventStore, broker: Broker
) -> None:
    a = receipts(box(tmp_path, "box-a", S1, broker=broker, hq=hq), "23")
    b = receipts(box(tmp_path, "box-b", S2, broker=broker, hq=hq), "24")
    ingest, fanout = hq_side(tmp_path, hq, broker, a, b)
    with running(ingest), running(fanout), box_running(a) as pa, box_running(b) as pb:
        wait_for("box-b to say its position", lambda: pb.pump.follower.counters.positions_said > 0)
        assert recent(pb) == 0
        first = checkout(pa, "T-S1-1")
        assert first.issued, first
        took = wait_for("store 2 to count the member's issue", lambda: recent(pb) == 1)
        capped = checkout(pb, "T-S2-1")
        print(f"issued at store 1, capped at store 2 after {took * 1000:.0f} ms")
        assert capped.reason is NoCouponReason.FREQUENCY_CAPPED, capped
        assert first.coupon is not None and capped.retry_after is not None
        # A month from the issue at store 1 (its time at HQ to the microsecond; the coupon's
        # own issued_at is floored to the second).
        since = capped.retry_after - timedelta(days=30) - first.coupon.issued_at
        assert timedelta(0) <= since < timedelta(seconds=1)
        # Store 1 hears of its own issue from HQ too, and counts it once.
        wait_for("box-a to hear of its own", lambda: pa.pump.follower.counters.applied > 0)
        assert recent(pa) == 1
        assert checkout(pa, "T-S1-2").reason is NoCouponReason.FREQUENCY_CAPPED
