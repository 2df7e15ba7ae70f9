"""The embedded broker: amqtt 0.12.1 on a thread of HQ's own process, for ``make demo`` and a
one-machine pilot with no broker installed.

Theory of operation
-------------------
**A thread with its own asyncio loop, not a subprocess.** ``start()`` starts a daemon thread
that runs a fresh event loop, builds amqtt's ``Broker`` on it (amqtt binds a broker to the
loop it is built on) and waits until the listener is bound; ``stop()`` sets an event on that
loop, amqtt shuts down (closing every connection), the thread ends and is joined. Chosen over
a subprocess because: ``add_user`` changes the broker's live ``Accounts`` by hopping onto its
loop (a subprocess would need a reload protocol); start-up costs a few ms instead of a Python
interpreter's start and amqtt's import; a failed bind or plugin error comes back as a typed
exception from ``start()``; and nothing can outlive HQ (a daemon thread dies with it). The
price is the GIL: broker work competes with HQ's for one core, which the demo and a pilot's
message rates (hundreds a second at most) never notice; production runs Mosquitto. Its own
loop, not HQ's: the broker keeps delivering while HQ's loop waits on SQLite.

**What it speaks.** Plain TCP on 127.0.0.1, never another address: amqtt does its session
bookkeeping before it authenticates a CONNECT, so a *refused* CONNECT with clean_session 1
naming the client id of a persistent session deletes that session, and what was queued for
it is lost (``test_embedded.py`` pins it). Loopback only bounds who can try to local
processes; the link's application-level acks turn a lost message into a resend.
MQTT 3.1.1 only. Passwords are checked against Mosquitto-format hashes (``password_file``),
from a ``users`` mapping, a password file this broker reads and rewrites, or both.
Anonymous clients are refused. The ACL is the shipped ``config/mosquitto.acl`` itself,
parsed and enforced by ``amqtt_plugins.py`` (stricter than Mosquitto 2.0 on SUBSCRIBE).

**What the link needs, as amqtt 0.12.1 provides it:**

* QoS 1 both ways; PUBACK to a publisher once the broker has the message.
* Retained messages, kept in memory and sent to each new matching subscription.
* Last will: published when a connection dies without DISCONNECT (including keep-alive
  expiry), and retained when its retain flag is set, as ``state``'s ``offline`` is.
* Persistent sessions (clean_session False): subscriptions survive a disconnect, and QoS 1
  messages published meanwhile are queued (at most ``MAX_QUEUED_MESSAGES``, Mosquitto's
  ``max_queued_messages`` from the shipped config; beyond it they are dropped, as there) and
  delivered after the next CONNACK. A session unused for ``SESSION_EXPIRY_S`` (the shipped
  ``persistent_client_expiration``, 14 days) is forgotten. Everything is in memory: a stopped
  broker forgets sessions, queues and retained messages, which is why a box deletes an event
  only on HQ's application-level ack.
* **No shared subscriptions.** amqtt 0.12.1 treats ``$share/{group}/{filter}`` as a literal
  filter (its ``Broker._matches`` compares level by level, and no topic starts with
  ``$share``): the SUBACK grants it and nothing is ever delivered. This broker refuses such a
  SUBSCRIBE instead (SUBACK 0x80) and says ``supports_shared_subscriptions = False``, so HQ's
  ingest subscribes to ``storeside/v1/+/+/events`` plainly with one worker.

**Three amqtt defects corrected here** (``_StoresideBroker``, the smallest overrides of the
pinned 0.12.1 that fix them):

1. On every CONNECT amqtt sends the new client every retained message matching *any*
   client's subscription, with no RECEIVE check, so a box would get every other box's
   retained ``state`` and ``health``. Retained messages now go only to a session that holds
   the matching subscription and may receive the topic.
2. Messages queued for a persistent session were delivered with RETAIN set; MQTT 3.1.1
   section 3.3.1.3 requires RETAIN 0 for a message that matches an established subscription.
3. The per-session queue had no bound (see above).

A QoS 1 message amqtt has sent to a subscriber but that was not PUBACKed within 5 s, or whose
connection dropped meanwhile, is not sent again (amqtt does not redeliver in-flight messages on
reconnect). amqtt also acknowledges a PUBLISH before it routes it, so a message routed in the
moment its subscriber reconnects may miss both the queue and the new connection (our reading
of one failure of the persistent-session test under load, which waited too little and was
not reproduced alone; the test now waits until routing is done). The link acks in its
payloads, not by PUBACK, for all of these.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.errors import AMQTTError, PluginError, PluginLoadError
from amqtt.errors import BrokerError as AmqttBrokerError
from amqtt.session import Session

from cloud_sync.hq.broker.acl import read_acl
from cloud_sync.hq.broker.amqtt_plugins import Accounts
from cloud_sync.hq.broker.errors import BrokerError, BrokerStartError
from cloud_sync.hq.broker.password_file import (
    check_username,
    hash_password,
    read_password_file,
    write_hashes,
)
from cloud_sync.hq.broker.running_broker import BrokerKind
from cloud_sync.hq.broker.shipped_files import SHIPPED_ACL

log = logging.getLogger(__name__)

HOST: Final = "127.0.0.1"  # loopback only: see the module docstring
MAX_QUEUED_MESSAGES: Final = 10_000  # the shipped mosquitto.conf's max_queued_messages
SESSION_EXPIRY_S: Final = 14 * 24 * 3600  # its persistent_client_expiration 14d
_START_TIMEOUT_S: Final = 10.0
_STOP_TIMEOUT_S: Final = 10.0
_PLUGINS: Final = "cloud_sync.hq.broker.amqtt_plugins"
_T = TypeVar("_T")


class _StoresideBroker(Broker):
    """amqtt's broker with the three corrections the module docstring lists."""

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Session
    ) -> None:
        topic_filter, qos = subscription
        holders = self._subscriptions.get(topic_filter, [])
        if not any(held.client_id == session.client_id for held, _ in holders):
            return  # defect 1: someone else's subscription
        handler = self._get_handler(session)
        if handler is None:
            return
        sends = [
            asyncio.ensure_future(
                handler.mqtt_publish(
                    retained.topic, retained.data, min(qos, retained.qos or qos), retain=True
                )
            )
            for topic, retained in list(self._retained_messages.items())
            if self._matches(topic, topic_filter)
            and await self._topic_filtering(session, topic=topic, action=Action.RECEIVE)
        ]
        if sends:
            await asyncio.wait(sends)

    async def _publish_session_retained_messages(self, session: Session) -> None:
        handler = self._get_handler(session)
        if handler is None:
            return
        sends = []
        while not session.retained_messages.empty():
            queued = session.retained_messages.get_nowait()
            # defect 2: RETAIN 0, this is an established subscription's message.
            sends.append(
                asyncio.ensure_future(
                    handler.mqtt_publish(queued.topic, queued.data, queued.qos, retain=False)
                )
            )
        if sends:
            await asyncio.wait(sends)

    async def _retain_broadcast_message(
        self, broadcast: dict[str, Any], qos: int, target_session: Session
    ) -> None:
        if target_session.retained_messages.qsize() >= MAX_QUEUED_MESSAGES:
            # defect 3; Mosquitto drops the message the same way, with a log line.
            log.warning(
                "queue of offline client %r is full (%d): dropped a message on %r",
                target_session.client_id,
                MAX_QUEUED_MESSAGES,
                broadcast.get("topic"),
            )
            return
        await super()._retain_broadcast_message(broadcast, qos, target_session)


