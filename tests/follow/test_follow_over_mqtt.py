"""Stores following HQ over a real Mosquitto (the shipped config and ACL): two boxes of two
stores (real outbox pumps over real caches), HQ's real ingest worker and fan-out. A code
redeemed at store 1 is refused at store 2 within seconds, naming store 1; a box that was
away catches up from its position; a delta signed by anyone but HQ changes nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.contract import delta as deltas
from cloud_sync.contract import follow_position, topics
from cloud_sync.contract.delta import Change, Delta, Op
from cloud_sync.contract.hq_document import Kind
from cloud_sync.contract.topics import Channel
from cloud_sync.hq import hq_signer
from cloud_sync.hq.central_store import CentralStore
from cloud_sync.hq.fanout import delta_log, key_announcements, producer
from cloud_sync.hq.fanout.producer import JournalEntry, JournalPage
from cloud_sync.hq.fanout.service import FanoutService
from cloud_sync.hq.ingest import views
from cloud_sync.hq.ingest.event_store import EventStore, open_event_store
from cloud_sync.hq.ingest.worker import BrokerAddress, BrokerLogin, IngestWorker
from cloud_sync.hq.store_keys import register
from config.model import AgentConfig
from edge_agent.cache.code_cache import CodeCache
from edge_agent.domain import token_codec
from edge_agent.domain.code_record import CodeRecord
from edge_agent.domain.coupon_token import key_id, raw_public_key
from edge_agent.domain.decision import Decision, Reason, Refused
from edge_agent.follow import delta_apply
from edge_agent.issuing import signing_key
from edge_agent.services import StoreServices
from tests.cache.factories import NOW, code, promotion, req
from tests.hq.conftest import FMT
from tests.hq.ingest.test_worker_mqtt import running, worker_of
from tests.mqtt.broker import BrokerFiles, MosquittoBroker
from tests.mqtt.fixtures import ClientFactory
from tests.sync.pump_harness import RunningPump, box_config
from tests.sync.pump_harness import running as box_running

S1, S2 = "store-001", "store-002"
X, Y = code("XQ2P9X"), code("YQ2P9X")
HQ_KEY = Ed25519PrivateKey.generate()
HQ_PUBLIC = token_codec.public_key_text(raw_public_key(HQ_KEY.public_key()))
WAIT_S = 20.0


def wait_for(what: str, predicate: Callable[[], bool], timeout_s: float = WAIT_S) -> float:
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout_s, f"timed out waiting for {what}"
        time.sleep(0.02)
    return time.monotonic() - started


def validate(pump: RunningPump, c: str, store: str) -> Decision:
    now = datetime.now(UTC)

    def run(s: StoreServices) -> Decision:
        request = replace(
            req(c, txn=f"T-{time.monotonic_ns()}", now=now, member=None), store_id=store
        )
        (decision,) = s.redemption.validate(request)
        return decision

    return pump.db.call(run)


def commit(pump: RunningPump, c: str, store: str) -> None:
    now = datetime.now(UTC)

    def run(s: StoreServices) -> None:
        request = replace(req(c, txn="T-A1", now=now, member=None), store_id=store)
        (done,) = s.redemption.commit(request)
        assert done.redemption is not None, done

    pump.db.call(run)


def refused_at(pump: RunningPump, c: str, store: str, reason: Reason) -> bool:
    decision = validate(pump, c, store)
    return isinstance(decision, Refused) and decision.reason is reason


@pytest.fixture
def hq(tmp_path: Path) -> Iterator[EventStore]:
    store = open_event_store(str(tmp_path / "events.db"))
    yield store
    store.close()


def login(mosquitto: MosquittoBroker, files: BrokerFiles, user: str, password: str) -> BrokerLogin:
    return BrokerLogin(
        broker=BrokerAddress(host="127.0.0.1", port=mosquitto.port, tls=True),
        cafile=files.tls.ca_cert,
        username=user,
        password=password,
    )


@dataclass(frozen=True, slots=True)
class Broker:
    """The test's Mosquitto and how each user logs in to it."""

    mosquitto: MosquittoBroker
    files: BrokerFiles
    passwords: dict[str, str]

    def login(self, user: str) -> BrokerLogin:
        return login(self.mosquitto, self.files, user, self.passwords[user])


@pytest.fixture
def broker(
    mosquitto: MosquittoBroker, broker_files: BrokerFiles, mqtt_passwords: dict[str, str]
) -> Broker:
    return Broker(mosquitto, broker_files, mqtt_passwords)


