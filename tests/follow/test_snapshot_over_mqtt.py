"""A box deltas cannot bring up gets a snapshot over the link, over a real Mosquitto (the
shipped config and ACL): a box with an empty cache (new, or its cache lost) says it follows no
stream, HQ's fan-out cuts its store a snapshot, offers it signed, and serves its chunks; the
box fetches, checks and loads it while it runs, then follows the deltas. A fetch cut off
halfway resumes from its partial file; a file that fails its check is never loaded; an offer
signed by anyone but HQ is refused."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.contract import snapshot_offer, topics
from cloud_sync.contract.hq_document import Kind
from cloud_sync.contract.snapshot_offer import Chunk, Offer, Request
from cloud_sync.contract.topics import Channel
from cloud_sync.hq import hq_signer
from cloud_sync.hq.central_store import CentralStore
from cloud_sync.hq.fanout.central_journal import CentralJournal
from cloud_sync.hq.fanout.service import FanoutService
from cloud_sync.hq.fanout.snapshot_shelf import SnapshotShelf
from cloud_sync.hq.ingest.event_store import EventStore
from cloud_sync.hq.minting import mint_anonymous
from config.model import AgentConfig
from edge_agent.domain.decision import Reason
from edge_agent.follow import stream_position
from tests.follow import test_follow_over_mqtt as follow_over_mqtt
from tests.follow.test_follow_over_mqtt import (
    HQ_KEY,
    HQ_PUBLIC,
    Broker,
    refused_at,
    validate,
    wait_for,
)
from tests.hq.conftest import FMT, campaign
from tests.hq.ingest.test_worker_mqtt import running
from tests.mqtt.fixtures import ClientFactory
from tests.sync.pump_harness import RunningPump, box_config
from tests.sync.pump_harness import running as box_running

S1 = "store-001"
broker = follow_over_mqtt.broker  # fixtures, as that module defines them
hq = follow_over_mqtt.hq


@pytest.fixture
def central(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "hq.db"
    with CentralStore.create(path, fmt=FMT) as store:
        store.create_campaign(
            campaign("C1", ends_at="2099-01-01T00:00:00+00:00"), now=datetime.now(UTC)
        )
        mint_anonymous(store, campaign_id="C1", count=3_000, now=datetime.now(UTC))
    yield path


def new_box(tmp_path: Path, name: str, broker: Broker) -> AgentConfig:
    """A box whose cache is empty: nothing loaded, no stream followed."""
    return box_config(
        tmp_path,
        box=name,
        store=S1,
        port=broker.mosquitto.port,
        ca=broker.files.tls.ca_cert,
        password=broker.passwords[name],
        hq_public_key=HQ_PUBLIC,
        position_quiet_s=0.3,
    )


class SlowShelf(SnapshotShelf):
    """HQ's shelf, each chunk read a little late: long enough to stop a fetch halfway."""

    def chunk(self, request: Request) -> Chunk:
        time.sleep(0.02)
        return super().chunk(request)


def fanout_of(hq: EventStore, broker: Broker, shelf: SnapshotShelf, central: Path) -> FanoutService:
    return FanoutService(
        login=broker.login("hq-fanout"),
        store=hq,
        journal=CentralJournal(central),
        key=HQ_KEY,
        client_id="hq-fanout-1",
        interval_s=0.1,
        shelf=shelf,
    )


def some_code(central: Path) -> str:
    with CentralStore.open(central) as store:
        (code,) = store.conn.execute("SELECT code FROM codes ORDER BY code LIMIT 1").fetchone()
    return str(code)


def position(pump: RunningPump) -> stream_position.Position:
    return pump.db.call(lambda s: stream_position.position(s.cache.conn))


