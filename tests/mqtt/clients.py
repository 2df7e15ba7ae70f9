"""Real paho-mqtt 2.2 clients for broker tests, each with its network loop on paho's thread.

Tests only: the agent drives paho from its asyncio loop (STYLE.md), but a test wants to block
until the broker answers, with a timeout, so every wait here is a queue read that gives up
(a broker that never answers must fail the test, not hang it).

Each broker packet a test may assert on (CONNACK, SUBACK, PUBACK, PUBLISH) lands in a queue
of its own, with paho's reason codes as they came off the wire.
"""

from __future__ import annotations

import queue
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

WAIT_S = 3.0


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    qos: int


@dataclass(frozen=True, kw_only=True)
class Will:
    topic: str
    payload: bytes
    retain: bool = True
    qos: int = 1


class TestClient:
    """One connection. ``protocol`` is ``mqtt.MQTTv311`` or ``mqtt.MQTTv5``."""

    __test__ = False  # not a pytest test class, despite its name

    def __init__(
        self,
        *,
        port: int,
        ca_cert: Path | None,
        username: str | None,
        password: str | None,
        client_id: str,
        protocol: MQTTProtocolVersion = mqtt.MQTTv311,
        persistent: bool = False,
        will: Will | None = None,
    ) -> None:
        self.port = port
        self.protocol = protocol
        self.persistent = persistent
        v5 = protocol == mqtt.MQTTv5
        self.paho = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
            # MQTT 3.1.1 names it clean_session; MQTT 5 takes clean_start at connect().
            clean_session=None if v5 else not persistent,
        )
        if ca_cert is not None:
            self.paho.tls_set(ca_certs=str(ca_cert), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        if username is not None:
            self.paho.username_pw_set(username, password)
        if will is not None:
            self.paho.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        # paho sleeps out its reconnect delay (1 s by default) before loop_stop can return;
        # tests restart brokers and refuse clients, so keep it short.
        self.paho.reconnect_delay_set(min_delay=0.02, max_delay=0.2)  # type: ignore[arg-type]
        self.connacks: queue.Queue[ReasonCode] = queue.Queue()
        self.subacks: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.pubacks: dict[int, queue.Queue[ReasonCode]] = {}
        self.messages: queue.Queue[Received] = queue.Queue()
        self.paho.on_connect = self._on_connect
        self.paho.on_subscribe = self._on_subscribe
        self.paho.on_publish = self._on_publish
        self.paho.on_message = self._on_message

    # paho's VERSION2 callbacks (called on paho's thread)
    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, code: ReasonCode, _p: Any) -> None:
        self.connacks.put(code)

    def _on_subscribe(
        self, _c: mqtt.Client, _u: Any, _mid: int, codes: list[ReasonCode], _p: Any
    ) -> None:
        self.subacks.put(codes)

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, code: ReasonCode, _p: Any) -> None:
        self.pubacks.setdefault(mid, queue.Queue()).put(code)

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self.messages.put(
            Received(message.topic, bytes(message.payload), bool(message.retain), message.qos)
        )

    def connect(self) -> ReasonCode:
        """Connect and wait for the CONNACK; on a refusal, stop paho's retries."""
        properties = None
        clean_start: bool | Literal[3] = mqtt.MQTT_CLEAN_START_FIRST_ONLY
        if self.protocol == mqtt.MQTTv5:
            clean_start = not self.persistent
            if self.persistent:
                # MQTT 5 3.1.2.11.2: without a Session Expiry Interval the session ends with
                # the connection, clean_start False or not.
                properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                properties.SessionExpiryInterval = 3600
        self.paho.connect(
            "127.0.0.1", self.port, keepalive=30, clean_start=clean_start, properties=properties
        )
        self.paho.loop_start()
        code = self.connacks.get(timeout=WAIT_S)
        if code.is_failure:
            self.paho.disconnect()
            self.paho.loop_stop()
        return code

    def subscribe(self, topic: str, qos: int = 1) -> list[ReasonCode]:
        result, _mid = self.paho.subscribe(topic, qos=qos)
        assert result == mqtt.MQTT_ERR_SUCCESS
        return self.subacks.get(timeout=WAIT_S)

    def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> ReasonCode:
        """Publish and wait for the broker's PUBACK (QoS 1); returns its reason code."""
        info = self.paho.publish(topic, payload, qos=qos, retain=retain)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS
        # on_publish may run before publish() returns: the queue is made by whoever is first.
        return self.pubacks.setdefault(info.mid, queue.Queue()).get(timeout=WAIT_S)

    def expect(self, timeout: float = WAIT_S) -> Received:
        return self.messages.get(timeout=timeout)

    def assert_silent(self, timeout: float = 0.2) -> None:
        try:
            message = self.messages.get(timeout=timeout)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected message {message}")

    def disconnect(self) -> None:
        """A clean DISCONNECT: no last will."""
        self.paho.disconnect()
        self.paho.loop_stop()

    def drop(self) -> None:
        """The connection dies without a DISCONNECT (a crash or a pulled cable): the broker
        publishes the last will. The shutdown also wakes paho's thread from its select, so
        loop_stop returns at once (stopped first, it would sit out a 1 s select); the thread
        sees the flag before its reconnect delay is over, so it does not come back."""
        sock = self.paho.socket()
        assert isinstance(sock, socket.socket)  # an ssl.SSLSocket is one
        sock.shutdown(socket.SHUT_RDWR)
        self.paho.loop_stop()


class Clients:
    """The clients one test makes of one broker: each with its user's own password unless
    told otherwise and a client id unique in the test; ``close()`` disconnects them all."""

    def __init__(self, passwords: Mapping[str, str]) -> None:
        self.passwords = passwords
        self.made: list[TestClient] = []

    def make(
        self,
        *,
        port: int,
        ca_cert: Path | None,
        username: str | None,
        client_id: str | None = None,
        password: str | None = None,
        protocol: MQTTProtocolVersion = mqtt.MQTTv311,
        persistent: bool = False,
        will: Will | None = None,
    ) -> TestClient:
        client = TestClient(
            port=port,
            ca_cert=ca_cert,
            username=username,
            password=password if password is not None else self.passwords.get(username or ""),
            client_id=client_id or f"{username}-{len(self.made)}",
            protocol=protocol,
            persistent=persistent,
            will=will,
        )
        self.made.append(client)
        return client

    def close(self) -> None:
        for client in self.made:
            # DISCONNECT first: it ends paho's reconnect wait, so loop_stop returns at once.
            client.paho.disconnect()
            client.paho.loop_stop()
