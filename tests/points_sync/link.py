"""A box's link to HQ, in process, with the faults a real network has: lost, duplicated and
reordered messages both ways.

Up: the box's outbox rows (``outbox_access.unsent``), packed and signed as the pump packs
them (``batches.pack`` + ``batch_signer.sign``), handed to HQ's real ingest core; HQ's ack
goes back to ``outbox_access.acknowledge``, or is lost. Down: HQ's real fan-out step makes
signed deltas; each is delivered to the box's real ``delta_apply.apply``, lost, duplicated or
held back and delivered later; a box that sees a gap asks HQ for what follows its position
(``delta_log.catch_up``), as the follower does. Nothing here decides anything the product
decides: it only moves bytes, and drops, repeats or delays them when told to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.contract import batch as batches
from cloud_sync.contract import delta as deltas
from cloud_sync.contract import hq_document
from cloud_sync.contract.delta import Place
from cloud_sync.contract.follow_position import FollowPosition
from cloud_sync.contract.topics import Channel, topic
from cloud_sync.hq.fanout import delta_log
from cloud_sync.hq.ingest.core import Ingest
from cloud_sync.hq.ingest.event_store import EventStore
from edge_agent.cache.code_cache import CodeCache
from edge_agent.domain.coupon_token import key_id
from edge_agent.follow import delta_apply
from edge_agent.follow.stream_position import position
from edge_agent.sync import outbox_access
from edge_agent.sync.batch_signer import sign


class Fault(StrEnum):
    NONE = "none"
    LOSE = "lose"  # the message never arrives
    DUPLICATE = "duplicate"  # it arrives twice
    DELAY = "delay"  # it arrives after the next one (reordered)
    LOSE_ACK = "lose_ack"  # up only: HQ stores it, the box never hears the ack


def through(fault: Fault, sent: list[bytes], held: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """What arrives now of ``sent`` under ``fault``, after what was held back before, and
    what stays held: a delayed message arrives after the next one."""
    if fault is Fault.DELAY:
        return [], held + sent
    if fault is Fault.LOSE:
        sent = []
    elif fault is Fault.DUPLICATE:
        sent = sent * 2
    return sent + held, []


@dataclass(slots=True)
class Uplink:
    """The box's events to HQ."""

    ingest: Ingest
    key: Ed25519PrivateKey
    store_id: str
    box_id: str
    batch_events: int = 3
    held: list[bytes] = field(default_factory=list)
    acks_heard: int = 0

    def send(self, cache: CodeCache, fault: Fault, now: datetime) -> None:
        """Send the next batch from the first unacknowledged event (what a pump resends
        after a reconnect), and deliver anything held back after it."""
        first = outbox_access.acked_through(cache) + 1
        rows = outbox_access.unsent(cache, from_seq=first, limit=self.batch_events)
        payloads: list[bytes] = []
        if rows:
            batch = batches.pack(
                store_id=self.store_id,
                box_id=self.box_id,
                key_id=key_id(self.key.public_key()),
                events=rows,
            )
            payloads.append(batches.encode(sign(batch, self.key)))
        payloads, self.held = through(fault, payloads, self.held)
        where = topic(self.store_id, self.box_id, Channel.EVENTS)
        for payload in payloads:
            outcome = self.ingest.handle(where, payload, now)
            if outcome.ack is not None and fault is not Fault.LOSE_ACK:
                self.acks_heard += 1
                outbox_access.acknowledge(cache, through=outcome.ack.stored_through, at=now)


@dataclass(slots=True)
class Downlink:
    """HQ's deltas to the box's cache."""

    store: EventStore
    store_id: str
    box_id: str
    held: list[bytes] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def deliver(self, cache: CodeCache, documents: list[bytes], fault: Fault) -> None:
        documents, self.held = through(fault, documents, self.held)
        for document in documents:
            self._apply(cache, document)

    def catch_up(self, cache: CodeCache) -> None:
        """What the follower does on a gap or a reconnect: ask from its position."""
        at = position(cache.conn)
        where = FollowPosition(
            store_id=self.store_id, box_id=self.box_id, stream=at.stream, watermark=at.watermark
        )
        answer = self.store.run(lambda tx: delta_log.catch_up(tx, where, limit=1_000))
        assert answer.needs_snapshot is None, answer.needs_snapshot
        for published in answer.documents:
            self._apply(cache, published.document)

    def _apply(self, cache: CodeCache, document: bytes) -> None:
        delta = deltas.decode(hq_document.decode(document).document.body)
        try:
            applied = delta_apply.apply(cache, delta)
        except delta_apply.DeltaRefusedError as exc:
            self.refused.append(f"{exc.reason}: {exc}")
            return
        if applied.place is Place.GAP:
            self.catch_up(cache)


Publish = Callable[[], list[bytes]]