def test_a_box_with_an_empty_cache_is_sent_a_snapshot_and_follows_on(
    tmp_path: Path, hq: EventStore, broker: Broker, central: Path, mqtt_client: ClientFactory
) -> None:
    cfg = new_box(tmp_path, "box-a", broker)
    shelf = SnapshotShelf(
        central=central, directory=tmp_path / "shelf", key=HQ_KEY, chunk_bytes=16_384
    )
    code = some_code(central)
    fanout = fanout_of(hq, broker, shelf, central)
    with running(fanout), box_running(cfg) as pa:
        assert refused_at(pa, code, S1, Reason.NOT_FOUND)
        took = wait_for("the snapshot to load", lambda: pa.pump.fetcher.counters.loaded == 1)
        print(f"empty cache to snapshot loaded: {took * 1000:.0f} ms")
        assert validate(pa, code, S1).ok
        (shelved,) = shelf._by_id.values()
        assert pa.pump.fetcher.counters.chunks == -(-shelved.offer.size // 16_384)
        at = position(pa)
        assert (at.stream, at.watermark) == (shelved.offer.stream, shelved.offer.seq)
        wait_for("HQ to hear where it stands", lambda: pa.pump.follower.said == at)
        # And from there it follows: HQ revokes the code, the box refuses it.
        with CentralStore.open(central) as store:
            store.revoke(code)
        wait_for("the revocation", lambda: refused_at(pa, code, S1, Reason.REVOKED))

        # An offer signed by another key, on the right topic from HQ's own account: refused.
        forger = mqtt_client("hq-fanout", client_id="forger")
        forger.connect()
        forged = Offer(
            store_id=S1,
            snapshot_id="f" * 32,
            stream="e" * 32,
            seq=1,
            size=10,
            sha256="0" * 64,
            chunk_bytes=10,
            created_at=datetime.now(UTC),
        )
        body = snapshot_offer.encode_offer(forged)
        forger.publish(
            topics.topic(S1, "box-a", Channel.SNAPSHOT),
            hq_signer.sign(Kind.SNAPSHOT, body, Ed25519PrivateKey.generate()),
        )
        wait_for("the forgery refused", lambda: pa.pump.fetcher.counters.refused == 1)
        assert pa.pump.fetcher.fetching is None
    assert list((tmp_path / "box-a.db.snapshots").iterdir()) == []  # nothing left behind


def test_a_fetch_cut_off_halfway_resumes_from_its_partial_file(
    tmp_path: Path, hq: EventStore, broker: Broker, central: Path
) -> None:
    cfg = new_box(tmp_path, "box-a", broker)
    shelf = SlowShelf(central=central, directory=tmp_path / "shelf", key=HQ_KEY, chunk_bytes=4096)
    fanout = fanout_of(hq, broker, shelf, central)
    with running(fanout):
        with box_running(cfg) as pa:
            wait_for("a few chunks", lambda: pa.pump.fetcher.counters.chunks >= 5)
            assert pa.pump.fetcher.counters.loaded == 0
        (part,) = (tmp_path / "box-a.db.snapshots").glob("*.part")
        held = part.stat().st_size
        (shelved,) = shelf._by_id.values()
        assert 0 < held < shelved.offer.size
        with box_running(cfg) as pa:
            wait_for("the snapshot to load", lambda: pa.pump.fetcher.counters.loaded == 1)
            assert pa.pump.fetcher.counters.resumed_from == held
            fetched = pa.pump.fetcher.counters.chunks * 4096
            assert fetched < shelved.offer.size  # only what was missing
            assert validate(pa, some_code(central), S1).ok


def test_a_file_that_fails_its_check_is_never_loaded(
    tmp_path: Path, hq: EventStore, broker: Broker, central: Path
) -> None:
    cfg = new_box(tmp_path, "box-a", broker)
    shelf = SnapshotShelf(central=central, directory=tmp_path / "shelf", key=HQ_KEY)
    original = shelf._cut

    def cut_then_spoil(store: EventStore, store_id: str):  # type: ignore[no-untyped-def]
        shelved = original(store, store_id)
        data = bytearray(shelved.path.read_bytes())
        data[len(data) // 2] ^= 0xFF  # a byte spoilt on HQ's disk after it was hashed
        shelved.path.write_bytes(bytes(data))
        return shelved

    shelf._cut = cut_then_spoil  # type: ignore[method-assign]
    fanout = fanout_of(hq, broker, shelf, central)
    with running(fanout), box_running(cfg) as pa:
        wait_for("three failed checks", lambda: pa.pump.fetcher.counters.failed_checks == 3)
        assert pa.pump.fetcher.counters.loaded == 0
        assert position(pa).stream is None
        assert refused_at(pa, some_code(central), S1, Reason.NOT_FOUND)
