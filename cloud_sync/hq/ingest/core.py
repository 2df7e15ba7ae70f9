"""The ingest core: one MQTT message in, its effect on the event store and the ack out.

Theory of operation
-------------------
``Ingest.handle(topic, payload, received_at)`` does no network I/O: the worker
(``worker.py``) feeds it what the broker delivered and publishes the ack it answers, tests
and the bench call it directly. Every payload ends in exactly one of: applied (stored,
duplicate or parked), presence recorded (or ignored as stale), or quarantined with a typed
reason; it raises only ``StoreUnavailableError`` (nothing committed: the worker leaves the
message unacknowledged) and ``EventStoreFileError``. The checks run in this order, cheapest
and least trusting first:

    1. the topic parses (``topics.parse_topic``) ............... its TopicError's reason
    2. by channel: ``state`` / ``health`` decode and name the topic's box, then presence
       (``presence_store.py``); ``ack`` / ``resend`` are HQ's own ... unexpected_channel
    3. events: at most ``batch.MAX_BATCH_BYTES``, before parsing ............ oversize
    4. the batch decodes, every event checked (``batch.decode``) .. its MessageError's reason
    5. its store and box are the topic's ................................ topic_mismatch
    6. its signature is a registered key's of its store (``batch_verifier.check``; keys
       from ``keyring.py``) ..................... unknown_key, other_store, revoked_key,
                                                  bad_signature
    7. every value fits its column (``stream.unstorable``) ............ unstorable_event
    8. in one transaction under the box's lock: the stream (``stream.py``), which stores,
       detects duplicates, conflicts and chain breaks, parks, and answers the ack.

Only step 8 answers an ack: a batch refused before it names a box HQ can trust gets none
(the box sends it again, and it is counted again in quarantine).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cloud_sync.contract import batch as batches
from cloud_sync.contract import presence
from cloud_sync.contract.ack import Ack
from cloud_sync.contract.message_codec import MessageError
from cloud_sync.contract.topics import Channel, Topic, TopicError, parse_topic
from cloud_sync.hq import batch_verifier
from cloud_sync.hq.ingest import presence_store, quarantine, stream
from cloud_sync.hq.ingest.event_store import EventStore, Tx
from cloud_sync.hq.ingest.keyring import Keyring
from cloud_sync.hq.ingest.quarantine import Quarantined, Refusal


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What one message did. ``ack`` is what to publish to the box (events only)."""

    channel: Channel | None  # None: the topic did not parse
    ack: Ack | None = None
    stored: int = 0
    duplicates: int = 0
    parked: bool = False
    conflicts: int = 0
    quarantined: tuple[str, ...] = ()  # reasons, in the order they were recorded
    presence_changed: bool = False


class Ingest:
    """The core over one event store and one keyring (one per worker thread)."""

    def __init__(self, *, store: EventStore, keyring: Keyring) -> None:
        self.store = store
        self.keyring = keyring

    def handle(self, topic: str, payload: bytes, received_at: datetime) -> Outcome:
        try:
            where = parse_topic(topic)
        except TopicError as exc:
            item = Quarantined(
                topic=topic, store_id=None, box_id=None, reason=exc.reason, detail=str(exc)
            )
            return self._quarantine(None, item, payload, received_at)
        if where.channel is Channel.EVENTS:
            return self._events(where, payload, received_at)
        if where.channel in (Channel.STATE, Channel.HEALTH):
            return self._presence(where, payload, received_at)
        return self._refuse(
            where,
            Refusal.UNEXPECTED_CHANNEL,
            f"{where.channel.value} is HQ's channel to the box",
            payload,
            received_at,
        )

    def _events(self, where: Topic, payload: bytes, at: datetime) -> Outcome:
        if len(payload) > batches.MAX_BATCH_BYTES:
            why = f"{len(payload)} bytes is over the bound of {batches.MAX_BATCH_BYTES}"
            return self._refuse(where, Refusal.OVERSIZE, why, payload, at)
        try:
            received = batches.decode(payload)
        except MessageError as exc:
            return self._refuse(where, exc.reason, str(exc), payload, at)
        batch = received.batch
        if (batch.store_id, batch.box_id) != (where.store_id, where.box_id):
            why = f"a batch of store {batch.store_id!r} box {batch.box_id!r}"
            return self._refuse(where, Refusal.TOPIC_MISMATCH, why, payload, at)
        fault = batch_verifier.check(received.signed, self.keyring.keys_for(batch.key_id))
        if fault is not None:
            why = f"key {batch.key_id}: {fault.value}"
            return self._refuse(where, fault.value, why, payload, at)
        why_not = stream.unstorable(received)
        if why_not is not None:
            return self._refuse(where, Refusal.UNSTORABLE_EVENT, why_not, payload, at)
        result = self.store.run(
            lambda tx: stream.ingest_batch(tx, received, payload=payload, received_at=at)
        )
        t = result.tally
        return Outcome(
            channel=Channel.EVENTS,
            ack=result.ack,
            stored=t.stored,
            duplicates=t.duplicates,
            parked=t.parked,
            conflicts=t.conflicts,
            quarantined=tuple(t.quarantined),
        )

    def _presence(self, where: Topic, payload: bytes, at: datetime) -> Outcome:
        try:
            if where.channel is Channel.STATE:
                state = presence.decode_state(payload)
                ids, session = (state.store_id, state.box_id), state.session
            else:
                health = presence.decode_health(payload)
                ids, session = (health.store_id, health.box_id), health.session
        except MessageError as exc:
            return self._refuse(where, exc.reason, str(exc), payload, at)
        if ids != (where.store_id, where.box_id):
            why = f"a {where.channel.value} of store {ids[0]!r} box {ids[1]!r}"
            return self._refuse(where, Refusal.TOPIC_MISMATCH, why, payload, at)
        if session > stream.MAX_INT64:
            why = f"session {session} is beyond a 64-bit integer"
            return self._refuse(where, Refusal.UNSTORABLE_EVENT, why, payload, at)

        def record(tx: Tx) -> bool:
            if where.channel is Channel.STATE:
                return presence_store.record_state(tx, state, received_at=at)
            # Kept as it came: the decoder has just read it as UTF-8 JSON text, and JSON
            # holds no raw NUL, so any column takes it.
            text = payload.decode("utf-8")
            return presence_store.record_health(tx, health, text, received_at=at)

        changed = self.store.run(record)
        return Outcome(channel=where.channel, presence_changed=changed)

    def _refuse(
        self, where: Topic, reason: str, detail: str, payload: bytes, at: datetime
    ) -> Outcome:
        item = Quarantined(
            topic=where.name,
            store_id=where.store_id,
            box_id=where.box_id,
            reason=reason,
            detail=detail,
        )
        return self._quarantine(where.channel, item, payload, at)

    def _quarantine(
        self, channel: Channel | None, item: Quarantined, payload: bytes, at: datetime
    ) -> Outcome:
        self.store.run(lambda tx: quarantine.record(tx, item, payload, at=at))
        return Outcome(channel=channel, quarantined=(item.reason,))
