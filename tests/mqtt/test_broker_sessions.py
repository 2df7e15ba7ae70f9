"""What the shipped config keeps across a dead box and a restarted broker: the retained
``state`` with the box's last will, and persistent sessions with their queued QoS 1
messages (persistence true). These are the broker behaviours the outbox pump and HQ's fleet
view will build on."""

from __future__ import annotations

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import MQTTProtocolVersion

from tests.mqtt.broker import MosquittoBroker
from tests.mqtt.clients import Will
from tests.mqtt.fixtures import ClientFactory

STATE_A = "storeside/v1/store-001/box-a/state"
EVENTS_A = "storeside/v1/store-001/box-a/events"
ACK_A = "storeside/v1/store-001/box-a/ack"
INGEST = "$share/ingest/storeside/v1/+/+/events"
PROTOCOLS = pytest.mark.parametrize(
    "protocol", [mqtt.MQTTv311, mqtt.MQTTv5], ids=["mqtt311", "mqtt5"]
)


def test_a_box_that_dies_leaves_offline_retained(mqtt_client: ClientFactory) -> None:
    hq = mqtt_client("hq-ingest")
    hq.connect()
    hq.subscribe("storeside/v1/+/+/state")
    box_a = mqtt_client("box-a", will=Will(topic=STATE_A, payload=b"offline"))
    box_a.connect()
    box_a.publish(STATE_A, b"online", retain=True)
    assert hq.expect().payload == b"online"

    box_a.drop()  # the socket closes with no DISCONNECT: a crash, a pulled cable

    assert hq.expect().payload == b"offline"
    # A fleet view that starts later still learns it, from the retained message.
    fleet = mqtt_client("hq-ingest", client_id="hq-fleet")
    fleet.connect()
    fleet.subscribe(STATE_A)
    late = fleet.expect()
    assert (late.payload, late.retain) == (b"offline", True)


def test_a_clean_disconnect_sends_no_will(mqtt_client: ClientFactory) -> None:
    """A box shutting down on purpose must publish ``offline`` itself: the broker sends the
    will only when the connection is lost (MQTT 3.1.1 section 3.1.2.5)."""
    hq = mqtt_client("hq-ingest")
    hq.connect()
    hq.subscribe(STATE_A)
    box_a = mqtt_client("box-a", will=Will(topic=STATE_A, payload=b"offline"))
    box_a.connect()
    box_a.publish(STATE_A, b"online", retain=True)
    assert hq.expect().payload == b"online"

    box_a.disconnect()

    hq.assert_silent()


@PROTOCOLS
def test_a_restarted_broker_keeps_persistent_sessions_and_their_queued_messages(
    mosquitto: MosquittoBroker, mqtt_client: ClientFactory, protocol: MQTTProtocolVersion
) -> None:
    """HQ's ingest is away; box A publishes an event; HQ acks an earlier batch while A is
    away. The broker is stopped and started (SIGTERM writes its persistence file). Both
    come back to their sessions (3.1.1 clean_session False; 5 clean_start False with a
    session expiry) and get what was queued for them, and the retained state survives."""
    hq = mqtt_client("hq-ingest", client_id="hq-ingest-1", protocol=protocol, persistent=True)
    hq.connect()
    hq.subscribe(INGEST)
    box_a = mqtt_client("box-a", client_id="box-a", protocol=protocol, persistent=True)
    box_a.connect()
    box_a.subscribe(ACK_A)
    box_a.publish(STATE_A, b"online", retain=True)
    hq.disconnect()
    box_a.publish(EVENTS_A, b"batch-while-hq-away")
    box_a.disconnect()
    other_worker = mqtt_client("hq-ingest", client_id="hq-ingest-2", protocol=protocol)
    other_worker.connect()
    other_worker.publish(ACK_A, b"acked-to-41")
    other_worker.disconnect()

    mosquitto.stop()
    mosquitto.start()

    hq_back = mqtt_client("hq-ingest", client_id="hq-ingest-1", protocol=protocol, persistent=True)
    hq_back.connect()
    got = hq_back.expect()
    assert (got.topic, got.payload) == (EVENTS_A, b"batch-while-hq-away")
    box_back = mqtt_client("box-a", client_id="box-a", protocol=protocol, persistent=True)
    box_back.connect()
    assert box_back.expect().payload == b"acked-to-41"
    fleet = mqtt_client("hq-ingest", client_id="hq-fleet")
    fleet.connect()
    fleet.subscribe(STATE_A)
    assert fleet.expect().payload == b"online"


def test_a_broker_crash_loses_what_the_last_autosave_did_not_write(
    mosquitto: MosquittoBroker, mqtt_client: ClientFactory
) -> None:
    """kill -9 is not stop: Mosquitto writes its database only at shutdown and every
    autosave_interval (60 s), so a message queued since then is gone. This is why a box
    deletes an event only on HQ's application-level ack, never on the broker's PUBACK."""
    hq = mqtt_client("hq-ingest", client_id="hq-ingest-1", persistent=True)
    hq.connect()
    hq.subscribe(INGEST)
    hq.disconnect()
    box_a = mqtt_client("box-a")
    box_a.connect()
    assert not box_a.publish(EVENTS_A, b"acked-by-the-broker-only").is_failure
    box_a.disconnect()

    mosquitto.kill()
    mosquitto.start()

    hq_back = mqtt_client("hq-ingest", client_id="hq-ingest-1", persistent=True)
    assert hq_back.connect().value == 0
    hq_back.assert_silent()
