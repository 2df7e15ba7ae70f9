"""Many simulated boxes' MQTT clients driven from one thread by one selector.

Theory of operation
-------------------
A thousand boxes are a thousand MQTT connections, and a paho thread each would spend the
machine on context switches and the GIL. So every box has an ordinary paho client but no paho
loop: ``FleetLoop`` owns one ``selectors.DefaultSelector`` (epoll) and calls paho's external
loop API itself, as the box's ``mqtt_link.py`` does from asyncio:

* a readable socket gets ``loop_read`` (again while the TLS socket holds decrypted bytes:
  ``SSLSocket.pending()``, which epoll cannot see);
* a publish made outside a callback is written at once by paho; what paho queues inside a
  callback (PUBACKs, the birth, the subscription) or could not write whole makes
  ``want_write()`` true, and the loop then watches the socket for EVENT_WRITE and calls
  ``loop_write`` until nothing is left;
* ``loop_misc`` once a second for every client (keepalive pings, paho's timeouts).

One TLS context is shared by every client (loading the CA once, not a thousand times).

Per box, as the box's pump behaves on the wire (``topics.py`` for the channels):
client id ``{box_id}.{session}`` (never a real box's), username = box id, and a *clean*
session, unlike the box: a persistent session outlives the run at the broker (14 days in the
shipped config), still subscribed to the box's acks, so every later run's acks would be queued
for it too, and a run that inherited one could take an earlier run's ack for its own. A clean
session loses nothing here either: after a reconnect the box sends again from its last ack,
and HQ acks duplicates. Last will a retained ``offline``
state; on CONNACK it subscribes to its ``ack`` and ``resend`` topics and publishes a retained
``online`` state and its health, then health every ``health_interval_s`` (the first
period drawn at random, so a thousand boxes do not publish health in the same second).
Events arrive by ``load_model``; batches are sent while the box's window has room
(``sim_box.py``), at QoS 1 on its events topic. A lost connection is retried after a
jittered backoff, and the box then sends again from its last ack.

The loop measures nothing itself: each box records its lag, and ``tick`` reports counts.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import random
import selectors
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from cloud_sync.contract import ack as acks
from cloud_sync.contract import presence, topics
from cloud_sync.contract.decode_errors import DecodeError
from cloud_sync.contract.presence import BoxState, State
from cloud_sync.contract.topics import Channel
from cloud_sync.fleet_sim.errors import FleetConnectError
from cloud_sync.fleet_sim.load_model import LoadModel, box_rng, next_arrival
from cloud_sync.fleet_sim.sim_box import SimBox

log = logging.getLogger("storeside.fleet_sim")
KEEPALIVE_S: Final = 30
MISC_EVERY_S: Final = 1.0
EXPIRY_CHECK_S: Final = 0.25
MAX_SELECT_S: Final = 0.05
RECONNECT_MIN_S: Final = 0.5
RECONNECT_MAX_S: Final = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Broker:
    host: str
    port: int
    cafile: Path | None  # None: plain TCP (mqtt://)


@dataclass(slots=True, kw_only=True)
class Counts:
    """What happened across the loop's boxes (cumulative)."""

    connected: int = 0
    created: int = 0
    sent: int = 0
    resent: int = 0
    acked: int = 0
    batches: int = 0
    reconnects: int = 0
    timeouts: int = 0


class Link:
    """One box and its client."""

    def __init__(self, box: SimBox, client: mqtt.Client, *, session: int) -> None:
        self.box = box
        self.client = client
        self.session = session
        ident = box.identity
        self.events_topic = topics.topic(ident.store_id, ident.box_id, Channel.EVENTS)
        self.state_topic = topics.topic(ident.store_id, ident.box_id, Channel.STATE)
        self.health_topic = topics.topic(ident.store_id, ident.box_id, Channel.HEALTH)
        self.connected = False  # CONNACK accepted
        self.watching_write = False
        self.reconnect_at: float | None = None
        self.failures = 0
        self.next_health = 0.0
        self.health_sent = 0  # since the last connect

    def state(self, state: BoxState) -> bytes:
        ident = self.box.identity
        return presence.encode_state(
            State(store_id=ident.store_id, box_id=ident.box_id, state=state, session=self.session)
        )


