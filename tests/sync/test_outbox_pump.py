"""The outbox pump against a real Mosquitto (the shipped config and ACL, over TLS): every
committed event reaches HQ once in effect and leaves the outbox only on HQ's ack, whatever
the broker does. HQ here is ``AckResponder``, a real MQTT client with HQ's checks."""

from __future__ import annotations

import json
import random
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cloud_sync.contract import ack as acks
from cloud_sync.contract import presence
from cloud_sync.contract.topics import Channel, topic
from config.model import AgentConfig
from edge_agent.issuing import signing_key
from edge_agent.sync import outbox_access
from tests.mqtt.broker import BrokerFiles, MosquittoBroker
from tests.mqtt.fixtures import ClientFactory
from tests.sync.ack_responder import AckResponder
from tests.sync.pump_harness import (
    DEVICES,
    STORE,
    RunningPump,
    append_events,
    box_config,
    running,
)

BOX = "box-a"


@pytest.fixture
def config_for(
    tmp_path: Path,
    mosquitto: MosquittoBroker,
    broker_files: BrokerFiles,
    mqtt_passwords: dict[str, str],
) -> Callable[..., AgentConfig]:
    def make(**sync: object) -> AgentConfig:
        return box_config(
            tmp_path,
            box=BOX,
            port=mosquitto.port,
            ca=broker_files.tls.ca_cert,
            password=mqtt_passwords[BOX],
            **sync,
        )

    return make


def hq(mqtt_client: ClientFactory, cfg: AgentConfig) -> AckResponder:
    key = signing_key.load(Path(cfg.signing.key_path))
    responder = AckResponder(mqtt_client("hq-ingest", persistent=True), key.public_key())
    responder.start()
    return responder


def outbox_depth(pump: RunningPump) -> int:
    return pump.db.call(lambda s: outbox_access.facts(s.cache).outbox_depth)


