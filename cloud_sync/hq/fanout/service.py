"""The fan-out service (``storeside-hq fanout``): positions in, each store's deltas out.

Theory of operation
-------------------
One MQTT client (user ``hq-fanout``), one thread. It subscribes to every box's retained
``position`` (``topics.fanout_subscriptions``), so at every connect the broker hands it the
whole fleet's last word at once, and each box is caught up from there; the session is clean
(a retained message is the state, there is nothing to queue). Then, in one loop:

* every ``interval_s``: a ``producer.step`` (one event store transaction), and each delta it
  made published at QoS 1 to every box of its store HQ knows (the boxes that sent events or a
  position), on the box's own ``delta`` topic;
* each position, as it arrives: recorded (``box_positions``) and answered with HQ's key
  announcements (``key_announcements``: the chain of keys from the box's pin to the one
  that signs now) and the deltas after its watermark (``delta_log.catch_up``), or logged as
  needing a snapshot and, with a ``shelf``, offered one (``snapshot_shelf``), whose chunks
  it sends as the box asks for them (``snapshot_request``, answered on ``snapshot_chunk``).
  A position
  whose box HQ knows under another store is refused and logged: the ACL pins only the box
  level, so a box claiming another store's id must not be sent that store's deltas;
* every hour: deltas older than the retention period pruned (a store's last ``keep`` stay),
  and the issues kept for snapshots that have left their window (``member_issues``).

Nothing is lost to a crash: a delta is committed before it is published, and a box that missed
one (fan-out down between commit and publish, a broker restarted without its queue) sees the
gap at the next delta or says its position at its next connect, and is answered from the log.
paho has no back-pressure (PERFORMANCE.md), so a catch-up is at most ``catch_up_limit`` deltas
per position: the box says its position again when it has applied them.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import ssl
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from cloud_sync.contract import follow_position, snapshot_offer, topics
from cloud_sync.contract.decode_errors import DecodeError
from cloud_sync.contract.follow_position import FollowPosition
from cloud_sync.contract.snapshot_offer import Chunk
from cloud_sync.contract.topics import Channel, TopicError
from cloud_sync.hq.errors import HqError
from cloud_sync.hq.fanout import delta_log, key_announcements, member_issues, producer
from cloud_sync.hq.fanout.delta_log import CatchUp, Published
from cloud_sync.hq.fanout.producer import Journal
from cloud_sync.hq.fanout.snapshot_shelf import SnapshotShelf
from cloud_sync.hq.ingest.errors import StoreUnavailableError
from cloud_sync.hq.ingest.event_store import EventStore, Tx, to_micros
from cloud_sync.hq.ingest.worker import Backoff, BrokerLogin, log_suback

log = logging.getLogger("storeside.hq.fanout")
LOOP_TIMEOUT_S: Final = 0.05
PRUNE_EVERY_S: Final = 3600.0


class FanoutService:
    def __init__(
        self,
        *,
        login: BrokerLogin,
        store: EventStore,
        journal: Journal | None,
        key: Ed25519PrivateKey,
        client_id: str,
        interval_s: float = 0.5,
        catch_up_limit: int = 1000,
        retention: timedelta = timedelta(days=7),
        keep: int = 1000,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
        shelf: SnapshotShelf | None = None,
    ) -> None:
        self.login = login
        self.store = store
        self.journal = journal
        self.key = key
        self.client_id = client_id
        self.interval_s = interval_s
        self.catch_up_limit = catch_up_limit
        self.retention = retention
        self.keep = keep
        self._clock = clock
        self._backoff = Backoff(rng=rng or random.Random())
        self._positions: list[tuple[str, bytes]] = []
        self.shelf = shelf  # None: a box that needs a snapshot is only logged
        self._requests: list[tuple[str, bytes]] = []
        self._offered: dict[str, str] = {}  # box -> the snapshot id last offered to it
        self.offers = 0  # snapshot offers published
        self.chunks = 0  # snapshot chunks sent
        self.subscribed = threading.Event()  # set at each SUBACK: what a test waits for
        self.published = 0  # deltas sent, live and in catch-ups
        self.client = login.client(client_id, persistent=False)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def run(self, stop: threading.Event) -> None:
        """Connect, fan out and reconnect until ``stop`` is set."""
        where = f"{self.login.broker.host}:{self.login.broker.port}"
        next_step = next_prune = 0.0
        while not stop.is_set():
            try:
                self.login.connect(self.client, persistent=False)
            except (OSError, ssl.SSLError) as exc:
                delay = self._backoff.next_delay()
                log.warning("broker %s unreachable (%s); retrying in %.1f s", where, exc, delay)
                stop.wait(delay)
                continue
            while not stop.is_set():
                if self.client.loop(timeout=LOOP_TIMEOUT_S) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
                try:
                    self._answer_positions()
                    self._answer_requests()
                    now = time.monotonic()
                    if now >= next_step:
                        next_step = now + self.interval_s
                        self._fan_out()
                    if now >= next_prune:
                        next_prune = now + PRUNE_EVERY_S
                        self._prune()
                except StoreUnavailableError as exc:
                    delay = self._backoff.next_delay()
                    log.warning("event store unavailable (%s); again in %.1f s", exc, delay)
                    stop.wait(delay)
            if not stop.is_set():
                delay = self._backoff.next_delay()
                log.warning("connection to %s lost; reconnecting in %.1f s", where, delay)
                stop.wait(delay)
        self.client.disconnect()
        log.info("stopped")

    # -- MQTT callbacks (on this thread, inside client.loop) ----------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, code: ReasonCode, _p: Any) -> None:
        if code.is_failure:
            log.warning("broker refused the connection: %s", code)
            return
        self._backoff.reset()
        client.subscribe([(s, 1) for s in topics.fanout_subscriptions()])
        log.info("connected as %s", self.client_id)

    def _on_subscribe(
        self, _c: mqtt.Client, _u: Any, _mid: int, codes: list[ReasonCode], _p: Any
    ) -> None:
        log_suback(log, codes)
        self.subscribed.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        try:
            name = message.topic
        except UnicodeDecodeError:
            log.warning("dropped a message on a topic that is not UTF-8")
            return
        if not message.payload:  # an empty retained message clears a position: no answer
            return
        if name.endswith(f"/{Channel.SNAPSHOT_REQUEST}"):
            self._requests.append((name, bytes(message.payload)))
        else:
            self._positions.append((name, bytes(message.payload)))

    # -- the work ------------------------------------------------------------------------------

    def _fan_out(self) -> None:
        now = self._clock()
        made = self.store.run(
            lambda tx: producer.step(tx, journal=self.journal, key=self.key, now=now)
        )
        if not made:
            return
        stores = sorted({p.store_id for p in made})
        boxes = self.store.run(lambda tx: {s: producer.boxes_of(tx, s) for s in stores})
        for published in made:
            for box in boxes[published.store_id]:
                self._send(box, published)
        log.info("fanned out %d delta(s) to %d store(s)", len(made), len(stores))

    def _answer_positions(self) -> None:
        taken, self._positions = self._positions, []
        for name, payload in taken:
            try:
                where = topics.parse_topic(name)
                position = follow_position.decode(payload)
                if (position.store_id, position.box_id) != (where.store_id, where.box_id):
                    raise TopicError(f"a position of {position.store_id}/{position.box_id}")
                if where.channel is not Channel.POSITION:
                    raise TopicError(f"{where.channel} is not a position")
            except (TopicError, DecodeError) as exc:
                log.warning("dropped a position on %r: %s", name, exc)
                continue
            answer = self._answer(position, self._clock())
            if answer is None:
                continue
            if answer.needs_snapshot is not None:
                log.warning(
                    "box %s of store %s needs a snapshot: %s",
                    position.box_id,
                    position.store_id,
                    answer.needs_snapshot,
                )
                self._offer(position)
            to_box = topics.topic(position.store_id, position.box_id, Channel.HQ_KEY)
            for announcement in self.store.run(key_announcements.documents):
                self.client.publish(to_box, announcement, qos=1)
            for published in answer.documents:
                self._send(position.box_id, published)
            if answer.documents:
                log.info(
                    "box %s: sent deltas %d-%d",
                    position.box_id,
                    answer.documents[0].seq,
                    answer.documents[-1].seq,
                )

    def _offer(self, position: FollowPosition) -> None:
        """Offer the box its store's snapshot (see ``snapshot_shelf``), once per snapshot."""
        if self.shelf is None:
            return
        try:
            shelved = self.shelf.offer(self.store, position.store_id)
        except (HqError, OSError, sqlite3.Error) as exc:  # HQ's db busy with a long mint, a
            # full disk: the box says its position again, and is offered one then
            log.warning("snapshot for store %s not cut: %s", position.store_id, exc)
            return
        if self._offered.get(position.box_id) == shelved.offer.snapshot_id:
            return
        to_box = topics.topic(position.store_id, position.box_id, Channel.SNAPSHOT)
        self.client.publish(to_box, shelved.document, qos=1, retain=True)
        self._offered[position.box_id] = shelved.offer.snapshot_id
        self.offers += 1
        log.info(
            "box %s: offered snapshot %s (%d bytes, at delta %d)",
            position.box_id,
            shelved.offer.snapshot_id,
            shelved.offer.size,
            shelved.offer.seq,
        )

    def _answer_requests(self) -> None:
        taken, self._requests = self._requests, []
        for name, payload in taken:
            try:
                where = topics.parse_topic(name)
                request = snapshot_offer.decode_request(payload)
                if (request.store_id, request.box_id) != (where.store_id, where.box_id):
                    raise TopicError(f"a request of {request.store_id}/{request.box_id}")
            except (TopicError, DecodeError) as exc:
                log.warning("dropped a snapshot request on %r: %s", name, exc)
                continue
            if self.shelf is None or self._store_of(request.box_id) != request.store_id:
                chunk = Chunk(
                    snapshot_id=request.snapshot_id, offset=0, size=0, data=b"", missing=True
                )
            else:
                chunk = self.shelf.chunk(request)
            to_box = topics.topic(where.store_id, where.box_id, Channel.SNAPSHOT_CHUNK)
            self.client.publish(to_box, snapshot_offer.encode_chunk(chunk), qos=1)
            self.chunks += 1

    def _store_of(self, box_id: str) -> str | None:
        """The store HQ knows the box under: its events', else its last position's."""
        rows = self.store.run(
            lambda tx: tx.query(
                "SELECT store_id FROM streams WHERE box_id = ? "
                "UNION ALL SELECT store_id FROM box_positions WHERE box_id = ?",
                (box_id, box_id),
            )
        )
        return str(rows[0][0]) if rows else None

    def _answer(self, position: FollowPosition, at: datetime) -> CatchUp | None:
        return self.store.run(lambda tx: self._catch_up(tx, position, at))

    def _catch_up(self, tx: Tx, position: FollowPosition, at: datetime) -> CatchUp | None:
        known = tx.query("SELECT store_id FROM streams WHERE box_id = ?", (position.box_id,))
        if known and str(known[0][0]) != position.store_id:
            log.warning(
                "box %s says it is of store %s; its events are of store %s: not answered",
                position.box_id,
                position.store_id,
                known[0][0],
            )
            return None
        tx.execute(
            "INSERT INTO box_positions (box_id, store_id, stream, watermark, said_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (box_id) DO UPDATE SET "
            "store_id = excluded.store_id, stream = excluded.stream, "
            "watermark = excluded.watermark, said_at = excluded.said_at",
            (
                position.box_id,
                position.store_id,
                position.stream,
                position.watermark,
                to_micros(at),
            ),
        )
        return delta_log.catch_up(tx, position, limit=self.catch_up_limit)

    def _send(self, box_id: str, published: Published) -> None:
        name = topics.topic(published.store_id, box_id, Channel.DELTA)
        self.client.publish(name, published.document, qos=1)
        self.published += 1

    def _prune(self) -> None:
        now = self._clock()
        before = now - self.retention
        gone = self.store.run(lambda tx: delta_log.prune(tx, before=before, keep=self.keep))
        if gone:
            log.info("pruned %d delta(s) made before %s", gone, before.isoformat())
        issues = self.store.run(lambda tx: member_issues.prune(tx, now=now))
        if issues:
            log.info("pruned %d member issue(s) older than %s", issues, member_issues.WINDOW)
