"""A box's event hash chain: prove that a stream of its events is complete and untampered.

Theory of operation
-------------------
Every version 2 event carries ``prev_hash``, the hash of the previous event of its box
(``event_envelope.event_hash``: SHA-256 hex of that event's stored text), and event ``seq = 1``
carries ``GENESIS_HASH``. The box computes the link inside the transaction that appends the
event (``edge_agent/events/event_log.py``), so the chain is exactly the order of its commits.
HQ keeps, per box, the last link it verified (a ``ChainLink``: seq, hash, whether that event
was chained) and checks each arriving run of events against it with ``verify_chain``; the
result's head is the new link to store. A whole stream is checked from ``ChainLink.start``.

What the chain proves: with the sequence gap-free and each event pinning the bytes of the one
before, no event can be removed, inserted, reordered or altered after the next one was written
without breaking a link that HQ checks, even by someone who can publish as the box (the batch
signature, ``batch.py``, is the other half: it proves who sent it). Rewriting the whole tail of
a stream from some event on is still possible for whoever holds the box's key, which is why HQ
stores each verified link and never accepts a second, different event for a seq it has.

Version 1 events (written before the chain) carry no link: they are unchained history, checked
for their sequence only, and the first version 2 event pins the last of them. A version 1 event
after a version 2 event of the same box is a downgrade and a break: an attacker must not be able
to step out of the chain by writing an old-format event.

``Sealed`` pairs an event with the exact text it was stored and sent as: the chain hashes the
text, never a re-encoding, so a box that wrote a key order or an escaping of another era still
verifies. Build one with ``Sealed.of(text)`` (decodes: what HQ does with what arrives) or
``Sealed.seal(event)`` (encodes: what the box does with what it built).

``verify_chain`` is pure and total over sealed events: it returns a ``ChainVerdict`` naming the
first break (a fact HQ records, not an exception), checked per event in this order:

    OTHER_BOX      the event is of another box than the anchor's
    SEQ_GAP        its seq skips ahead of the previous one + 1: events are missing
    SEQ_NOT_NEXT   its seq repeats or goes back: a duplicate or a reordering
    DOWNGRADE      a version 1 event after a chained one
    HASH_MISMATCH  its prev_hash is not the hash of the previous event (at seq 1: not genesis)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from cloud_sync.contract.event_envelope import (
    GENESIS_HASH,
    EventEnvelope,
    decode,
    encode,
    event_hash,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Sealed:
    """An event with its exact stored text (what is hashed, signed and sent)."""

    text: str
    event: EventEnvelope

    @classmethod
    def of(cls, text: str) -> Sealed:
        """Decode ``text`` (``EnvelopeError`` if it is no event)."""
        return cls(text=text, event=decode(text))

    @classmethod
    def seal(cls, event: EventEnvelope) -> Sealed:
        return cls(text=encode(event), event=event)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainLink:
    """A verified point of a box's chain: where its next event must link on."""

    box_id: str
    seq: int  # the last verified event's seq; 0 before the first event
    hash: str  # that event's event_hash; GENESIS_HASH before the first event
    chained: bool  # that event was version 2, so no version 1 event may follow

    @classmethod
    def start(cls, box_id: str) -> ChainLink:
        """Before a box's first event: event 1 must link to the genesis value."""
        return cls(box_id=box_id, seq=0, hash=GENESIS_HASH, chained=False)

    @classmethod
    def after(cls, sealed: Sealed) -> ChainLink:
        """The link an event leaves for the next one (trusting the event itself)."""
        event = sealed.event
        return cls(
            box_id=event.box_id,
            seq=event.seq,
            hash=event_hash(sealed.text),
            chained=event.prev_hash is not None,
        )


class ChainFault(StrEnum):
    OTHER_BOX = "other_box"
    SEQ_GAP = "seq_gap"
    SEQ_NOT_NEXT = "seq_not_next"
    DOWNGRADE = "downgrade"
    HASH_MISMATCH = "hash_mismatch"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainBreak:
    seq: int  # the seq of the first event that does not follow (as it claims)
    fault: ChainFault
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainVerdict:
    head: ChainLink  # the last event that verified (the anchor when none did)
    broken: ChainBreak | None  # the first break; None when every event followed

    @property
    def ok(self) -> bool:
        return self.broken is None


def verify_chain(events: Iterable[Sealed], *, anchor: ChainLink) -> ChainVerdict:
    """Check ``events`` in order against ``anchor``; stop at and name the first break."""
    head = anchor
    for sealed in events:
        fault = _fault(head, sealed.event)
        if fault is not None:
            kind, detail = fault
            return ChainVerdict(
                head=head, broken=ChainBreak(seq=sealed.event.seq, fault=kind, detail=detail)
            )
        head = ChainLink.after(sealed)
    return ChainVerdict(head=head, broken=None)


def _fault(head: ChainLink, event: EventEnvelope) -> tuple[ChainFault, str] | None:
    if event.box_id != head.box_id:
        return ChainFault.OTHER_BOX, f"event of box {event.box_id!r} in {head.box_id!r}'s chain"
    expected = head.seq + 1
    if event.seq > expected:
        return ChainFault.SEQ_GAP, f"seq {event.seq} after {head.seq}: {expected} is missing"
    if event.seq < expected:
        return ChainFault.SEQ_NOT_NEXT, f"seq {event.seq} after {head.seq}: not the next"
    if event.prev_hash is None:
        if head.chained:
            return ChainFault.DOWNGRADE, f"version 1 event after chained event {head.seq}"
        return None  # unchained history: its sequence is all there is to check
    if event.prev_hash != head.hash:
        what = "the genesis value" if head.seq == 0 else f"the hash of event {head.seq}"
        return ChainFault.HASH_MISMATCH, f"prev_hash {event.prev_hash} is not {what}"
    return None