class FleetLoop:
    def __init__(
        self,
        boxes: Sequence[SimBox],
        *,
        broker: Broker,
        model: LoadModel,
        seed: int,
        session: int,
        ack_timeout_s: float = 15.0,
        health_interval_s: float = 30.0,
    ) -> None:
        self.boxes = boxes
        self.model = model
        self.seed = seed
        self.ack_timeout_s = ack_timeout_s
        self.health_interval_s = health_interval_s
        self.counts = Counts()
        self._broker = broker
        self._selector = selectors.DefaultSelector()
        self._writers: set[Link] = set()
        self._dirty: set[Link] = set()  # boxes that may have a batch to send
        self._jitter = random.Random(seed)
        self._generating = False
        self._measured = False
        context = None
        if broker.cafile is not None:
            context = ssl.create_default_context(cafile=str(broker.cafile))
        self.links = [self._link(box, session, context) for box in boxes]

    def _link(self, box: SimBox, session: int, context: ssl.SSLContext | None) -> Link:
        ident = box.identity
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{ident.box_id}.{session}",
            protocol=MQTTProtocolVersion.MQTTv311,
            clean_session=True,  # see the module docstring
            reconnect_on_failure=False,
        )
        link = Link(box, client, session=session)
        client.user_data_set(link)
        if context is not None:
            client.tls_set_context(context)
        client.username_pw_set(ident.box_id, ident.password)
        client.will_set(link.state_topic, link.state(BoxState.OFFLINE), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        client.on_socket_close = self._on_socket_close
        return link

    # -- connecting ---------------------------------------------------------------------------

    def connect_all(self, *, timeout_s: float) -> float:
        """Connect every box (TCP, TLS, CONNECT), serving the ones already connected between
        connects; answers the seconds it took. ``FleetConnectError`` if any is refused or
        not connected within ``timeout_s``."""
        started = time.monotonic()
        for n, link in enumerate(self.links):
            self._open(link)
            if n % 20 == 19:
                self._serve(0.0)
        deadline = started + timeout_s
        while self.counts.connected < len(self.links):
            if time.monotonic() > deadline:
                raise FleetConnectError(
                    f"{self.counts.connected} of {len(self.links)} boxes connected "
                    f"within {timeout_s:.0f} s"
                )
            self._serve(MAX_SELECT_S)
        return time.monotonic() - started

    def _open(self, link: Link) -> None:
        try:
            link.client.connect(self._broker.host, self._broker.port, keepalive=KEEPALIVE_S)
        except (OSError, ssl.SSLError) as exc:
            raise FleetConnectError(
                f"box {link.box.identity.box_id}: broker {self._broker.host}:"
                f"{self._broker.port}: {exc}"
            ) from exc
        self._watch(link)

    def _watch(self, link: Link) -> None:
        sock = link.client.socket()
        if sock is None:
            return
        self._selector.register(sock, selectors.EVENT_READ, link)
        link.watching_write = False
        if link.client.want_write():
            self._writers.add(link)

    def _on_socket_close(self, _c: mqtt.Client, _link: Any, sock: Any) -> None:
        with contextlib.suppress(KeyError, ValueError):  # never registered, or already gone
            self._selector.unregister(sock)

    def _on_connect(
        self, client: mqtt.Client, link: Link, _f: Any, code: ReasonCode, _p: Any
    ) -> None:
        if code.is_failure:
            log.error("box %s: broker refused: %s", link.box.identity.box_id, code)
            return
        link.connected = True
        link.failures = 0
        self.counts.connected += 1
        ident = link.box.identity
        client.subscribe([(t, 1) for t in topics.box_subscriptions(ident.store_id, ident.box_id)])
        client.publish(link.state_topic, link.state(BoxState.ONLINE), qos=1, retain=True)
        link.box.rewind()  # whatever was in flight on the last connection may be lost
        link.next_health = time.monotonic()
        link.health_sent = 0
        self._dirty.add(link)

    def _on_disconnect(
        self, _c: mqtt.Client, link: Link, _f: Any, code: ReasonCode, _p: Any
    ) -> None:
        if link.connected:
            link.connected = False
            self.counts.connected -= 1
        if self._generating or link.box.outbox:
            delay = min(RECONNECT_MAX_S, RECONNECT_MIN_S * 2**link.failures)
            link.failures += 1
            link.reconnect_at = time.monotonic() + self._jitter.uniform(delay / 2, delay)
            log.warning("box %s: connection lost (%s)", link.box.identity.box_id, code)

    def _on_message(self, _c: mqtt.Client, link: Link, message: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        box = link.box
        try:
            if message.topic.endswith("/ack"):
                done = box.on_ack(acks.decode_ack(bytes(message.payload)), now=now, wall=_wall())
                self.counts.acked += done
            else:
                request = acks.decode_resend(bytes(message.payload))
                first = request.ranges[0].first
                if first > box.acked:
                    box.rewind(first)
        except DecodeError as exc:
            log.warning("box %s: unreadable %s: %s", box.identity.box_id, message.topic, exc)
            return
        self._dirty.add(link)

    # -- running ------------------------------------------------------------------------------

    def run(
        self,
        *,
        duration_s: float,
        drain_s: float,
        tick: Callable[[float, Counts], None],
        warmup_s: float = 0.0,
    ) -> None:
        """Generate events for ``duration_s``, then wait up to ``drain_s`` for HQ to
        acknowledge the rest; ``tick(elapsed, counts)`` once a second. Events made in the
        first ``warmup_s`` are sent and acknowledged like any other but leave their lag out."""
        start = time.monotonic()
        arrivals: list[tuple[float, int, int]] = []
        rngs = [box_rng(self.seed, link.box.index) for link in self.links]
        for i in range(len(self.links)):
            at, size = next_arrival(self.model, rngs[i], start)
            arrivals.append((at, i, size))
        heapq.heapify(arrivals)
        end = start + duration_s
        self._generating = True
        next_tick = start + 1.0
        next_misc = next_expiry = start
        drained_by = end + drain_s
        while True:
            now = time.monotonic()
            if self._generating and now >= end:
                self._generating = False
            if not self._generating and (now >= drained_by or self._all_acked()):
                break
            while self._generating and arrivals[0][0] <= now:
                at, i, size = heapq.heappop(arrivals)
                link = self.links[i]
                measured = now >= start + warmup_s
                link.box.create(size, now=now, wall=_wall(), measured=measured)
                self.counts.created += size
                self._dirty.add(link)
                at, size = next_arrival(self.model, rngs[i], at)
                heapq.heappush(arrivals, (at, i, size))
            if now >= next_expiry:
                next_expiry = now + EXPIRY_CHECK_S
                self._expire_and_reconnect(now)
            if now >= next_misc:
                next_misc = now + MISC_EVERY_S
                self._misc(now)
            self._send_dirty(now)
            if now >= next_tick:
                next_tick += 1.0
                self.counts.sent = sum(link.box.sent_events for link in self.links)
                self.counts.resent = sum(link.box.resent_events for link in self.links)
                tick(now - start, self.counts)
            wait = MAX_SELECT_S
            if self._generating:
                wait = min(wait, max(0.0, arrivals[0][0] - time.monotonic()))
            self._serve(wait)

    def _all_acked(self) -> bool:
        return all(not link.box.outbox for link in self.links)

    def _send_dirty(self, now: float) -> None:
        dirty, self._dirty = self._dirty, set()
        for link in dirty:
            if not link.connected:
                continue
            while True:
                payload = link.box.next_batch(now)
                if payload is None:
                    break
                link.client.publish(link.events_topic, payload, qos=1)
                self.counts.batches += 1
            if link.client.want_write():
                self._writers.add(link)

    def _expire_and_reconnect(self, now: float) -> None:
        for link in self.links:
            if link.connected and link.box.expired(now=now, timeout_s=self.ack_timeout_s):
                self.counts.timeouts += 1
                self._dirty.add(link)
            elif link.reconnect_at is not None and now >= link.reconnect_at:
                link.reconnect_at = None
                self.counts.reconnects += 1
                try:
                    link.client.reconnect()
                except (OSError, ssl.SSLError) as exc:
                    log.warning("box %s: reconnect failed: %s", link.box.identity.box_id, exc)
                    self._on_disconnect(link.client, link, None, _LOST, None)
                    continue
                self._watch(link)

    def _misc(self, now: float) -> None:
        wall = _wall()
        for link in self.links:
            if not link.connected:
                continue
            link.client.loop_misc()
            if now >= link.next_health:
                # The first after a connect comes at once; the next one at a random point of
                # the interval, so a fleet that connected together spreads its health out.
                first = link.health_sent == 0
                link.health_sent += 1
                spread = self._jitter.uniform(0.0, 1.0) if first else 1.0
                link.next_health = now + self.health_interval_s * spread
                health = link.box.health(session=link.session, wall=wall)
                link.client.publish(
                    link.health_topic, presence.encode_health(health), qos=1, retain=True
                )
            if link.client.want_write():
                self._writers.add(link)

    def serve(self, timeout: float) -> None:
        """Serve the boxes' sockets for up to ``timeout`` seconds (no events are made)."""
        self._serve(timeout)

    def _serve(self, timeout: float) -> None:
        for link in list(self._writers):
            self._flush(link)
        for key, mask in self._selector.select(timeout):
            link = key.data
            client = link.client
            if mask & selectors.EVENT_READ:
                rc = client.loop_read()
                sock = client.socket()
                while (
                    rc == MQTTErrorCode.MQTT_ERR_SUCCESS
                    and isinstance(sock, ssl.SSLSocket)
                    and sock.pending()
                ):
                    rc = client.loop_read()
            if mask & selectors.EVENT_WRITE or client.want_write():
                self._flush(link)

    def _flush(self, link: Link) -> None:
        client = link.client
        sock = client.socket()
        if sock is None:
            self._writers.discard(link)
            return
        client.loop_write()
        wants = client.want_write()
        if wants != link.watching_write and client.socket() is sock:
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if wants else 0)
            self._selector.modify(sock, events, link)
            link.watching_write = wants
        if wants:
            self._writers.add(link)
        else:
            self._writers.discard(link)

    # -- stopping -----------------------------------------------------------------------------

    def close(self) -> None:
        """A clean shutdown: each box publishes ``offline`` and disconnects."""
        self._generating = False
        for link in self.links:
            if link.connected:
                link.client.publish(
                    link.state_topic, link.state(BoxState.OFFLINE), qos=1, retain=True
                )
                link.client.disconnect()
                link.reconnect_at = None
        deadline = time.monotonic() + 5.0
        while self._writers and time.monotonic() < deadline:
            self._serve(0.01)
        for link in self.links:
            link.client.loop_misc()
        self._selector.close()


_LOST: Final = ReasonCode(PacketTypes.DISCONNECT, "Unspecified error")


def _wall() -> datetime:
    return datetime.now(UTC)
