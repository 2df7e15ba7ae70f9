"""The outbox pump: every event the box commits, delivered to HQ, deleted only on HQ's ack.

Theory of operation
-------------------
One task on the agent's loop (``runtime/sync_task.py`` supervises it) with three parts:

* the **link** (``mqtt_link.py``) keeps a persistent MQTT session to HQ's broker and hands
  over every message from it;
* the **sender** reads the outbox (on the pump's own thread and connection,
  ``pump_thread.py``) from the send window's cursor (``contract/send_window.py``), packs the
  rows into a batch as they are stored (``contract/batch.py``: no decode, no re-encode),
  signs it with the store key and publishes it at QoS 1; it waits while the window is full,
  while the drain's token bucket is empty, while there is nothing to send (it wakes when the
  tills' DB thread commits a write: ``DbThread.on_write``, so an event reaches the wire within
  a loop turn of its COMMIT, not a poll interval) and while there is no connection. Ranges HQ
  asks for again (``ResendRequest``) go first, read from the retained history;
* **acks**: HQ's ``Ack`` moves the window and, once per ack that acknowledged anything new,
  deletes the outbox rows up to it on the pump's thread, at most ``ACK_WRITE_EVERY_S`` apart
  (each is an fsync). A delete lost to a power cut only means those events are sent again,
  and HQ stores them once. An ack or request that does not decode, or names another box, is
  logged and dropped; the link keeps running.

Availability follows Sparkplug's birth and death (``contract/presence.py``): each connect
attempt gets the next session number and registers a retained ``offline`` of that session as
its will; once connected the pump publishes a retained ``online`` and a health summary, and
refreshes the summary every ``health_interval_s``. Health is the telemetry lane: only the
latest summary matters, so a box that is offline keeps none queued and sends the current one
when it is back (the oldest are dropped by construction). Events of the event log are never dropped:
they leave the outbox only on HQ's ack.

HQ's config pushes (the retained ``config`` topic) are handed, as they come, to the agent's
``ConfigInbox`` (``edge_agent/config_push/config_follower.py``), which outlives the pump: a
pushed config may change ``[sync]`` and so restart the pump that delivered it. After every
connect the pump publishes the inbox's last result again on the retained ``config_result``;
each health summary carries the inbox's ``config_health``, and a new result is followed by a
health summary at once, so the fleet view does not wait ``health_interval_s`` to show it.

Nothing here is on a till's request path: the tills' DB thread does none of the pump's work,
and a validate (a read) never waits for the pump's one write, the delete after an ack.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.contract import ack as acks
from cloud_sync.contract import batch as batches
from cloud_sync.contract import presence
from cloud_sync.contract.ack import SeqRange
from cloud_sync.contract.decode_errors import DecodeError
from cloud_sync.contract.send_window import SendWindow, TokenBucket
from cloud_sync.contract.topics import Channel, TopicError, box_subscriptions, parse_topic, topic
from config.sync import SyncConfig
from edge_agent.cache.code_cache import CodeCache
from edge_agent.domain.coupon_token import key_id
from edge_agent.domain.token_codec import public_key_from_text
from edge_agent.follow.follower import DeltaFollower
from edge_agent.follow.snapshot_fetch import SnapshotFetcher
from edge_agent.sync import outbox_access
from edge_agent.sync.batch_signer import sign
from edge_agent.sync.mqtt_link import Endpoint, MqttLink, Will
from edge_agent.sync.outbox_access import Rows, SyncFacts
from edge_agent.sync.pump_thread import PumpThread

log = logging.getLogger(__name__)
T = TypeVar("T")
IDLE_POLL_S = 1.0
ACK_WRITE_EVERY_S = 0.25


class ConfigInbox(Protocol):
    """Where HQ's config pushes go (``edge_agent/config_push/config_follower.py``): the agent's,
    not the pump's, since a config may restart the pump that delivered it."""

    def on_config(self, payload: bytes) -> None: ...

    def result_payload(self) -> bytes | None: ...

    def config_health(self) -> presence.ConfigHealth: ...


