"""Signed batches for HQ's ingest tests, built as a box builds them: a chained stream of
events (``tests/contract/streams.py``) packed with ``batch.pack`` and signed with a store key
the test makes (``edge_agent/sync/batch_signer.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.contract import batch as batches
from cloud_sync.contract import event_envelope as envelope
from cloud_sync.contract import topics
from cloud_sync.contract.chain import Sealed
from cloud_sync.contract.event_envelope import EventEnvelope
from cloud_sync.contract.topics import Channel
from cloud_sync.hq.central_store import CentralStore
from cloud_sync.hq.store_keys import register
from edge_agent.domain import token_codec
from edge_agent.domain.coupon_token import key_id, raw_public_key
from edge_agent.sync.batch_signer import sign
from tests.contract.streams import stream
from tests.hq.conftest import FMT
from tests.sync.test_batch_signing import REGISTERED

STORE = "store-001"
BOX_A = "box-a"
BOX_B = "box-b"
KEY = Ed25519PrivateKey.generate()  # store-001's key, signing for both its boxes
OTHER_KEY = Ed25519PrivateKey.generate()  # store-002's
AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def events_topic(box: str = BOX_A, store: str = STORE) -> str:
    return topics.topic(store, box, Channel.EVENTS)


def box_stream(count: int, *, box: str = BOX_A, store: str = STORE, pad: int = 0) -> list[Sealed]:
    return stream(count, box=box, store=store, pad=pad)


def payload(
    events: Sequence[Sealed],
    *,
    key: Ed25519PrivateKey = KEY,
    store: str = STORE,
    box: str | None = None,
) -> bytes:
    """One signed batch of exactly ``events`` (a run of one box's stream)."""
    batch = batches.pack(
        store_id=store,
        box_id=box or events[0].event.box_id,
        key_id=key_id(key.public_key()),
        events=[(s.event.seq, s.text) for s in events],
    )
    assert batch.last_seq == events[-1].event.seq, "the run must fit one batch"
    return batches.encode(sign(batch, key))


def payloads(events: Sequence[Sealed], per_batch: int, **kw: object) -> list[bytes]:
    return [
        payload(events[i : i + per_batch], **kw)  # type: ignore[arg-type]
        for i in range(0, len(events), per_batch)
    ]


def rechain(events: Sequence[EventEnvelope]) -> list[Sealed]:
    """``events`` sealed with each one's prev_hash pointing at the one before (as a box that
    rewrote its history would chain them)."""
    sealed: list[Sealed] = []
    prev = envelope.GENESIS_HASH
    for event in events:
        s = Sealed.seal(replace(event, prev_hash=prev))
        sealed.append(s)
        prev = envelope.event_hash(s.text)
    return sealed


def central_trusting(path: Path, key: Ed25519PrivateKey) -> Path:
    """HQ's central store at ``path`` with ``key`` registered for store-001, as
    `storeside-hq keys register` leaves it."""
    with CentralStore.create(path, fmt=FMT) as central:
        text = token_codec.public_key_text(raw_public_key(key.public_key()))
        register(central, "store-001", text, now=REGISTERED)
    return path
