"""What the sync link needs from HQ's broker, on both brokers ``start_broker`` may start
(amqtt embedded, Mosquitto from the shipped config), with real paho-mqtt 2.2 clients over
MQTT 3.1.1. Topics are spelled out, not built by cloud_sync.contract: these pin what the
broker does, whatever the code builds."""

from __future__ import annotations

import queue
import time

import paho.mqtt.client as mqtt
import pytest

from cloud_sync.hq.broker.running_broker import BrokerKind, RunningBroker
from tests.hq.broker.conftest import ClientFactory
from tests.mqtt.clients import Will

V311_NOT_AUTHORIZED = 0x87  # CONNACK return code 5, as paho 2 maps it (MQTT 5 reason 0x87)
SUBACK_FAILURE = 0x80
PLAIN_EVENTS = "storeside/v1/+/+/events"
SHARED_EVENTS = "$share/ingest/storeside/v1/+/+/events"


def topic(box: str, leaf: str, store: str = "store-001") -> str:
    return f"storeside/v1/{store}/{box}/{leaf}"


def test_a_wrong_password_an_unknown_user_and_anonymous_are_refused(
    client: ClientFactory,
) -> None:
    assert client("box-a", password="not-the-password").connect().value == V311_NOT_AUTHORIZED
    assert client("box-z", password="guess").connect().value == V311_NOT_AUTHORIZED
    assert client(None, client_id="anon").connect().value == V311_NOT_AUTHORIZED
    assert client("box-a").connect().value == 0


def test_qos1_round_trip_box_to_hq_and_back(client: ClientFactory) -> None:
    hq = client("hq-ingest")
    hq.connect()
    assert hq.subscribe(PLAIN_EVENTS)[0].value == 1
    box = client("box-a")
    box.connect()
    box.subscribe(topic("box-a", "ack"))

    assert not box.publish(topic("box-a", "events"), b"batch-1").is_failure
    got = hq.expect()
    assert (got.topic, got.payload, got.qos, got.retain) == (
        topic("box-a", "events"), b"batch-1", 1, False,
    )  # fmt: skip
    assert not hq.publish(topic("box-a", "ack"), b"acked-to-1").is_failure
    assert box.expect().payload == b"acked-to-1"


def test_a_late_subscriber_gets_the_retained_state(client: ClientFactory) -> None:
    box = client("box-a")
    box.connect()
    box.publish(topic("box-a", "state"), b"online", retain=True)
    box.publish(topic("box-a", "health"), b"depth-0", retain=True)

    fleet = client("hq-ingest", client_id="hq-fleet")
    fleet.connect()
    fleet.subscribe("storeside/v1/+/+/state")
    got = fleet.expect()
    assert (got.topic, got.payload, got.retain) == (topic("box-a", "state"), b"online", True)
    fleet.assert_silent()  # health was not asked for


def test_a_box_that_dies_leaves_its_will_retained(client: ClientFactory) -> None:
    hq = client("hq-ingest")
    hq.connect()
    hq.subscribe("storeside/v1/+/+/state")
    box = client("box-a", will=Will(topic=topic("box-a", "state"), payload=b"offline"))
    box.connect()
    box.publish(topic("box-a", "state"), b"online", retain=True)
    assert hq.expect().payload == b"online"

    box.drop()  # the socket closes with no DISCONNECT: a crash, a pulled cable

    assert hq.expect().payload == b"offline"
    fleet = client("hq-ingest", client_id="hq-fleet")
    fleet.connect()
    fleet.subscribe(topic("box-a", "state"))
    late = fleet.expect()
    assert (late.payload, late.retain) == (b"offline", True)


def test_a_persistent_session_gets_what_was_queued_while_it_was_away(
    client: ClientFactory,
) -> None:
    """HQ's ingest is away while box A publishes three batches; it comes back to its session
    (clean_session False, same client id) and gets all three, flagged as not retained (MQTT
    3.1.1 section 3.3.1.3: they match an established subscription)."""
    hq = client("hq-ingest", client_id="hq-ingest-1", persistent=True)
    hq.connect()
    hq.subscribe(PLAIN_EVENTS)
    hq.disconnect()
    # amqtt PUBACKs before it routes; a connected witness getting all three shows routing
    # (one FIFO queue) is done, so they were queued for hq-ingest-1 while it was away.
    witness = client("hq-ingest", client_id="hq-witness")
    witness.connect()
    witness.subscribe(PLAIN_EVENTS)
    box = client("box-a")
    box.connect()
    for n in range(3):
        box.publish(topic("box-a", "events"), f"batch-{n}".encode())
    assert len([witness.expect() for _ in range(3)]) == 3

    back = client("hq-ingest", client_id="hq-ingest-1", persistent=True)
    back.connect()
    got = [back.expect() for _ in range(3)]
    assert sorted(m.payload for m in got) == [b"batch-0", b"batch-1", b"batch-2"]
    assert all(m.qos == 1 and not m.retain for m in got)
    back.assert_silent()