class CacheThread(Protocol):
    """The tills' DB thread (``runtime/db_thread.py``), as the pump uses it: only to hear
    about commits. The pump's own reads and writes run on its own thread (``pump_thread.py``)."""

    def on_write(self, listener: Callable[[], None]) -> Callable[[], None]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class PumpIdentity:
    store_id: str
    box_id: str
    key: Ed25519PrivateKey  # the store key HQ registered; signs every batch
    agent_version: str


@dataclass(slots=True, kw_only=True)
class PumpCounters:
    """What the pump has done since it started (for tests, benches and logs)."""

    batches_sent: int = 0
    events_sent: int = 0
    acks: int = 0
    rewinds: int = 0
    resent_ranges: int = 0
    dropped_messages: int = 0  # acks and requests that did not decode or were not ours
    connects: int = 0


@dataclass(slots=True)
class _Waker:
    """One event the sender sleeps on; anything that may let it send again sets it."""

    event: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self) -> None:
        self.event.set()

    async def wait(self, timeout_s: float | None) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                await self.event.wait()
        except TimeoutError:
            pass
        self.event.clear()


class OutboxPump:
    def __init__(
        self,
        *,
        db: CacheThread,
        open_cache: Callable[[], CodeCache],
        cfg: SyncConfig,
        identity: PumpIdentity,
        password: str,
        printer_state: Callable[[], str],
        clock: Callable[[], datetime],
        config_inbox: ConfigInbox | None = None,
        devices_state: Callable[[], str | None] = lambda: None,
    ) -> None:
        endpoint = cfg.endpoint
        if endpoint is None:
            raise ValueError("sync.broker_url is not set: there is no HQ to pump to")
        self._db = db
        self._thread = PumpThread(open_cache)
        self._cfg = cfg
        self._id = identity
        self._key_id = key_id(identity.key.public_key())
        self._printer_state = printer_state
        self._devices_state = devices_state
        self._clock = clock
        self._config_inbox = config_inbox
        self.counters = PumpCounters()
        self._wake = _Waker()
        self._window: SendWindow | None = None
        self._bucket = TokenBucket(rate=float(cfg.drain_events_per_s))
        self._resends: deque[SeqRange] = deque()
        self._ack_to_record = 0  # the highest ack not yet written to the outbox
        self._recording = False
        self._session = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._topics = {c: topic(identity.store_id, identity.box_id, c) for c in Channel}
        pinned = None if cfg.hq_public_key is None else public_key_from_text(cfg.hq_public_key)
        self.follower = DeltaFollower(
            store_id=identity.store_id,
            box_id=identity.box_id,
            pinned=pinned,
            on_cache=self._thread.run,
            say=lambda payload: self._link.publish(
                self._topics[Channel.POSITION], payload, retain=True
            ),
            clock=clock,
            quiet_s=cfg.position_quiet_s,
        )
        self.fetcher = SnapshotFetcher(
            store_id=identity.store_id,
            box_id=identity.box_id,
            trust=lambda: self.follower.trust,
            on_cache=self._thread.run,
            request=lambda payload: self._link.publish(
                self._topics[Channel.SNAPSHOT_REQUEST], payload
            ),
            clock=clock,
        )
        host, port, tls = endpoint
        self._link = MqttLink(
            Endpoint(
                host=host,
                port=port,
                tls=tls,
                ca_file=cfg.ca_file,
                username=identity.box_id,
                password=password,
                client_id=identity.box_id,
                protocol=cfg.protocol,
                keepalive_s=cfg.keepalive_s,
            ),
            handler=self,
            subscriptions=box_subscriptions(identity.store_id, identity.box_id),
            prepare=self._prepare_connect,
            reconnect_min_s=cfg.reconnect_min_s,
            reconnect_max_s=cfg.reconnect_max_s,
        )

    @property
    def connected(self) -> bool:
        return self._link.connected

    @property
    def acked_through(self) -> int:
        return 0 if self._window is None else self._window.acked

    async def run(self) -> None:
        """Pump until cancelled; on the way out say ``offline`` and disconnect."""
        acked = await self._thread.run(outbox_access.acked_through)
        self._window = SendWindow(acked=acked, max_in_flight=self._cfg.in_flight_batches)
        loop = asyncio.get_running_loop()
        stop_listening = self._db.on_write(lambda: _hand_over(loop, self._wake))
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._link.run())
                group.create_task(self._send_loop())
                group.create_task(self._health_loop())
                group.create_task(self.follower.run())
                group.create_task(self.fetcher.run())
        finally:
            stop_listening()
            goodbye = self._state_message(presence.BoxState.OFFLINE)
            await asyncio.shield(self._shut_down(goodbye))

    async def _shut_down(self, goodbye: Will) -> None:
        was_connected = self._link.connected
        await self._link.close(goodbye)
        for task in tuple(self._tasks):
            task.cancel()
        if was_connected:
            await self._record_link(connected=False)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.close)

    # -- connecting ---------------------------------------------------------------------------

    async def _prepare_connect(self) -> Will:
        """Before each connect attempt: the next session, and its will."""
        self._session = await self._thread.run(outbox_access.new_session)
        return self._state_message(presence.BoxState.OFFLINE)

    def _state_message(self, state: presence.BoxState) -> Will:
        payload = presence.encode_state(
            presence.State(
                store_id=self._id.store_id,
                box_id=self._id.box_id,
                state=state,
                session=max(1, self._session),
            )
        )
        return Will(topic=self._topics[Channel.STATE], payload=payload)

    def on_connected(self) -> None:
        self.counters.connects += 1
        birth = self._state_message(presence.BoxState.ONLINE)
        self._link.publish(birth.topic, birth.payload, retain=True)
        if self._window is not None:
            self._window.rewind()  # whatever was in flight may be lost: HQ dedupes
        self._background(self._record_link(connected=True))
        self._background(self._publish_health())
        self.follower.on_connected()
        self.fetcher.on_connected()
        result = None if self._config_inbox is None else self._config_inbox.result_payload()
        if result is not None:  # the box's last word on HQ's config, said again (retained)
            self._link.publish(self._topics[Channel.CONFIG_RESULT], result, retain=True)
        self._wake()

    def publish_config_result(self, payload: bytes) -> bool:
        """Publish what came of HQ's last config (retained), and the health that says it;
        False when not connected (``on_connected`` says both then)."""
        if not self._link.publish(self._topics[Channel.CONFIG_RESULT], payload, retain=True):
            return False
        self._background(self._publish_health())
        return True

    def on_disconnected(self, reason: str) -> None:
        self._background(self._record_link(connected=False))
        self._wake()

    async def _record_link(self, *, connected: bool) -> None:
        at = self._clock()
        await self._thread.run(_on_cache(outbox_access.link_changed, connected=connected, at=at))

    def _background(self, step: Coroutine[Any, Any, None]) -> None:
        """Run ``step`` beside the loop's callbacks (paho's callbacks cannot await)."""
        task = asyncio.get_running_loop().create_task(step)
        self._tasks.add(task)  # a task nobody references can be collected mid-run
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("sync: background step failed: %r", task.exception())

    # -- HQ's messages ------------------------------------------------------------------------

    def on_message(self, topic_name: str, payload: bytes) -> None:
        try:
            where = parse_topic(topic_name)
            if (where.store_id, where.box_id) != (self._id.store_id, self._id.box_id):
                raise TopicError(f"{topic_name!r} is not this box's")
            if where.channel is Channel.ACK:
                self._take_ack(acks.decode_ack(payload))
            elif where.channel is Channel.RESEND:
                self._take_resend(acks.decode_resend(payload))
            elif where.channel is Channel.DELTA:
                self.follower.on_delta(payload)
            elif where.channel is Channel.HQ_KEY:
                self.follower.on_hq_key(payload)
            elif where.channel is Channel.SNAPSHOT:
                self.fetcher.on_offer(payload)
            elif where.channel is Channel.SNAPSHOT_CHUNK:
                self.fetcher.on_chunk(payload)
            elif where.channel is Channel.CONFIG and self._config_inbox is not None:
                self._config_inbox.on_config(payload)
            else:
                raise TopicError(f"{where.channel} is not a channel HQ sends on")
        except (TopicError, DecodeError) as exc:
            self.counters.dropped_messages += 1
            reason = getattr(exc, "reason", type(exc).__name__)
            log.warning("sync: dropped a message on %r: %s (%s)", topic_name, exc, reason)

    def _take_ack(self, ack: acks.Ack) -> None:
        if (ack.store_id, ack.box_id) != (self._id.store_id, self._id.box_id):
            raise TopicError(f"an ack for {ack.store_id}/{ack.box_id}")
        assert self._window is not None
        self.counters.acks += 1
        before = self._window.cursor
        moved = self._window.on_ack(ack)
        if self._window.cursor < before:
            self.counters.rewinds += 1
            log.info("sync: HQ misses %s: sending again from %d", ack.missing, before)
        if moved:
            self._ack_to_record = max(self._ack_to_record, ack.stored_through)
            if not self._recording:
                self._background(self._record_acks())
        self._wake()

    async def _record_acks(self) -> None:
        """Delete acknowledged outbox rows, one write at a time and at most one every
        ``ACK_WRITE_EVERY_S`` (a drain brings dozens of acks a second; each write is an fsync
        and holds the write lock the tills' commits need), the latest ack last."""
        self._recording = True
        try:
            while True:
                through, at = self._ack_to_record, self._clock()
                await self._thread.run(_on_cache(outbox_access.acknowledge, through=through, at=at))
                await asyncio.sleep(ACK_WRITE_EVERY_S)
                if self._ack_to_record == through:
                    return
        finally:
            self._recording = False

    def _take_resend(self, request: acks.ResendRequest) -> None:
        if (request.store_id, request.box_id) != (self._id.store_id, self._id.box_id):
            raise TopicError(f"a resend request for {request.store_id}/{request.box_id}")
        self._resends.extend(request.ranges)
        log.info("sync: HQ asks again for %s", request.ranges)
        self._wake()

    # -- sending ------------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        window = self._window
        assert window is not None
        cfg = self._cfg
        while True:
            if not self._link.connected:
                await self._wake.wait(None)
                continue
            now = time.monotonic()
            # Resend only if the broker has spoken since the oldest batch went out: a stalled
            # link (a cut cable) would just queue the same batches again inside paho; the
            # keepalive ends such a link, and the reconnect rewinds anyway.
            if (
                window.in_flight
                and self._link.heard_at > window.in_flight[0].sent_at
                and window.expired(now=now, timeout_s=cfg.ack_timeout_s)
            ):
                self.counters.rewinds += 1
                log.warning("sync: no ack for %.0f s: sending again from %d",
                            cfg.ack_timeout_s, window.cursor)  # fmt: skip
            if self._resends:
                await self._resend(self._resends.popleft())
                continue
            start = window.next_send()
            if start is None:  # full: an ack (or the oldest batch's timeout) frees it
                await self._wake.wait(self._until_ack_due(now))
                continue
            pause = self._bucket.wait_s(cfg.batch_events, now=now)
            if pause > 0:
                await asyncio.sleep(pause)
                continue
            rows = await self._thread.run(
                _on_cache(outbox_access.unsent, from_seq=start, limit=cfg.batch_events)
            )
            if window.cursor != start or not self._link.connected:
                continue  # an ack or a reconnect moved the window while we read
            if not rows:
                # The agent's own commits wake it at once; the poll catches events another
                # process wrote into the file (``edge-agent redeem`` beside a running agent).
                await self._wake.wait(min(IDLE_POLL_S, self._until_ack_due(time.monotonic())))
                continue
            if rows[0][0] != start:  # HQ acknowledged past what we hold: it has them all
                window.cursor = rows[0][0]
                continue
            # Packing, signing and encoding a batch take milliseconds of CPU: on the pump's
            # thread, so the loop can answer a till meanwhile.
            batch, payload = await self._thread.run(functools.partial(self._pack_on, rows))
            if window.cursor != start or not self._link.connected:
                continue
            self._send(batch, payload, now=time.monotonic())

    def _until_ack_due(self, now: float) -> float:
        """How long the sender may sleep before the oldest batch's ack timeout is due; once it
        is overdue (and held back by a silent link), the idle poll's pace."""
        assert self._window is not None
        if not self._window.in_flight:
            return IDLE_POLL_S
        due = self._window.in_flight[0].sent_at + self._cfg.ack_timeout_s - now
        return due if due > 0 else IDLE_POLL_S

    def _send(self, batch: batches.Batch, payload: bytes, *, now: float) -> None:
        assert self._window is not None
        if not self._link.publish(self._topics[Channel.EVENTS], payload):
            return  # no connection: the next connect rewinds and sends it again
        self._window.sent(batch.first_seq, batch.last_seq, now=now)
        self._bucket.take(len(batch.texts), now=now)
        self.counters.batches_sent += 1
        self.counters.events_sent += len(batch.texts)

    def _pack_on(self, rows: Rows, _cache: CodeCache) -> tuple[batches.Batch, bytes]:
        return self._pack(rows)

    def _pack(self, rows: Rows) -> tuple[batches.Batch, bytes]:
        """The longest leading run of ``rows`` that fits one batch, and its signed payload."""
        batch = batches.pack(
            store_id=self._id.store_id,
            box_id=self._id.box_id,
            key_id=self._key_id,
            events=rows,
            max_bytes=self._cfg.batch_bytes,
            max_events=self._cfg.batch_events,
        )
        return batch, batches.encode(sign(batch, self._id.key))

    async def _resend(self, wanted: SeqRange) -> None:
        first = wanted.first
        while first <= wanted.last and self._link.connected:
            rows = await self._thread.run(
                _on_cache(
                    outbox_access.history,
                    first=first,
                    last=wanted.last,
                    limit=self._cfg.batch_events,
                )
            )
            if not rows:
                log.warning("sync: events %d..%d are no longer held", first, wanted.last)
                return
            run = _leading_run(rows)
            batch, payload = self._pack(run)
            self._link.publish(self._topics[Channel.EVENTS], payload)
            self.counters.resent_ranges += 1
            first = batch.last_seq + 1
            if first <= rows[-1][0] and len(run) < len(rows):
                first = rows[len(run)][0]  # skip a hole retention left
            await asyncio.sleep(len(batch.texts) / self._bucket.rate)

    # -- health -------------------------------------------------------------------------------

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self._cfg.health_interval_s)
            if self._link.connected:
                await self._publish_health()

    async def facts(self) -> SyncFacts:
        return await self._thread.run(outbox_access.facts)

    async def _publish_health(self) -> None:
        f = await self.facts()
        health = presence.Health(
            store_id=self._id.store_id,
            box_id=self._id.box_id,
            session=max(1, self._session),
            at=self._clock(),
            agent_version=self._id.agent_version,
            cache_version=f.cache_version,
            printer_state=self._printer_state()[: presence.MAX_TEXT_CHARS],
            outbox_depth=f.outbox_depth,
            oldest_unsent_at=f.oldest_unsent_at,
            next_seq=f.next_seq,
            acked_through=f.acked_through,
            last_ack_at=f.last_ack_at,
            oldest_retained_seq=f.oldest_retained_seq,
            clock_offset_ms=None,  # the link carries no HQ time yet (issue 9's config push)
            config=(
                presence.ConfigHealth()
                if self._config_inbox is None
                else self._config_inbox.config_health()
            ),
            devices_state=_clip(self._devices_state(), presence.MAX_DEVICES_CHARS),
        )
        self._link.publish(
            self._topics[Channel.HEALTH], presence.encode_health(health), retain=True
        )


def _on_cache(fn: Callable[..., T], /, **kwargs: Any) -> Callable[[CodeCache], T]:
    """A job for the pump's thread calling ``fn(cache, **kwargs)``, its arguments bound now."""
    return lambda cache: fn(cache, **kwargs)


def _hand_over(loop: asyncio.AbstractEventLoop, wake: Callable[[], None]) -> None:
    """From the DB thread: wake the sender on the loop (if the loop still runs)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(wake)


def _leading_run(rows: Rows) -> Rows:
    """The rows up to the first hole in their seqs (pack needs a run without gaps)."""
    run = rows[:1]
    for row in rows[1:]:
        if row[0] != run[-1][0] + 1:
            break
        run.append(row)
    return run


def _clip(text: str | None, limit: int) -> str | None:
    """``text`` cut to ``limit`` characters, marked with "..." when it was cut."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 3] + "..."