def wait(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_events_reach_hq_in_order_and_leave_the_outbox_on_its_ack(
    config_for: Callable[..., AgentConfig], mqtt_client: ClientFactory
) -> None:
    cfg = config_for(batch_events=50)
    responder = hq(mqtt_client, cfg)
    with running(cfg) as pump:
        last = append_events(pump.db, 420)
        responder.wait_for(BOX, last)
        wait(lambda: outbox_depth(pump) == 0)
        assert pump.pump.counters.batches_sent >= 9  # 50 a batch at most
        more = append_events(pump.db, 3)  # a commit wakes the pump: no poll interval
        responder.wait_for(BOX, more, timeout_s=2)
    stream = responder.streams[BOX]
    assert sorted(stream.texts) == list(range(1, more + 1))
    assert responder.refused == []


def test_the_link_sends_small_packets_at_once(
    config_for: Callable[..., AgentConfig], mqtt_client: ClientFactory
) -> None:
    """TCP_NODELAY on the box's socket: with Nagle on, a one-event batch written after the
    PUBACK of HQ's last ack waited ~40 ms for the broker's delayed ACK (bench_sync.py)."""
    cfg = config_for()
    responder = hq(mqtt_client, cfg)
    with running(cfg) as pump:
        responder.wait_for(BOX, append_events(pump.db, 1))
        sock = pump.pump._link._client.socket()  # paho holds the socket; no seam shows it
        assert isinstance(sock, socket.socket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


def test_nothing_leaves_the_outbox_without_hqs_ack(
    config_for: Callable[..., AgentConfig], mqtt_client: ClientFactory
) -> None:
    cfg = config_for(ack_timeout_s=0.3)
    responder = hq(mqtt_client, cfg)
    responder.hold_acks = True
    with running(cfg) as pump:
        last = append_events(pump.db, 30)
        responder.wait_for(BOX, last)  # HQ has them all, but has not said so
        time.sleep(0.8)  # the broker's PUBACKs came long ago; the ack timeout resends
        assert outbox_depth(pump) == 30
        assert pump.pump.counters.rewinds >= 1
        responder.ack(STORE, BOX, last)
        wait(lambda: outbox_depth(pump) == 0)
    assert responder.streams[BOX].duplicates > 0  # resent, and stored once


def test_a_lost_batch_is_sent_again(
    config_for: Callable[..., AgentConfig], mqtt_client: ClientFactory
) -> None:
    cfg = config_for(batch_events=10, ack_timeout_s=0.5)
    responder = hq(mqtt_client, cfg)
    responder.drop_next = 1  # the first batch vanishes on the way
    with running(cfg) as pump:
        last = append_events(pump.db, 35)
        responder.wait_for(BOX, last)
        wait(lambda: outbox_depth(pump) == 0)
    assert sorted(responder.streams[BOX].texts) == list(range(1, last + 1))


def test_the_box_announces_itself_and_its_health_retained(
    config_for: Callable[..., AgentConfig], mqtt_client: ClientFactory
) -> None:
    cfg = config_for()
    responder = hq(mqtt_client, cfg)
    with running(cfg) as pump:
        last = append_events(pump.db, 5)
        responder.wait_for(BOX, last)
        wait(lambda: outbox_depth(pump) == 0)
        time.sleep(0.1)
        watcher = mqtt_client("hq-ingest", client_id="watcher")  # comes later: retained
        watcher.connect()
        watcher.subscribe(topic(STORE, BOX, Channel.STATE))
        state = presence.decode_state(watcher.expect().payload)
        assert state.state is presence.BoxState.ONLINE and state.session >= 1
        watcher.subscribe(topic(STORE, BOX, Channel.HEALTH))
        health = presence.decode_health(watcher.expect().payload)
        assert health.box_id == BOX and health.next_seq >= 1
        assert health.devices_state == DEVICES  # what HQ's fleet view shows of its devices
    # A clean stop says offline itself (retained), for the same session.
    late = mqtt_client("hq-ingest", client_id="late")
    late.connect()
    late.subscribe(topic(STORE, BOX, Channel.STATE))
    gone = presence.decode_state(late.expect().payload)
    assert gone.state is presence.BoxState.OFFLINE and gone.session == state.session


def test_broker_restarts_mid_drain_lose_nothing(
    config_for: Callable[..., AgentConfig], mqtt_client: ClientFactory, mosquitto: MosquittoBroker
) -> None:
    seed = random.randrange(2**32)
    print(f"seed {seed}")
    rng = random.Random(seed)
    cfg = config_for(batch_events=100, drain_events_per_s=20_000)
    responder = hq(mqtt_client, cfg)
    with running(cfg) as pump:
        last = append_events(pump.db, 2_000)
        for _ in range(3):
            time.sleep(rng.uniform(0.01, 0.15))
            (mosquitto.kill if rng.random() < 0.5 else mosquitto.stop)()
            last = append_events(pump.db, rng.randrange(1, 200))  # the tills go on
            time.sleep(rng.uniform(0.05, 0.3))
            mosquitto.start()
        responder.wait_for(BOX, last, timeout_s=30)
        wait(lambda: outbox_depth(pump) == 0, timeout_s=30)
    stream = responder.streams[BOX]
    assert sorted(stream.texts) == list(range(1, last + 1)), f"seed {seed}"
    assert responder.refused == [], f"seed {seed}"


def test_a_forged_ack_for_another_box_is_dropped(
    config_for: Callable[..., AgentConfig], mqtt_client: ClientFactory
) -> None:
    cfg = config_for()
    responder = hq(mqtt_client, cfg)
    responder.hold_acks = True
    with running(cfg) as pump:
        append_events(pump.db, 3)
        wait(lambda: responder.stored(BOX) == 3)
        # Garbage and another box's ack on this box's ack topic: logged, dropped, still up.
        responder.client.paho.publish(topic(STORE, BOX, Channel.ACK), b"{not json", qos=1)
        other = json.dumps(
            {"schema_version": 1, "store_id": STORE, "box_id": "box-b",
             "stored_through": 3, "missing": []}
        )  # fmt: skip
        responder.client.paho.publish(topic(STORE, BOX, Channel.ACK), other, qos=1)
        wait(lambda: pump.pump.counters.dropped_messages == 2)
        assert outbox_depth(pump) == 3
        responder.ack(STORE, BOX, 3)
        wait(lambda: outbox_depth(pump) == 0)


def test_a_resend_request_is_answered_from_the_retained_history(
    config_for: Callable[..., AgentConfig], mqtt_client: ClientFactory
) -> None:
    cfg = config_for(batch_events=20)
    responder = hq(mqtt_client, cfg)
    with running(cfg) as pump:
        last = append_events(pump.db, 50)
        responder.wait_for(BOX, last)
        wait(lambda: outbox_depth(pump) == 0)  # acknowledged: only the history holds them
        before = responder.streams[BOX].duplicates
        request = acks.encode_resend(
            acks.ResendRequest(
                store_id=STORE, box_id=BOX, ranges=(acks.SeqRange(first=5, last=44),)
            )
        )
        responder.client.paho.publish(topic(STORE, BOX, Channel.RESEND), request, qos=1)
        wait(lambda: responder.streams[BOX].duplicates - before == 40)
        assert pump.pump.counters.resent_ranges == 2  # 40 events, 20 a batch
    assert responder.refused == []  # the same bytes, the same chain
