"""The ingest worker (``storeside-hq ingest``): paho-mqtt in, the ingest core, acks out.

Theory of operation
-------------------
One worker is one MQTT client with a stable client id and a persistent session
(``clean_session`` False in MQTT 3.1.1, the default because amqtt, the embedded broker, speaks
nothing else; ``clean_start`` False with a session expiry in MQTT 5). It subscribes at QoS 1 to
``topics.hq_subscriptions(group)``: the events shared in ``$share/{group}/...``, so the workers
of a group split the batches between them, state and health unshared (retained: every worker
reads the whole fleet at once). ``--no-share`` is for a broker without shared subscriptions:
plain filters, and then only one worker may run.

Messages are handled on paho's network thread (at HQ a thread of its own is fine; the
one-asyncio-loop rule is the box's), in groups: ``on_message`` only collects, and after each
``client.loop()`` the worker reads on while the socket already holds more (``loop_read``
takes a packet or two per call; an SSL socket's decrypted bytes are ``pending()``, which
select cannot see), up to ``GROUP_MAX`` messages or ``GROUP_COLLECT_S`` of reading. It never
waits for more to arrive: a lone batch is handled at once. Each group, in this order, and
acknowledged to the broker last:

    1. ``Ingest.handle_many``: each message's checks, then one database transaction for
       the whole group, committed (one commit and a few round trips per group, not a dozen
       per message: at a store's pace nearly every message is a batch of its own)
    2. each box's ``Ack`` (its last, after the whole group) published at QoS 1 on
       ``.../{box}/ack``
    3. the broker's PUBACK for every message of the group, in the order they came (MQTT
       3.1.1 4.6.0-2; ``manual_ack``: paho would otherwise send it when the callback
       returns, whatever happened in it)

So a crash anywhere before 3 leaves the group's messages unacknowledged in the worker's
session and the broker sends them again when the worker reconnects; ingest is idempotent,
so handling them again changes nothing and answers the same acks. A refused payload is
quarantined, then acknowledged like any other: sending it again cannot make it better.

When the event store cannot be reached (``StoreUnavailableError``) nothing was committed and
nothing of the group is acknowledged: the worker logs one line, stops taking messages,
disconnects (the
session keeps every unacknowledged message: the broker does not resend on a live connection in
MQTT 3.1.1) and reconnects after a jittered backoff, which brings the same messages again. A
lost broker connection is retried the same way, with a backoff of its own. Passwords go to the
broker only, never to a log line.

``STORESIDE_HQ_CRASH_AFTER_COMMIT`` (tests only): when set, the worker SIGKILLs itself right
after the first transaction holding events commits, before it acks anything: the crash the design
above is for, made to happen where it hurts most.
"""

from __future__ import annotations

import logging
import os
import random
import select
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from cloud_sync.contract import topics
from cloud_sync.contract.ack import Ack, encode_ack
from cloud_sync.contract.topics import Channel
from cloud_sync.hq.ingest.core import Delivery, Ingest, Outcome
from cloud_sync.hq.ingest.errors import BrokerUrlError, StoreUnavailableError

