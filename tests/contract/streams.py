"""Streams of one box's events for the contract's tests: chained as the box chains them."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from cloud_sync.contract import event_envelope as envelope
from cloud_sync.contract.chain import Sealed
from cloud_sync.contract.event_envelope import Attribution, EventEnvelope, EventType
from tests.cache.factories import NOW

STORE = "store-001"
BOX = "box-001"


def event(seq: int, *, prev_hash: str | None, box: str = BOX, store: str = STORE) -> EventEnvelope:
    at = NOW + timedelta(seconds=seq)
    return EventEnvelope(
        event_id=envelope.event_id(at, seq.to_bytes(10, "big")),
        box_id=box,
        seq=seq,
        type=EventType.REDEEMED,
        occurred_at=at,
        code="SSK7HQ2P9XM",
        attribution=Attribution(store_id=store, till_id="till-1", cashier_id="c-1"),
        amount=100 + seq,
        details={"lines": [["milk", 100 + seq]], "note": "é"},
        prev_hash=prev_hash,
    )


def stream(
    count: int, *, unchained: int = 0, box: str = BOX, store: str = STORE, pad: int = 0
) -> list[Sealed]:
    """Events 1..count of a box: the first ``unchained`` as version 1 history, the rest chained
    as ``event_log.append`` chains them; ``pad`` characters of details make them bigger."""
    sealed: list[Sealed] = []
    prev = envelope.GENESIS_HASH
    for seq in range(1, count + 1):
        e = event(seq, prev_hash=None if seq <= unchained else prev, box=box, store=store)
        if pad:
            e = replace(e, details={**e.details, "pad": "x" * pad})
        s = Sealed.seal(e)
        sealed.append(s)
        prev = envelope.event_hash(s.text)
    return sealed


def rows(sealed: list[Sealed]) -> list[tuple[int, str]]:
    """``sealed`` as the box's outbox rows: ``(seq, stored text)``, what ``batch.pack`` takes."""
    return [(s.event.seq, s.text) for s in sealed]