def box(tmp_path: Path, name: str, store: str, *, broker: Broker, hq: EventStore) -> AgentConfig:
    cfg = box_config(
        tmp_path,
        box=name,
        store=store,
        port=broker.mosquitto.port,
        ca=broker.files.tls.ca_cert,
        password=broker.passwords[name],
        hq_public_key=HQ_PUBLIC,
        position_quiet_s=0.3,
    )
    # The cache as a snapshot cut at the store's stream position leaves it: HQ's codes, and
    # the stream to follow from there.
    cache = CodeCache.open(Path(cfg.cache.path), store_id=store, box_id=name)
    cache.put_campaign(promotion("C1", ends_at=NOW + timedelta(days=3650)))
    cache.put_codes([CodeRecord(code=c, campaign_id="C1", member_id=None) for c in (X, Y)])
    cache.set_synced_at(datetime.now(UTC))
    point = hq.run(lambda tx: delta_log.follow_point(tx, store, now=datetime.now(UTC)))
    with cache.transaction() as conn:
        delta_apply.follow(conn, stream=point.stream, watermark=point.seq)
    cache.close()
    return cfg


def trust_boxes(path: Path, *cfgs: AgentConfig) -> Path:
    with CentralStore.create(path, fmt=FMT) as central:
        for cfg in cfgs:
            key = signing_key.load(Path(cfg.signing.key_path))
            text = token_codec.public_key_text(raw_public_key(key.public_key()))
            register(central, cfg.store.store_id, text, now=NOW)
    return path


def hq_side(
    tmp_path: Path, hq: EventStore, broker: Broker, *cfgs: AgentConfig
) -> tuple[IngestWorker, FanoutService]:
    """HQ for the boxes of ``cfgs``: their store keys registered, an ingest worker over the
    event store ``hq`` and a fan-out stepping every 0.1 s, to run with ``running``."""
    central = trust_boxes(tmp_path / "hq.db", *cfgs)
    ingest = worker_of(str(tmp_path / "events.db"), central, broker.login("hq-ingest"))
    fanout = FanoutService(
        login=broker.login("hq-fanout"), store=hq, journal=None, key=HQ_KEY,
        client_id="hq-fanout-1", interval_s=0.1,
    )  # fmt: skip
    return ingest, fanout


def test_a_code_redeemed_at_one_store_is_refused_at_another_within_seconds(
    tmp_path: Path, hq: EventStore, broker: Broker, mqtt_client: ClientFactory
) -> None:
    a = box(tmp_path, "box-a", S1, broker=broker, hq=hq)
    b = box(tmp_path, "box-b", S2, broker=broker, hq=hq)
    ingest, fanout = hq_side(tmp_path, hq, broker, a, b)
    with running(ingest), running(fanout), box_running(a) as pa, box_running(b) as pb:
        wait_for("box-b to say its position", lambda: pb.pump.follower.counters.positions_said > 0)
        assert validate(pb, X, S2).ok
        commit(pa, X, S1)
        took = wait_for(
            "store 2 to refuse X", lambda: refused_at(pb, X, S2, Reason.ALREADY_REDEEMED)
        )
        print(f"redeemed at store 1, refused at store 2 after {took * 1000:.0f} ms")
        no = validate(pb, X, S2)
        assert isinstance(no, Refused)
        assert no.details["store_id"] == S1
        assert no.details["transaction_id"] == "T-A1"
        # Box A hears of its own redemption from HQ too, and counts it once.
        wait_for("box-a to apply its own", lambda: pa.pump.follower.counters.applied > 0)
        again = validate(pa, X, S1)
        assert isinstance(again, Refused)
        assert again.reason is Reason.ALREADY_REDEEMED
        assert again.details["store_id"] == S1

        # A delta signed by another key, on the right topic from HQ's own account, is refused.
        forger = mqtt_client("hq-fanout", client_id="forger")
        forger.connect()
        head = hq.run(lambda tx: delta_log.head(tx, S2))
        assert head is not None
        forged = Delta(
            store_id=S2,
            stream=head.stream,
            seq=head.seq + 1,
            issued_at=datetime.now(UTC),
            changes=(Change(op=Op.CODE_REVOKED, fields={"code": Y, "at": datetime.now(UTC)}),),
        )
        body = deltas.encode(forged)
        forger.publish(
            topics.topic(S2, "box-b", Channel.DELTA),
            hq_signer.sign(Kind.DELTA, body, Ed25519PrivateKey.generate()),
        )
        wait_for(
            "box-b to refuse the forgery",
            lambda: pb.pump.follower.counters.refused.get("unknown_key", 0) == 1,
        )
        assert validate(pb, Y, S2).ok

    # Box B away, and the fan-out dies between committing the delta of Y and publishing it:
    # back, B says its position (retained) and the fan-out answers with what it lacks.
    with running(ingest), box_running(a) as pa:
        commit(pa, Y, S1)
        wait_for("HQ to store Y", lambda: _queued(hq) > 0)
    made = hq.run(lambda tx: producer.step(tx, journal=None, key=HQ_KEY, now=datetime.now(UTC)))
    assert {p.store_id for p in made} == {S1, S2}
    with running(fanout), box_running(b) as pb:
        took = wait_for(
            "store 2 to catch up on Y", lambda: refused_at(pb, Y, S2, Reason.ALREADY_REDEEMED)
        )
        print(f"box-b back: caught up from its position in {took * 1000:.0f} ms")
        assert pb.pump.follower.counters.refused == {}
        # The fleet view says how far behind HQ's deltas each box's cache is.
        wait_for(
            "the fleet view to show box-b caught up",
            lambda: [r.deltas_behind for r in views.fleet(hq) if r.box_id == "box-b"] == [0],
        )