class EmbeddedBroker:
    """amqtt on 127.0.0.1 (see the module docstring). ``port=0`` picks a free one."""

    kind: Final = BrokerKind.AMQTT
    supports_shared_subscriptions: Final = False
    ca_cert: Final = None  # plain TCP

    def __init__(
        self,
        *,
        port: int = 0,
        users: Mapping[str, str] | None = None,
        password_file: Path | None = None,
        acl_file: Path = SHIPPED_ACL,
    ) -> None:
        self._requested_port = port
        self._password_file = password_file
        hashes: dict[str, str] = {}
        if password_file is not None and password_file.exists():
            hashes.update(read_password_file(password_file))
        for name, password in (users or {}).items():
            hashes[check_username(name)] = hash_password(password)
        if password_file is not None and users:
            write_hashes(password_file, hashes)
        self._accounts = Accounts(rules=read_acl(acl_file), hashes=hashes)
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise BrokerError("the embedded broker is not running")
        return self._port

    @property
    def url(self) -> str:
        return f"mqtt://{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            raise BrokerError("the embedded broker is already running")
        ready: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="storeside-amqtt", daemon=True
        )
        self._thread.start()
        try:
            self._port = ready.result(timeout=_START_TIMEOUT_S)
        except concurrent.futures.TimeoutError:
            self.stop()
            raise BrokerStartError(f"amqtt did not listen within {_START_TIMEOUT_S}s") from None
        except BaseException:
            # The thread is ending on its own; wait for it, so `running` is False on return.
            self._thread.join(timeout=_STOP_TIMEOUT_S)
            self._thread = self._loop = self._stopping = None
            raise
        log.info("embedded MQTT broker (amqtt) listening on %s", self.url)

    def stop(self) -> None:
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None and not loop.is_closed():
            # RuntimeError: the loop closed between the check and the call; it is stopping.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout=_STOP_TIMEOUT_S)
        if thread.is_alive():
            raise BrokerError(f"amqtt did not stop within {_STOP_TIMEOUT_S}s")
        self._thread = self._loop = self._stopping = None
        self._port = None

    def add_user(self, username: str, password: str) -> None:
        """Takes effect for the next CONNECT; written to the password file if there is one."""
        hashed = hash_password(password)  # slow part on the caller's thread, not the loop's
        check_username(username)

        def apply() -> dict[str, str]:
            self._accounts.hashes[username] = hashed
            return dict(self._accounts.hashes)

        loop = self._loop
        if loop is not None and self.running:
            future = asyncio.run_coroutine_threadsafe(_call(apply), loop)
            hashes = future.result(timeout=_START_TIMEOUT_S)
        else:
            hashes = apply()  # not running: no other thread reads it
        if self._password_file is not None:
            write_hashes(self._password_file, hashes)

    def reload_password_file(self) -> None:
        """Re-read the password file (what SIGHUP does to Mosquitto): users added with
        ``mosquitto_passwd`` may connect, removed ones may not (connected ones stay)."""
        if self._password_file is None:
            return
        hashes = read_password_file(self._password_file)

        def apply() -> dict[str, str]:
            self._accounts.hashes.clear()
            self._accounts.hashes.update(hashes)
            return hashes

        loop = self._loop
        if loop is not None and self.running:
            asyncio.run_coroutine_threadsafe(_call(apply), loop).result(timeout=_START_TIMEOUT_S)
        else:
            apply()

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # --- on the broker's thread ---------------------------------------------------------
    def _run(self, ready: concurrent.futures.Future[int]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(ready))
        except BaseException as exc:
            # A bug, not a refusal: hand it to start() rather than let it wait out its timeout.
            if not ready.done():
                ready.set_exception(exc)
            raise
        finally:
            loop.close()

    async def _serve(self, ready: concurrent.futures.Future[int]) -> None:
        self._stopping = asyncio.Event()
        config = {
            "listeners": {
                "default": {"type": "tcp", "bind": f"{HOST}:{self._requested_port}"},
            },
            "session_expiry_interval": SESSION_EXPIRY_S,
            "plugins": {
                f"{_PLUGINS}.StoresideAuthPlugin": {"accounts": self._accounts},
                f"{_PLUGINS}.StoresideAclPlugin": {"accounts": self._accounts},
            },
        }
        try:
            broker = _StoresideBroker(config)
            await broker.start()
        except (AMQTTError, AmqttBrokerError, PluginError, PluginLoadError, OSError) as exc:
            ready.set_exception(BrokerStartError(f"amqtt would not start: {exc}"))
            return
        ready.set_result(_bound_port(broker))
        try:
            await self._stopping.wait()
        finally:
            await broker.shutdown()


async def _call(apply: Callable[[], _T]) -> _T:
    return apply()


def _bound_port(broker: Broker) -> int:
    # amqtt has no public accessor for its listening sockets; with port 0 the OS chose one.
    server = broker._servers["default"].instance  # pinned amqtt 0.12.1
    port: int = next(iter(server.sockets)).getsockname()[1]
    return port
