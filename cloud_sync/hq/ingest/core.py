"""The ingest core: MQTT messages in, their effect on the event store and the acks out.

Theory of operation
-------------------
``Ingest.handle_many(deliveries)`` does no network I/O: the worker (``worker.py``) feeds it
what the broker delivered and publishes the acks it answers, tests and the bench call it
directly (``handle`` is a group of one). Every payload ends in exactly one of: applied
(stored, duplicate or parked), presence recorded (or ignored as stale), or quarantined with
a typed reason; it raises only ``StoreUnavailableError`` (nothing committed: the worker
leaves the messages unacknowledged) and ``EventStoreFileError``. Each message's checks run
on their own, in this order, cheapest and least trusting first, and touch no database:

    1. the topic parses (``topics.parse_topic``) ............... its TopicError's reason
    2. by channel: ``state`` / ``health`` decode and name the topic's box, and the session
       fits a column; ``ack`` / ``resend`` are HQ's own ........... unexpected_channel
    3. events: at most ``batch.MAX_BATCH_BYTES``, before parsing ............ oversize
    4. the batch decodes, every event checked (``batch.decode``) .. its MessageError's reason
    5. its store and box are the topic's ................................ topic_mismatch
    6. its signature is a registered key's of its store (``batch_verifier.check``; keys
       from ``keyring.py``) ..................... unknown_key, other_store, revoked_key,
                                                  bad_signature
    7. every value fits its column (``stream.unstorable``) ............ unstorable_event

Then the whole group's effects go into ONE transaction (at a store's pace nearly every
message is a batch of its own, and a transaction per message was most of HQ's cost: a
commit and a dozen round trips each), in an order every transaction shares, so that two
workers holding some of the same boxes wait for each other in one direction only:

    8. the accepted batches, under their boxes' locks taken in box id order
       (``stream.ingest_group``), which stores, detects duplicates, conflicts and chain
       breaks, parks, checks redemptions across boxes (the codes' locks), and answers each
       box's ack, from its state after the whole group
    9. presence (``presence_store.py``), sorted by box: order-proof, so sorting is free
   10. the refusals of 1-7 into quarantine (``quarantine.py``)

A group ends exactly as its messages one transaction each, in the same order, would; the
only difference is what is answered: each box's ack is its last, and a double redemption is
told once per group, with the last batch that redeemed the code. Only step 8 answers an
ack: a batch refused before it names a box HQ can trust gets none (the box sends it again,
and it is counted again in quarantine). ``work`` builds every outcome from what it reads,
since the backend may run it again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """One message as the broker delivered it."""

    topic: str
    payload: bytes
    received_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class _Refused:
    channel: Channel | None
    item: Quarantined
    payload: bytes
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class _Presence:
    channel: Channel
    box_id: str
    record: Callable[[Tx], bool]


_Plan = _Refused | stream.Arrival | _Presence


class Ingest:
    """The core over one event store and one keyring (one per worker thread)."""

    def __init__(self, *, store: EventStore, keyring: Keyring) -> None:
        self.store = store
        self.keyring = keyring

    def handle(self, topic: str, payload: bytes, received_at: datetime) -> Outcome:
        """One message in a transaction of its own."""
        delivery = Delivery(topic=topic, payload=payload, received_at=received_at)
        return self.handle_many([delivery])[0]

    def handle_many(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        """Every message's checks, then all their effects in one transaction: an outcome
        per delivery, in order (see the module docstring)."""
        plans = [self._plan(d) for d in deliveries]
        arrivals = [p for p in plans if isinstance(p, stream.Arrival)]
        # Presence is order-proof between boxes (presence_store.py); sorted, so that two
        # workers taking the same boxes' presence rows take them in one order.
        presence = sorted(
            ((i, p) for i, p in enumerate(plans) if isinstance(p, _Presence)),
            key=lambda item: item[1].box_id,
        )

        def work(tx: Tx) -> list[Outcome]:
            applied = iter(stream.ingest_group(tx, arrivals))
            changed = {i: p.record(tx) for i, p in presence}
            outcomes: list[Outcome] = []
            for i, plan in enumerate(plans):
                if isinstance(plan, stream.Arrival):
                    outcomes.append(_applied(next(applied)))
                elif isinstance(plan, _Presence):
                    outcomes.append(Outcome(channel=plan.channel, presence_changed=changed[i]))
                else:
                    quarantine.record(tx, plan.item, plan.payload, at=plan.at)
                    outcomes.append(Outcome(channel=plan.channel, quarantined=(plan.item.reason,)))
            return outcomes

        return self.store.run(work)

    def _plan(self, delivery: Delivery) -> _Plan:
        topic, payload, at = delivery.topic, delivery.payload, delivery.received_at
        try:
            where = parse_topic(topic)
        except TopicError as exc:
            item = Quarantined(
                topic=topic, store_id=None, box_id=None, reason=exc.reason, detail=str(exc)
            )
            return _Refused(channel=None, item=item, payload=payload, at=at)
        if where.channel is Channel.EVENTS:
            return self._events(where, payload, at)
        if where.channel in (Channel.STATE, Channel.HEALTH):
            return self._presence(where, payload, at)
        return _refuse(
            where,
            Refusal.UNEXPECTED_CHANNEL,
            f"{where.channel.value} is HQ's channel to the box",
            payload,
            at,
        )

    def _events(self, where: Topic, payload: bytes, at: datetime) -> _Plan:
        if len(payload) > batches.MAX_BATCH_BYTES:
            why = f"{len(payload)} bytes is over the bound of {batches.MAX_BATCH_BYTES}"
            return _refuse(where, Refusal.OVERSIZE, why, payload, at)
        try:
            received = batches.decode(payload)
        except MessageError as exc:
            return _refuse(where, exc.reason, str(exc), payload, at)
        batch = received.batch
        if (batch.store_id, batch.box_id) != (where.store_id, where.box_id):
            why = f"a batch of store {batch.store_id!r} box {batch.box_id!r}"
            return _refuse(where, Refusal.TOPIC_MISMATCH, why, payload, at)
        fault = batch_verifier.check(received.signed, self.keyring.keys_for(batch.key_id))
        if fault is not None:
            why = f"key {batch.key_id}: {fault.value}"
            return _refuse(where, fault.value, why, payload, at)
        why_not = stream.unstorable(received)
        if why_not is not None:
            return _refuse(where, Refusal.UNSTORABLE_EVENT, why_not, payload, at)
        return stream.Arrival(received=received, payload=payload, received_at=at)

    def _presence(self, where: Topic, payload: bytes, at: datetime) -> _Plan:
        try:
            if where.channel is Channel.STATE:
                state = presence.decode_state(payload)
                ids, session = (state.store_id, state.box_id), state.session
            else:
                health = presence.decode_health(payload)
                ids, session = (health.store_id, health.box_id), health.session
        except MessageError as exc:
            return _refuse(where, exc.reason, str(exc), payload, at)
        if ids != (where.store_id, where.box_id):
            why = f"a {where.channel.value} of store {ids[0]!r} box {ids[1]!r}"
            return _refuse(where, Refusal.TOPIC_MISMATCH, why, payload, at)
        if session > stream.MAX_INT64:
            why = f"session {session} is beyond a 64-bit integer"
            return _refuse(where, Refusal.UNSTORABLE_EVENT, why, payload, at)

        def record(tx: Tx) -> bool:
            if where.channel is Channel.STATE:
                return presence_store.record_state(tx, state, received_at=at)
            # Kept as it came: the decoder has just read it as UTF-8 JSON text, and JSON
            # holds no raw NUL, so any column takes it.
            text = payload.decode("utf-8")
            return presence_store.record_health(tx, health, text, received_at=at)

        return _Presence(channel=where.channel, box_id=where.box_id, record=record)


def _refuse(where: Topic, reason: str, detail: str, payload: bytes, at: datetime) -> _Refused:
    item = Quarantined(
        topic=where.name,
        store_id=where.store_id,
        box_id=where.box_id,
        reason=reason,
        detail=detail,
    )
    return _Refused(channel=where.channel, item=item, payload=payload, at=at)


def _applied(result: stream.StreamResult) -> Outcome:
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