def _uses(pump: RunningPump, store: str) -> int:
    """The uses of X this box knows of: its own and the other boxes' (from HQ)."""

    def read(s: StoreServices) -> int:
        facts = s.cache.lookup(X, None, datetime.now(UTC))
        assert facts is not None
        return facts.usage.code_uses

    return pump.db.call(read)


def _queued(hq: EventStore) -> int:
    return int(hq.run(lambda tx: tx.query("SELECT count(*) FROM fanout_queue"))[0][0])


def signed(store: str, stream: str, seq: int, *changes: Change) -> bytes:
    body = deltas.encode(
        Delta(store_id=store, stream=stream, seq=seq, issued_at=datetime.now(UTC), changes=changes)
    )
    return hq_signer.sign(Kind.DELTA, body, HQ_KEY)


def test_a_gap_asks_hq_for_the_rest_and_the_box_says_where_it_got_to(
    tmp_path: Path, hq: EventStore, broker: Broker, mqtt_client: ClientFactory
) -> None:
    """No fan-out runs: the test is HQ, reading the box's position and sending deltas."""
    b = box(tmp_path, "box-b", S2, broker=broker, hq=hq)
    head = hq.run(lambda tx: delta_log.head(tx, S2))
    assert head is not None
    fanout = mqtt_client("hq-fanout", client_id="test-fanout")
    fanout.connect()
    fanout.subscribe(topics.topic(S2, "box-b", Channel.POSITION))
    to_b = topics.topic(S2, "box-b", Channel.DELTA)
    revoke = Change(op=Op.CODE_REVOKED, fields={"code": Y, "at": datetime.now(UTC)})
    with box_running(b) as pb:
        said = follow_position.decode(fanout.expect().payload)  # at connect
        assert (said.stream, said.watermark) == (head.stream, head.seq)
        fanout.publish(to_b, signed(S2, head.stream, head.seq + 2, revoke))
        asked = follow_position.decode(fanout.expect().payload)
        assert asked.watermark == head.seq  # the gap: nothing applied, HQ asked
        assert validate(pb, Y, S2).ok
        fanout.publish(to_b, signed(S2, head.stream, head.seq + 1, revoke))
        fanout.publish(to_b, signed(S2, head.stream, head.seq + 2, revoke))
        fanout.publish(to_b, signed(S2, head.stream, head.seq + 2, revoke))  # a duplicate
        caught_up = follow_position.decode(fanout.expect().payload)  # quiet again
        assert caught_up.watermark == head.seq + 2
        assert refused_at(pb, Y, S2, Reason.REVOKED)
        counters = pb.pump.follower.counters
        assert (counters.applied, counters.gaps, counters.duplicates) == (2, 1, 1)
        # Another stream: nothing applied, and the box says so (it needs a snapshot).
        fanout.publish(to_b, signed(S2, "f" * 32, 1, revoke))
        assert follow_position.decode(fanout.expect().payload).stream == head.stream
        assert counters.other_stream == 1
        # A snapshot loaded beside the running agent moves the position with no delta: the
        # box notices within a quiet period and says it.
        beside = CodeCache.open(Path(b.cache.path), store_id=S2, box_id="box-b")
        with beside.transaction() as conn:
            delta_apply.follow(conn, stream="c" * 32, watermark=9)
        beside.close()
        moved = follow_position.decode(fanout.expect().payload)
        assert (moved.stream, moved.watermark) == ("c" * 32, 9)