def test_a_box_cannot_publish_as_another_box(client: ClientFactory) -> None:
    """MQTT 3.1.1 cannot refuse a PUBLISH: the broker acks it and drops it. HQ must never see
    the forgeries, and A's own message after them must arrive."""
    hq = client("hq-ingest")
    hq.connect()
    hq.subscribe(PLAIN_EVENTS)
    hq.subscribe("storeside/v1/+/+/state")
    box_a = client("box-a")
    box_a.connect()

    box_a.publish(topic("box-b", "events"), b"forged")
    box_a.publish(topic("box-b", "state"), b"online", retain=True)
    box_a.publish(topic("box-a", "ack"), b"forged-ack")
    box_a.publish(topic("box-a", "events"), b"genuine")

    got = hq.expect()
    assert (got.topic, got.payload) == (topic("box-a", "events"), b"genuine")
    hq.assert_silent()


def test_a_box_cannot_read_another_box_acks(client: ClientFactory) -> None:
    box_a = client("box-a")
    box_a.connect()
    # Mosquitto 2.0 grants the SUBSCRIBE and filters each delivery; amqtt here refuses it.
    assert box_a.subscribe(topic("box-b", "ack"))[0].value in (1, SUBACK_FAILURE)
    box_a.subscribe("storeside/#")
    box_a.subscribe(topic("box-a", "ack"))
    box_b = client("box-b")
    box_b.connect()
    box_b.subscribe(topic("box-b", "ack"))
    hq = client("hq-ingest")
    hq.connect()

    hq.publish(topic("box-b", "ack"), b"acked-to-9")
    hq.publish(topic("box-a", "ack"), b"acked-to-3")

    assert box_b.expect().payload == b"acked-to-9"
    assert box_a.expect().payload == b"acked-to-3"
    box_a.assert_silent()


def test_a_box_connecting_gets_no_other_box_retained_messages(client: ClientFactory) -> None:
    """amqtt 0.12.1 sends every new client the retained messages of every subscription any
    client holds, unchecked; the embedded broker corrects it, and Mosquitto never did it."""
    fleet = client("hq-ingest", client_id="hq-fleet")
    fleet.connect()
    fleet.subscribe("storeside/v1/+/+/state")
    box_b = client("box-b")
    box_b.connect()
    box_b.publish(topic("box-b", "state"), b"online", retain=True)
    assert fleet.expect().payload == b"online"

    box_a = client("box-a", client_id="box-a", persistent=True)
    box_a.connect()
    box_a.subscribe(topic("box-a", "ack"))

    box_a.assert_silent()


def test_shared_subscriptions_are_what_the_broker_says(
    broker: RunningBroker, client: ClientFactory
) -> None:
    """Mosquitto splits ``$share/ingest/...`` over the group; amqtt 0.12.1 has no shared
    subscriptions (it would grant the filter and deliver nothing), so the embedded broker
    refuses it and says so: HQ's ingest then takes the plain filter with one worker."""
    hq = client("hq-ingest")
    hq.connect()
    code = hq.subscribe(SHARED_EVENTS)[0].value
    box = client("box-a")
    box.connect()
    if broker.supports_shared_subscriptions:
        assert broker.kind == BrokerKind.MOSQUITTO
        assert code == 1
        box.publish(topic("box-a", "events"), b"batch")
        assert hq.expect().payload == b"batch"
    else:
        assert broker.kind == BrokerKind.AMQTT
        assert code == SUBACK_FAILURE
        assert hq.subscribe(PLAIN_EVENTS)[0].value == 1
        box.publish(topic("box-a", "events"), b"batch")
        assert hq.expect().payload == b"batch"


def test_a_user_added_while_running_can_connect_at_once(
    broker: RunningBroker, client: ClientFactory
) -> None:
    assert client("box-017", password="box-017-secret").connect().value == V311_NOT_AUTHORIZED

    broker.add_user("box-017", "box-017-secret")

    assert client("box-017", password="box-017-secret").connect().value == 0
    assert client("box-017", password="wrong").connect().value == V311_NOT_AUTHORIZED
    assert client("box-a").connect().value == 0  # the others keep their passwords


@pytest.mark.parametrize("count", [2_000])
def test_two_thousand_qos1_messages_pass(
    broker: RunningBroker, client: ClientFactory, count: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """A box's burst after an outage: ``count`` QoS 1 messages, 20 in flight (what the pump
    allows), all received by HQ; the rate is printed (pytest -s) for the record."""
    hq = client("hq-ingest")
    hq.connect()
    hq.subscribe(PLAIN_EVENTS)
    box = client("box-a")
    box.paho.max_inflight_messages_set(20)  # paho allows it only before connecting
    box.connect()
    acked: queue.Queue[int] = queue.Queue()
    box.paho.on_publish = lambda _c, _u, mid, _rc, _p: acked.put(mid)

    start = time.perf_counter()
    for n in range(count):
        info = box.paho.publish(topic("box-a", "events"), n.to_bytes(4, "big"), qos=1)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS
    received = {int.from_bytes(hq.expect(timeout=10).payload, "big") for _ in range(count)}
    elapsed = time.perf_counter() - start
    for _ in range(count):
        acked.get(timeout=10)

    assert received == set(range(count))
    with capsys.disabled():
        print(
            f"\n{broker.kind}: {count} QoS 1 messages in {elapsed:.2f} s, {count / elapsed:,.0f}/s"
        )
