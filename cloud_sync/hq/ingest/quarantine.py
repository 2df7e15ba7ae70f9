"""Quarantine: every payload HQ refuses, kept with why, never silently dropped.

Theory of operation
-------------------
A refused payload is a fact to keep, not an error to raise: ingest records it here and goes
on with the next message (and the worker acknowledges it to the broker, since sending it
again would change nothing). Each row holds the topic it came on, the store and box when the
topic named them, a stable ``reason`` and a human ``detail``, and the payload's bytes up to
``MAX_PAYLOAD_BYTES`` (a batch's own bound: every batch HQ could have taken is kept whole,
an oversize one is cut and its full size noted).

Reasons are the contract's own where it has one (``TopicError.reason``,
``MessageError.reason``, ``SignatureFault``), so a quarantine row says what the decoder
said; ingest adds its own (``Refusal``) for what only HQ can see. One row per distinct
(topic, reason, payload): a redelivered or resent bad batch counts up ``times`` and
``last_received_at`` instead of adding a row.

Text from the wire (a topic, a detail quoting a value) may hold what no database column
takes (a lone surrogate, NUL for PostgreSQL): ``storable`` escapes it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from cloud_sync.contract.batch import MAX_BATCH_BYTES
from cloud_sync.hq.ingest.event_store import Tx, to_micros

MAX_PAYLOAD_BYTES: Final = MAX_BATCH_BYTES
MAX_DETAIL_CHARS: Final = 2_000


class Refusal(StrEnum):
    """Reasons only HQ can give (the contract's decoders give the others)."""

    OVERSIZE = "oversize"  # over batch.MAX_BATCH_BYTES: refused before parsing
    TOPIC_MISMATCH = "topic_mismatch"  # the payload's store or box is not the topic's
    UNEXPECTED_CHANNEL = "unexpected_channel"  # a channel HQ sends, arriving at HQ
    OTHER_STORE_STREAM = "other_store_stream"  # a box HQ knows under another store
    UNSTORABLE_EVENT = "unstorable_event"  # a value no column can hold (NUL, out of range)
    CONFLICTING_EVENT = "conflicting_event"  # another text for a seq HQ has stored
    DUPLICATE_EVENT_ID = "duplicate_event_id"  # an event id HQ holds for another event
    CHAIN_BREAK = "chain_break"  # events from the first that does not link on
    PARKED_FULL = "parked_full"  # ahead of a hole, with the box's parking full


@dataclass(frozen=True, slots=True, kw_only=True)
class Quarantined:
    topic: str
    store_id: str | None
    box_id: str | None
    reason: str
    detail: str


def storable(text: str, limit: int | None = None) -> str:
    """``text`` as any column holds it: lone surrogates and NUL escaped, cut to ``limit``."""
    clean = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return clean if limit is None or len(clean) <= limit else clean[: limit - 3] + "..."


_UPSERT: Final = (
    "INSERT INTO quarantine (digest, first_received_at, last_received_at, times, topic, "
    "store_id, box_id, reason, detail, payload, payload_size) "
    "VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (digest) DO UPDATE SET times = quarantine.times + 1, "
    "last_received_at = excluded.last_received_at"
)


def record(tx: Tx, item: Quarantined, payload: bytes, *, at: datetime) -> None:
    """Keep ``payload`` as ``item`` says, or count it again if it is already kept."""
    topic = storable(item.topic)
    digest = hashlib.sha256(
        b"\x00".join((topic.encode(), item.reason.encode(), payload))
    ).hexdigest()
    when = to_micros(at)
    tx.execute(
        _UPSERT,
        (
            digest,
            when,
            when,
            topic,
            None if item.store_id is None else storable(item.store_id),
            None if item.box_id is None else storable(item.box_id),
            item.reason,
            storable(item.detail, MAX_DETAIL_CHARS),
            payload[:MAX_PAYLOAD_BYTES],
            len(payload),
        ),
    )
