"""A member's presence identities from HQ's operator to a store box over a real Mosquitto (the
shipped config and ACL): HQ's real fan-out reads the central store's journal, a real box's
outbox pump follows the deltas into its real cache. A key enrolled at HQ reaches the box's
``read_identities``; consent withdrawn at HQ removes it from the box at the next delta."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cloud_sync.hq.central_store import CentralStore, MemberRow
from cloud_sync.hq.fanout.central_journal import CentralJournal
from cloud_sync.hq.fanout.service import FanoutService
from cloud_sync.hq.identity_enrolment import new_key
from cloud_sync.hq.ingest.event_store import EventStore
from edge_agent.cache.member_identities import MemberIdentities, read_identities
from edge_agent.services import StoreServices
from tests.follow import test_follow_over_mqtt as follow_over_mqtt
from tests.follow.test_follow_over_mqtt import HQ_KEY, S1, Broker, box, trust_boxes, wait_for
from tests.hq.ingest.test_worker_mqtt import running
from tests.sync.pump_harness import RunningPump
from tests.sync.pump_harness import running as box_running

broker = follow_over_mqtt.broker  # fixtures, as that module defines them
hq = follow_over_mqtt.hq


def identities(pump: RunningPump) -> MemberIdentities:
    def read(s: StoreServices) -> MemberIdentities:
        return read_identities(s.cache.conn)

    return pump.db.call(read)


def test_a_key_enrolled_at_hq_reaches_the_box_and_a_withdrawn_consent_removes_it(
    tmp_path: Path, hq: EventStore, broker: Broker
) -> None:
    cfg = box(tmp_path, "box-a", S1, broker=broker, hq=hq)
    central_path = trust_boxes(tmp_path / "hq.db", cfg)
    fanout = FanoutService(
        login=broker.login("hq-fanout"), store=hq, journal=CentralJournal(central_path),
        key=HQ_KEY, client_id="hq-fanout-1", interval_s=0.1,
    )  # fmt: skip
    with CentralStore.open(central_path) as central:
        central.upsert_members(
            [MemberRow(member_id="ann", proximity_consent=True)], now=datetime.now(UTC)
        )
        key = new_key(central, "ann", now=datetime.now(UTC))
        with running(fanout), box_running(cfg) as pump:
            took = wait_for(
                "the key to reach the box",
                lambda: [(k.member_id, k.key) for k in identities(pump).keys] == [("ann", key.key)],
            )
            print(f"enrolled at HQ, in the box's cache after {took * 1000:.0f} ms")
            assert identities(pump).card_salt is not None
            central.upsert_members(
                [MemberRow(member_id="ann", proximity_consent=False)], now=datetime.now(UTC)
            )
            took = wait_for("the key to leave the box", lambda: identities(pump).keys == ())
            print(f"consent withdrawn at HQ, gone from the box after {took * 1000:.0f} ms")
            rows = pump.db.call(
                lambda s: s.cache.conn.execute("SELECT count(*) FROM member_keys").fetchone()[0]
            )
            assert rows == 0
