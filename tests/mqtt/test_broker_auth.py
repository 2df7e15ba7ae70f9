"""Who may connect to the shipped config: TLS on the one listener, a password per user, no
anonymous clients, no client certificate needed (mosquitto.conf says why)."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from tests.mqtt.broker import MosquittoBroker
from tests.mqtt.fixtures import ClientFactory
from tests.mqtt.tls import make_tls_files

# MQTT 3.1.1 section 3.2.2.3: CONNACK return code 5, "not authorized", which paho 2 hands
# over as the MQTT 5 reason code it maps to, 0x87.
V311_NOT_AUTHORIZED = 0x87
# MQTT 5 section 3.2.2.2: 0x86 Bad User Name or Password, 0x87 Not authorized.
V5_REFUSED = (0x86, 0x87)


def test_a_box_connects_over_tls_with_its_password_and_no_client_certificate(
    mqtt_client: ClientFactory,
) -> None:
    assert mqtt_client("box-a").connect().value == 0


@pytest.mark.parametrize("protocol", [mqtt.MQTTv311, mqtt.MQTTv5], ids=["mqtt311", "mqtt5"])
def test_a_wrong_password_is_refused(
    mqtt_client: ClientFactory, protocol: MQTTProtocolVersion
) -> None:
    code = mqtt_client("box-a", password="not-the-password", protocol=protocol).connect()

    assert code.is_failure
    expected = (V311_NOT_AUTHORIZED,) if protocol == mqtt.MQTTv311 else V5_REFUSED
    assert code.value in expected


def test_an_unknown_user_and_an_anonymous_client_are_refused(mqtt_client: ClientFactory) -> None:
    assert mqtt_client("box-z", password="guess").connect().value == V311_NOT_AUTHORIZED
    assert mqtt_client(None, client_id="anon").connect().value == V311_NOT_AUTHORIZED


def test_a_client_that_does_not_trust_the_ca_gets_no_connection(
    mosquitto: MosquittoBroker, tmp_path: Path, mqtt_passwords: dict[str, str]
) -> None:
    """The box pins the chain's CA: a broker certificate from anyone else is refused in the
    TLS handshake, before the box's password is sent."""
    other_ca = make_tls_files(tmp_path / "other", common_name="somebody-else").ca_cert
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="box-a-x")
    client.tls_set(ca_certs=str(other_ca))
    client.username_pw_set("box-a", mqtt_passwords["box-a"])

    with pytest.raises(ssl.SSLCertVerificationError):
        client.connect("127.0.0.1", mosquitto.port)


def test_plain_mqtt_on_the_tls_port_gets_no_connack(mosquitto: MosquittoBroker) -> None:
    """A box misconfigured without TLS must not get as far as sending its password in the
    clear and being answered: the broker closes the connection."""
    # A minimal MQTT 3.1.1 CONNECT (section 3.1): protocol "MQTT", level 4, clean session,
    # keep-alive 30 s, client id "x".
    connect = bytes([0x10, 13, 0, 4]) + b"MQTT" + bytes([4, 0x02, 0, 30, 0, 1]) + b"x"
    with socket.create_connection(("127.0.0.1", mosquitto.port), timeout=2) as sock:
        sock.sendall(connect)
        try:
            answer = sock.recv(16)
        except ConnectionResetError:
            answer = b""
    assert answer == b""


def test_the_plain_test_listener_still_needs_a_password(mqtt_client: ClientFactory) -> None:
    """The optional plain listener (quick tests only) shares the password file and ACL."""
    assert mqtt_client(None, client_id="anon", tls=False).connect().value == V311_NOT_AUTHORIZED
    assert mqtt_client("box-a", tls=False).connect().value == 0
