"""HQ's answers to a box: the ack (``.../{box}/ack``) and the resend request (``.../resend``).

Theory of operation
-------------------
The box's outbox keeps an event until HQ says it has durably stored it: not the broker's
PUBACK (which says only that the broker has the message), but an ``Ack`` that HQ publishes
after its database commit. An ack names ``stored_through``, the highest seq up to which HQ holds
every event of the box, so acks are cumulative and idempotent: a lost ack is made good by the
next, a repeated or reordered one changes nothing (the box deletes outbox rows up to the
highest it has seen, never un-deletes), and ``stored_through`` never needs to go back.

When HQ holds events beyond a hole (a batch lost or quarantined while later ones arrived), the
ack also lists the ``missing`` ranges above ``stored_through``, so the box sends those first
instead of everything after ``stored_through`` again. Anything above the last range HQ has
simply not seen yet.

A ``ResendRequest`` asks for ranges the box may already have had acknowledged: HQ lost them
(restored from a backup) or wants to re-verify a chain. The box answers from its retained
history (the ``events`` table, kept for the retention period after the ack) with ordinary
batches on its events topic; what it no longer holds it cannot send, and its health message
says from which seq it still holds events (``presence.Health.oldest_retained_seq``).

Both are flat JSON objects, schema version 1, decoded with ``message_codec``'s checks::

    Ack            store_id, box_id, stored_through (int >= 0), missing ([[first, last], ...])
    ResendRequest  store_id, box_id, ranges ([[first, last], ...], at least one)

A range is two integers ``first <= last``, both >= 1; a list of ranges is in ascending order
with a gap between neighbours (one canonical form for a set of seqs), at most ``MAX_RANGES``
long; an ack's ranges lie above its ``stored_through``. Each fault is a ``BadValueError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from cloud_sync.contract import message_codec
from cloud_sync.contract.message_codec import Kind, require
from cloud_sync.contract.topics import level_fault

SCHEMA_VERSION: Final = 1
MAX_RANGES: Final = 100
MAX_ACK_BYTES: Final = 8 * 1024  # 100 ranges of two 19-digit seqs fit with room to spare

_IDS: Final = {"schema_version": Kind.INT, "store_id": Kind.STR, "box_id": Kind.STR}
ACK_FIELDS: Final = {
    SCHEMA_VERSION: {**_IDS, "stored_through": Kind.INT, "missing": Kind.LIST},
}
RESEND_FIELDS: Final = {SCHEMA_VERSION: {**_IDS, "ranges": Kind.LIST}}


@dataclass(frozen=True, slots=True, kw_only=True)
class SeqRange:
    first: int
    last: int  # inclusive


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack:
    store_id: str
    box_id: str
    stored_through: int  # every event 1..stored_through is durably at HQ; 0: none yet
    missing: tuple[SeqRange, ...] = ()  # holes above stored_through HQ knows of


@dataclass(frozen=True, slots=True, kw_only=True)
class ResendRequest:
    store_id: str
    box_id: str
    ranges: tuple[SeqRange, ...]


def _ranges_doc(ranges: tuple[SeqRange, ...]) -> list[list[int]]:
    return [[r.first, r.last] for r in ranges]


def encode_ack(ack: Ack) -> bytes:
    return message_codec.canonical(
        {
            "schema_version": SCHEMA_VERSION,
            "store_id": ack.store_id,
            "box_id": ack.box_id,
            "stored_through": ack.stored_through,
            "missing": _ranges_doc(ack.missing),
        }
    ).encode("ascii")


def encode_resend(request: ResendRequest) -> bytes:
    return message_codec.canonical(
        {
            "schema_version": SCHEMA_VERSION,
            "store_id": request.store_id,
            "box_id": request.box_id,
            "ranges": _ranges_doc(request.ranges),
        }
    ).encode("ascii")


def decode_ack(data: str | bytes) -> Ack:
    """The ack in ``data``; a ``MessageError`` naming the first fault if there is none."""
    _, doc = message_codec.read(data, max_bytes=MAX_ACK_BYTES, fields=ACK_FIELDS)
    store_id, box_id = _ids(doc)
    through = doc["stored_through"]
    require(through >= 0, "stored_through", through, "a seq is >= 0")
    missing = _ranges(doc, "missing", above=through)
    return Ack(store_id=store_id, box_id=box_id, stored_through=through, missing=missing)


def decode_resend(data: str | bytes) -> ResendRequest:
    """The resend request in ``data``; a ``MessageError`` naming the first fault if none."""
    _, doc = message_codec.read(data, max_bytes=MAX_ACK_BYTES, fields=RESEND_FIELDS)
    store_id, box_id = _ids(doc)
    ranges = _ranges(doc, "ranges", above=0)
    require(bool(ranges), "ranges", ranges, "a request names at least one range")
    return ResendRequest(store_id=store_id, box_id=box_id, ranges=ranges)


def _ids(doc: dict[str, Any]) -> tuple[str, str]:
    for name in ("store_id", "box_id"):
        fault = level_fault(doc[name])
        require(fault is None, name, doc[name], f"not a topic level ({fault})")
    return doc["store_id"], doc["box_id"]


def _ranges(doc: dict[str, Any], name: str, *, above: int) -> tuple[SeqRange, ...]:
    items = doc[name]
    require(len(items) <= MAX_RANGES, name, len(items), f"more than {MAX_RANGES} ranges")
    ranges = []
    floor = above  # each range starts after the previous one's end + 1 (a gap between)
    for item in items:
        ok = (
            isinstance(item, list)
            and len(item) == 2
            and all(type(v) is int for v in item)
            and floor < item[0] <= item[1]
        )
        require(ok, name, item, f"not a range [first, last] above {floor}, in order")
        ranges.append(SeqRange(first=item[0], last=item[1]))
        floor = item[1] + 1
    return tuple(ranges)