log = logging.getLogger("storeside.hq.ingest")
CRASH_HOOK: Final = "STORESIDE_HQ_CRASH_AFTER_COMMIT"
SESSION_EXPIRY_S: Final = 14 * 24 * 3600  # the shipped broker's persistent_client_expiration
KEEPALIVE_S: Final = 30
LOOP_TIMEOUT_S: Final = 0.2
GROUP_MAX: Final = 64  # messages in one transaction: ~64 boxes' batches, a few ms of work
GROUP_COLLECT_S: Final = 0.02  # of reading what is already there, before handling it
_PORTS: Final = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """``mqtt://host[:port]`` (1883) or ``mqtts://host[:port]`` (TLS, 8883)."""
        parts = urlsplit(url)
        if parts.scheme not in _PORTS or not parts.hostname:
            raise BrokerUrlError(f"--broker {url!r}: expected mqtt://host[:port] or mqtts://...")
        if parts.username or parts.password or parts.path not in ("", "/"):
            raise BrokerUrlError(
                f"--broker {url!r}: host and port only (--username, --password-file)"
            )
        try:
            port = parts.port or _PORTS[parts.scheme]
        except ValueError as exc:
            raise BrokerUrlError(f"--broker {url!r}: {exc}") from None
        return cls(host=parts.hostname, port=port, tls=parts.scheme == "mqtts")


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerLogin:
    """How to reach and log in to the broker (shared by the worker and ``resend``)."""

    broker: BrokerAddress
    cafile: Path | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a log or a repr
    protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv311

    def client(self, client_id: str, *, persistent: bool, manual_ack: bool = False) -> mqtt.Client:
        v5 = self.protocol == MQTTProtocolVersion.MQTTv5
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=self.protocol,
            # MQTT 3.1.1 names it clean_session; MQTT 5 takes clean_start at connect().
            clean_session=None if v5 else not persistent,
            reconnect_on_failure=False,  # the worker reconnects itself, with jitter
            manual_ack=manual_ack,
        )
        if self.broker.tls:
            client.tls_set(
                ca_certs=None if self.cafile is None else str(self.cafile),
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        if self.username is not None:
            client.username_pw_set(self.username, self.password)
        return client

    def connect(self, client: mqtt.Client, *, persistent: bool) -> None:
        properties = None
        clean_start: bool | int = mqtt.MQTT_CLEAN_START_FIRST_ONLY
        if self.protocol == MQTTProtocolVersion.MQTTv5:
            clean_start = not persistent
            if persistent:
                # MQTT 5 3.1.2.11.2: without a session expiry the session ends with the
                # connection, clean_start False or not.
                properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                properties.SessionExpiryInterval = SESSION_EXPIRY_S
        client.connect(
            self.broker.host,
            self.broker.port,
            keepalive=KEEPALIVE_S,
            clean_start=clean_start,  # type: ignore[arg-type]
            properties=properties,
        )
        # paho leaves Nagle on: the box's small ack would wait behind the PUBACK before it
        # for the broker's delayed ACK (~40 ms on Linux). Mosquitto sets it on its side.
        sock = client.socket()
        if isinstance(sock, socket.socket):  # ssl.SSLSocket is one too
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Backoff:
    """Exponential backoff with jitter: the n-th delay is uniform in [c/2, c], c =
    min(cap, base * 2**n), so workers that lost the broker or the database together do not
    all come back in the same instant, and none retries at once in a tight loop."""

    def __init__(self, *, base_s: float = 0.5, cap_s: float = 30.0, rng: random.Random) -> None:
        self._base_s, self._cap_s, self._rng = base_s, cap_s, rng
        self._failures = 0

    def next_delay(self) -> float:
        ceiling = min(self._cap_s, self._base_s * 2**self._failures)
        self._failures = min(self._failures + 1, 30)
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self._failures = 0


class IngestWorker:
    def __init__(
        self,
        *,
        login: BrokerLogin,
        ingest: Ingest,
        client_id: str,
        group: str | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        self.login = login
        self.ingest = ingest
        self.client_id = client_id
        self.subscriptions = (
            topics.hq_subscriptions(group)
            if group is not None
            else tuple(
                topics.subscription(c) for c in (Channel.EVENTS, Channel.STATE, Channel.HEALTH)
            )
        )
        self._clock = clock
        jitter = rng or random.Random()  # jitter, not a secret
        self._broker_backoff = Backoff(rng=jitter)
        self._store_backoff = Backoff(rng=jitter)
        self._store_down = False
        self._crash_after_commit = bool(os.environ.get(CRASH_HOOK))
        self.client = login.client(client_id, persistent=True, manual_ack=True)
        self._taken: list[tuple[mqtt.MQTTMessage, Delivery]] = []  # collected, not handled
        self.subscribed = threading.Event()  # set at each SUBACK: what a test waits for
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def run(self, stop: threading.Event) -> None:
        """Connect, take messages and reconnect until ``stop`` is set."""
        where = f"{self.login.broker.host}:{self.login.broker.port}"
        while not stop.is_set():
            try:
                self.login.connect(self.client, persistent=True)
            except (OSError, ssl.SSLError) as exc:
                delay = self._broker_backoff.next_delay()
                log.warning("broker %s unreachable (%s); retrying in %.1f s", where, exc, delay)
                stop.wait(delay)
                continue
            while not stop.is_set() and not self._store_down:
                if self._loop_once() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
            self._taken.clear()  # never acknowledged: the session brings them again
            if self._store_down:
                # The session keeps what was not acknowledged; reconnecting brings it again.
                self.client.disconnect()
                delay = self._store_backoff.next_delay()
                log.warning("reconnecting in %.1f s to retry the unacknowledged messages", delay)
            elif not stop.is_set():
                delay = self._broker_backoff.next_delay()
                log.warning("connection to %s lost; reconnecting in %.1f s", where, delay)
            else:
                break
            self._store_down = False
            stop.wait(delay)
        self.client.disconnect()
        log.info("stopped")

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, code: ReasonCode, _p: Any) -> None:
        if code.is_failure:
            log.warning("broker refused the connection: %s", code)
            return
        self._broker_backoff.reset()
        client.subscribe([(s, 1) for s in self.subscriptions])
        log.info(
            "connected as %s; subscribing to %s", self.client_id, ", ".join(self.subscriptions)
        )

    def _on_subscribe(
        self, _c: mqtt.Client, _u: Any, _mid: int, codes: list[ReasonCode], _p: Any
    ) -> None:
        log_suback(log, codes)
        self.subscribed.set()

    def _loop_once(self) -> MQTTErrorCode:
        """One ``client.loop``, then what else is already readable, then the group."""
        rc = self.client.loop(timeout=LOOP_TIMEOUT_S)
        deadline = time.monotonic() + GROUP_COLLECT_S
        while (
            rc == MQTTErrorCode.MQTT_ERR_SUCCESS
            and self._taken
            and len(self._taken) < GROUP_MAX
            and time.monotonic() < deadline
            and _readable(self.client.socket())
        ):
            rc = self.client.loop_read()
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return rc  # the connection is gone: nothing taken can be acknowledged on it
        if self._taken:
            self._handle_group()
        return rc

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        if self._store_down:
            return  # left unacknowledged: it comes again after the reconnect
        try:
            topic = message.topic
        except UnicodeDecodeError:  # paho raises on a topic that is not UTF-8
            topic = repr(bytes(getattr(message, "_topic", b"")))
        delivery = Delivery(topic=topic, payload=bytes(message.payload), received_at=self._clock())
        self._taken.append((message, delivery))

    def _handle_group(self) -> None:
        taken, self._taken = self._taken, []
        try:
            outcomes = self.ingest.handle_many([delivery for _, delivery in taken])
        except StoreUnavailableError as exc:
            self._store_down = True
            log.warning(
                "event store unavailable, %d message(s) not acknowledged: %s", len(taken), exc
            )
            return
        self._store_backoff.reset()
        if self._crash_after_commit and any(o.channel is Channel.EVENTS for o in outcomes):
            os.kill(os.getpid(), signal.SIGKILL)
        acks: dict[tuple[str, str], Ack] = {}
        for outcome in outcomes:
            if outcome.ack is not None:
                acks[(outcome.ack.store_id, outcome.ack.box_id)] = outcome.ack
        for ack in acks.values():
            self.client.publish(
                topics.topic(ack.store_id, ack.box_id, Channel.ACK), encode_ack(ack), qos=1
            )
        for (message, delivery), outcome in zip(taken, outcomes, strict=True):
            self.client.ack(message.mid, message.qos)
            _log_outcome(delivery.topic, outcome)


def log_suback(logger: logging.Logger, codes: list[ReasonCode]) -> None:
    """A SUBACK, logged: which subscriptions the broker refused, if any."""
    refused = [str(c) for c in codes if c.is_failure]
    if refused:
        logger.warning("broker refused a subscription: %s", ", ".join(refused))
    else:
        logger.info("subscribed")


def _readable(sock: Any) -> bool:
    """Whether a read now would find bytes: TLS records already decrypted, or the socket's."""
    if sock is None:
        return False
    if isinstance(sock, ssl.SSLSocket) and sock.pending() > 0:
        return True
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def _log_outcome(topic: str, outcome: Outcome) -> None:
    if outcome.quarantined:
        log.warning("%s: quarantined (%s)", topic, ", ".join(outcome.quarantined))
    if outcome.conflicts:
        log.warning("%s: %d conflict(s) recorded", topic, outcome.conflicts)
    if outcome.ack is not None:
        log.info(
            "%s: stored %d, duplicates %d%s; acked through %d",
            topic,
            outcome.stored,
            outcome.duplicates,
            ", parked" if outcome.parked else "",
            outcome.ack.stored_through,
        )