def test_two_stores_racing_for_one_code_before_the_delta_is_hqs_conflict(
    tmp_path: Path, hq: EventStore, broker: Broker
) -> None:
    """Both boxes accept X in the same instant (neither can know of the other yet); HQ stores
    both, reports the double redemption, and each box then learns of the other's."""
    a = box(tmp_path, "box-a", S1, broker=broker, hq=hq)
    b = box(tmp_path, "box-b", S2, broker=broker, hq=hq)
    ingest, fanout = hq_side(tmp_path, hq, broker, a, b)
    with running(ingest), running(fanout), box_running(a) as pa, box_running(b) as pb:
        limited = []
        for pump, store in ((pa, S1), (pb, S2)):
            limited.append(threading.Thread(target=commit, args=(pump, X, store)))
        for t in limited:
            t.start()
        for t in limited:
            t.join()
        wait_for("HQ to report the race", lambda: len(views.conflicts(hq)) == 1)
        (conflict,) = views.conflicts(hq)
        assert conflict.kind == "double_redemption"
        assert {r["store_id"] for r in conflict.detail["redemptions"]} == {S1, S2}
        for pump, store, other in ((pa, S1, S2), (pb, S2, S1)):
            wait_for(f"{store} to learn of {other}'s use", lambda p=pump, s=store: _uses(p, s) == 2)


class OneChange:
    """A journal holding one change for one store (the central store's is tested beside it)."""

    def __init__(self, store: str, change: Change) -> None:
        self.entry = JournalEntry(id=1, store_id=store, change=change)

    def changes_after(self, after_id: int, *, limit: int) -> JournalPage:
        if after_id >= 1:
            return JournalPage(entries=(), through=after_id)
        return JournalPage(entries=(self.entry,), through=1)

    def last_id(self) -> int | None:
        return 1


def test_hq_rotates_its_key_and_the_box_follows_the_new_one_across_a_restart(
    tmp_path: Path, hq: EventStore, broker: Broker
) -> None:
    b = box(tmp_path, "box-b", S2, broker=broker, hq=hq)
    next_key = Ed25519PrivateKey.generate()
    hq.run(
        lambda tx: key_announcements.announce(
            tx, current=HQ_KEY, next_key=next_key, retire_at=None, now=datetime.now(UTC)
        )
    )
    revoke = Change(op=Op.CODE_REVOKED, fields={"code": Y, "at": datetime.now(UTC)})
    fanout = FanoutService(
        login=broker.login("hq-fanout"), store=hq, journal=OneChange(S2, revoke),
        key=next_key, client_id="hq-fanout-1", interval_s=0.1,
    )  # fmt: skip
    with box_running(b) as pb, running(fanout):
        wait_for("the new key's delta", lambda: refused_at(pb, Y, S2, Reason.REVOKED))
    kept = CodeCache.open(Path(b.cache.path), store_id=S2, box_id="box-b")
    (row,) = kept.conn.execute("SELECT key_id FROM hq_keys").fetchall()
    kept.close()
    assert row[0] == key_id(next_key.public_key())
    # After a restart the box still trusts what it accepted: a delta signed by the new key.
    head = hq.run(lambda tx: delta_log.head(tx, S2))
    assert head is not None
    with box_running(b) as pb:
        wait_for("a position", lambda: pb.pump.follower.said is not None)
        # A malformed message is refused and counted; the next good one applies.
        pb.loop.call_soon_threadsafe(pb.pump.follower.on_delta, b"")
        unrevoke = Change(op=Op.CODE_ISSUED, fields={
            "code": Y, "campaign_id": "C1", "member_id": None, "channel": "app",
            "variant": "A", "issued_at": None, "expires_at": None})  # fmt: skip
        body = deltas.encode(
            Delta(
                store_id=S2,
                stream=head.stream,
                seq=head.seq + 1,
                issued_at=datetime.now(UTC),
                changes=(unrevoke,),
            )
        )
        doc = hq_signer.sign(Kind.DELTA, body, next_key)
        pb.loop.call_soon_threadsafe(pb.pump.follower.on_delta, doc)
        wait_for("the delta to apply", lambda: pb.pump.follower.counters.applied == 1)
        assert pb.pump.follower.counters.refused == {"malformed": 1}
