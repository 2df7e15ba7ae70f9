"""The box's MQTT connection, paho-mqtt driven from the agent's one asyncio loop.

Theory of operation
-------------------
paho can run its own network thread (``loop_start``), but the agent runs everything on one
loop under one supervisor (STYLE.md), so paho is driven through its socket callbacks instead:
when it opens a socket the loop watches it for reading (``add_reader`` -> ``loop_read``);
when it has bytes to send it asks for write readiness (``on_socket_register_write`` ->
``add_writer`` -> ``loop_write``) and drops it when its queue is empty; ``loop_misc`` runs
every second for keepalive pings and timeouts. Every paho callback then runs on the loop, so
the pump's state needs no lock.

The one blocking step is the connect itself: paho's ``connect`` opens the TCP connection and
does the TLS handshake synchronously (up to its 5 s timeout to an unreachable broker), so it
runs in a worker thread. The socket callbacks it fires there only hand over to the loop
(``call_soon_threadsafe``); nothing else ever runs off the loop. A TLS socket can hold
decrypted bytes the kernel no longer reports as readable, so a read drains ``pending()``.

``run`` keeps the link up until cancelled: connect, wait for the connection to end, wait a
jittered exponential delay (full jitter: uniform in [0, min(max, min * 2^n)], so a store's
worth of boxes coming back from one outage spreads out instead of hitting the broker in
step), and again. The delay resets after a connection that was accepted. Before every connect
``prepare`` answers the last will to register (the box's retained ``offline`` for the session
about to start), because a will is fixed at connect time. The session is persistent
(``clean_session`` false in 3.1.1; ``clean_start`` false with a session expiry in 5), keyed by
the client id, so the broker keeps the box's subscriptions and the acks queued for it while
it is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

log = logging.getLogger(__name__)

_MISC_EVERY_S = 1.0
_CONNECT_TIMEOUT_S = 5.0
_SESSION_EXPIRY_S = 14 * 24 * 3600  # as mosquitto.conf's persistent_client_expiration


class LinkHandler(Protocol):
    """What the link tells its owner, always on the loop."""

    def on_connected(self) -> None: ...
    def on_disconnected(self, reason: str) -> None: ...
    def on_message(self, topic: str, payload: bytes) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    host: str
    port: int
    tls: bool
    ca_file: str | None
    username: str
    password: str  # never logged
    client_id: str
    protocol: Literal["3.1.1", "5"]
    keepalive_s: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Will:
    topic: str
    payload: bytes


def backoff_delay(failures: int, *, low_s: float, high_s: float, rng: random.Random) -> float:
    """Full-jitter exponential delay before reconnect attempt ``failures`` (1, 2, ...)."""
    return rng.uniform(0.0, min(high_s, low_s * 2.0 ** max(0, failures - 1)))


class MqttLink:
    def __init__(
        self,
        endpoint: Endpoint,
        *,
        handler: LinkHandler,
        subscriptions: tuple[str, ...],
        prepare: Callable[[], Awaitable[Will]],
        reconnect_min_s: float,
        reconnect_max_s: float,
        rng: random.Random | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._handler = handler
        self._subscriptions = subscriptions
        self._prepare = prepare
        self._reconnect = (reconnect_min_s, reconnect_max_s)
        self._rng = rng or random.Random()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed: asyncio.Event | None = None
        self._misc: asyncio.Task[None] | None = None
        self._connected = False
        self.heard_at = 0.0  # monotonic time the broker last sent anything (a PUBACK, a ping)
        self._client = self._make_client()

    # -- what the pump uses ------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> bool:
        """Queue ``payload`` at QoS 1; False when there is no connection to queue it on (the
        outbox still holds it: the pump sends it again after the next connect)."""
        if not self._connected:
            return False
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        return info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    async def run(self) -> None:
        """Keep the link up until cancelled (see the module docstring)."""
        self._loop = asyncio.get_running_loop()
        failures = 0
        try:
            while True:
                accepted = await self._session()
                failures = 1 if accepted else failures + 1
                low, high = self._reconnect
                delay = backoff_delay(failures, low_s=low, high_s=high, rng=self._rng)
                log.info("MQTT: reconnecting in %.1f s", delay)
                await asyncio.sleep(delay)
        finally:
            if not self._connected:  # else ``close`` still has something to say on it
                self._teardown()

    async def close(self, last_words: Will | None, *, timeout_s: float = 2.0) -> None:
        """Say ``last_words`` (the clean shutdown's retained ``offline``) and disconnect, so
        the broker does not publish the will; at most ``timeout_s``."""
        if not self._connected:
            self._teardown()
            return
        if last_words is not None:
            info = self._client.publish(last_words.topic, last_words.payload, qos=1, retain=True)
            with contextlib.suppress(TimeoutError, RuntimeError):
                async with asyncio.timeout(timeout_s):
                    while not info.is_published() and self._connected:
                        await asyncio.sleep(0.01)
        self._connected = False  # ours, not a lost connection: no on_disconnected for it
        self._client.disconnect()  # queued behind the offline message
        with contextlib.suppress(Exception):
            self._client.loop_write()
        self._teardown()

    # -- one connection ----------------------------------------------------------------------

    async def _session(self) -> bool:
        """Connect and wait until the connection ends; True if the broker had accepted it."""
        will = await self._prepare()
        client = self._client
        client.will_set(will.topic, will.payload, qos=1, retain=True)
        self._closed = asyncio.Event()
        self._accepted = False
        e = self._endpoint
        try:
            await asyncio.to_thread(self._connect_blocking)
        except (OSError, ssl.SSLError, ValueError) as exc:
            log.warning("MQTT: cannot connect to %s:%d: %s", e.host, e.port, exc)
            return False
        await self._closed.wait()
        return self._accepted

    def _connect_blocking(self) -> None:  # in a worker thread: only paho's connect runs here
        e = self._endpoint
        if e.protocol == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = _SESSION_EXPIRY_S
            self._client.connect(
                e.host, e.port, keepalive=e.keepalive_s, clean_start=False, properties=props
            )
        else:
            self._client.connect(e.host, e.port, keepalive=e.keepalive_s)

    def _make_client(self) -> mqtt.Client:
        e = self._endpoint
        v311 = e.protocol == "3.1.1"
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=e.client_id,
            protocol=MQTTProtocolVersion.MQTTv311 if v311 else MQTTProtocolVersion.MQTTv5,
            clean_session=False if v311 else None,
        )
        client.username_pw_set(e.username, e.password)
        client.connect_timeout = _CONNECT_TIMEOUT_S
        if e.tls:
            client.tls_set(ca_certs=e.ca_file)  # verifies the broker's name and chain
        # paho's own queue is unbounded; what it holds is bounded by the pump's send window.
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        return client

    # -- paho's callbacks (socket ones may come from the connect thread) -----------------------

    def _on_loop(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        assert loop is not None
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            fn(*args)
        else:
            loop.call_soon_threadsafe(fn, *args)

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._watch, sock)

    def _watch(self, sock: socket.socket) -> None:
        assert self._loop is not None
        self._loop.add_reader(sock, self._readable)
        if self._misc is None or self._misc.done():
            self._misc = self._loop.create_task(self._misc_loop())

    def _readable(self) -> None:
        self.heard_at = time.monotonic()
        client = self._client
        client.loop_read()
        sock = client.socket()
        while isinstance(sock, ssl.SSLSocket) and sock.pending():  # bytes TLS already decrypted
            client.loop_read()
            sock = client.socket()

    def _on_socket_close(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._unwatch, sock)

    def _unwatch(self, sock: socket.socket) -> None:
        assert self._loop is not None
        self._loop.remove_reader(sock)
        self._loop.remove_writer(sock)

    def _on_register_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._want_write, sock)

    def _want_write(self, sock: socket.socket) -> None:
        assert self._loop is not None
        if self._client.socket() is sock:  # not a socket closed meanwhile
            self._loop.add_writer(sock, self._client.loop_write)

    def _on_unregister_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._no_write, sock)

    def _no_write(self, sock: socket.socket) -> None:
        assert self._loop is not None
        self._loop.remove_writer(sock)

    async def _misc_loop(self) -> None:
        while self._client.socket() is not None:
            self._client.loop_misc()
            await asyncio.sleep(_MISC_EVERY_S)

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            log.warning("MQTT: the broker refused the connection: %s", reason)
            return  # the broker closes it: _on_disconnect follows
        self._accepted = True
        self._connected = True
        for topic in self._subscriptions:
            client.subscribe(topic, qos=1)
        log.info("MQTT: connected to %s:%d", self._endpoint.host, self._endpoint.port)
        self._handler.on_connected()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        was = self._connected
        self._connected = False
        if was:
            log.warning("MQTT: connection lost: %s", reason)
            self._handler.on_disconnected(str(reason))
        if self._closed is not None:
            self._closed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._handler.on_message(message.topic, bytes(message.payload))

    def _teardown(self) -> None:
        if self._misc is not None:
            self._misc.cancel()
        sock = self._client.socket()
        if sock is not None and self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(sock)
                self._loop.remove_writer(sock)
        with contextlib.suppress(Exception):
            self._client.disconnect()
        self._connected = False
