"""The event envelope: what a box tells HQ about one state change, defined once for both ends.

The box builds every event through it (``edge_agent/events/event_log.py``) and stores its
encoding in the ``events`` and ``outbox`` tables; HQ decodes what boxes send.

Theory of operation
-------------------
An event is one flat JSON object (schema version 2)::

    schema_version   int        2; a change of shape is a new version, never a quiet extra key
    event_id         str        32 lowercase hex digits in UUIDv7 layout (``event_id``): sorts
                                by time, so it appends at the right edge of any index
    box_id           str        the box that wrote it (non-empty); with ``seq`` the stream key
    seq              int        the box's sequence, from 1, gap-free (allocated in the same
                                transaction as the change, so a rollback returns it)
    type             str        an ``EventType`` value
    occurred_at      str        ISO 8601 in UTC with its offset: 2025-03-01T12:00:00+00:00
    store_id         str        attribution (DOMAIN.md section 3): where (non-empty), ...
    till_id, cashier_id   str                                           ... by whom, and
    transaction_id, member_id, campaign_id, variant, channel   str|null ... for what
    code             str|null   the code concerned, canonical form
    amount           int        minor units: the discount granted (redeemed), given back
                                (reversed), 0 otherwise
    details          object     the type's own facts, JSON values
    prev_hash        str        from version 2: the hash of the previous event of this box
                                (``event_hash``), or ``GENESIS_HASH`` for seq 1

Attribution and the payload sit flat in the object, as boxes wrote them before the envelope
had a version; in Python they are ``Attribution`` and the envelope's own fields.

The hash chain (version 2)
--------------------------
``event_hash(text)`` is the SHA-256, in 64 lowercase hex digits, of the event's encoding as
stored and sent: the UTF-8 bytes of exactly the text in ``events.body``, which is the text a
batch carries (``batch.py``). Never of a re-encoding: an event written before
``schema_version`` existed (below) hashes as the bytes it was written as. Event ``seq = n``
carries ``prev_hash = event_hash(event n-1)`` whatever that event's version, and the event with
``seq = 1`` carries ``GENESIS_HASH`` (64 zeros). So a box's chain starts where its stream
starts, and a box upgraded with version 1 history chains its first version 2 event onto the
hash of its last version 1 event: the one rule needs no marker of where the upgrade happened,
and it pins that last version 1 event's bytes too. ``chain.verify_chain`` checks a stream.

Why version 1 is still read: events already in a box's tables are a write-once record (HQ
compares a resent event's bytes with the ones it stored), so they are sent as written, version
1 without ``prev_hash``: unchained history, proved complete by its gap-free ``seq`` only. A
version 1 event after a version 2 event of the same box is a downgrade, which
``verify_chain`` reports. ``EventEnvelope.schema_version`` follows from ``prev_hash``: 2 with
one, 1 without, so an envelope cannot claim a version its fields contradict.

Encoding (``encode``) sorts keys and uses no whitespace: one canonical text per event, so what a
box stores is byte for byte what it sends and what HQ hashes and compares (an event sent twice
is the same bytes). NaN and infinities are refused: they are not JSON (RFC 8259).

Decoding (``decode``) takes what came off the network. Every way it can be wrong is an
``EnvelopeError`` with a stable ``reason`` (what HQ records beside a quarantined event) and the
``field`` concerned, never another exception. The checks run in this order and the first
failure is reported:

    1. UTF-8 JSON text holding one object, no key twice (two readers of a duplicated key can
       see two different events, one of them hashed and the other stored) .. MalformedEnvelopeError
    2. ``schema_version`` an integer ...................................... WrongTypeError
       that this end reads ................................................ UnknownVersionError
    3. no key the version does not define (version 1: no ``prev_hash``) .. UnknownFieldError
    4. each field, in the table's order: present ......................... MissingFieldError
       and of its JSON type (a bool is not an int) ........................ WrongTypeError
    5. then the values: an id in UUIDv7 layout, a non-empty box, seq >= 1, a known type,
       a time with its offset, a non-empty store, a prev_hash of 64 lowercase hex
       digits ........................................................... BadValueError

HQ is upgraded before the boxes: a version it does not know is quarantined, never guessed at.

Events written before the version field: boxes wrote version 1 without ``schema_version``
until it was added, so a missing ``schema_version`` reads as 1. Only version 1 may omit it;
every later version must say so, so this rule never grows. It is a rule here rather than a
cache migration that adds the field to old rows because the outbox keeps every event until HQ
acknowledges it, and until the link to HQ exists nothing has been acknowledged: a migration
would rewrite every event a box ever wrote, on an SD card, while the agent starts; and it would
change the bytes of events already written, which are a write-once record (HQ compares a
resent event's bytes with the ones it stored).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from cloud_sync.contract import wire_json
from cloud_sync.contract.decode_errors import (
    BadValueError,
    DecodeError,
    MalformedError,
    MissingFieldError,
    UnknownFieldError,
    UnknownVersionError,
    WrongTypeError,
)

SCHEMA_VERSION: Final = 2
READABLE_VERSIONS: Final = frozenset({1, 2})
UNVERSIONED: Final = 1  # what a document without ``schema_version`` is (see the docstring)
UNCHAINED: Final = 1  # the version without ``prev_hash``
GENESIS_HASH: Final = "0" * 64  # the prev_hash of a box's event seq 1


class EventType(StrEnum):
    RESERVED = "code.reserved"
    REDEEMED = "code.redeemed"
    VOIDED = "code.voided"
    REVERSED = "code.reversed"
    LINKED = "code.linked"
    TILL_THROTTLED = "till.throttled"  # fraud flag: brute force from one till
    COUPON_ISSUED = "coupon.issued"  # a receipt coupon minted at checkout
    COUPON_WITHHELD = "coupon.withheld"  # holdout: what the member would have got
    OFFER_TRIGGERED = "offer.triggered"  # a proximity offer: a coupon bound to the member
    OFFER_SUPPRESSED = "offer.suppressed"  # a proximity rule gave none (cap, quiet, holdout...)
    MEMBER_CHECKED_IN = "member.checked_in"  # a member's tap at the entrance reader
    # A points ledger event booked at a till (earn, burn, refund return, burn reversal):
    # details.ledger is ``edge_agent/domain/points/codec.py``'s object, details.lines what
    # each basket line earned or burned (band, campaign), for HQ's reports.
    POINTS_POSTED = "points.posted"


@dataclass(frozen=True, slots=True, kw_only=True)
class Attribution:
    store_id: str
    till_id: str
    cashier_id: str
    transaction_id: str | None = None
    member_id: str | None = None
    campaign_id: str | None = None
    variant: str | None = None
    channel: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventEnvelope:
    event_id: str
    box_id: str
    seq: int
    type: EventType
    occurred_at: datetime
    code: str | None
    attribution: Attribution
    amount: int = 0  # minor units: discount granted (redeemed) or given back (reversed)
    details: dict[str, Any] = field(default_factory=dict)
    # No default: None makes a version 1 event, which only history may be (see the docstring).
    prev_hash: str | None

    @property
    def schema_version(self) -> int:
        """Not a field: it follows from ``prev_hash``, so it cannot contradict the fields."""
        return UNCHAINED if self.prev_hash is None else SCHEMA_VERSION


def event_hash(text: str) -> str:
    """The chain hash of an event: SHA-256 hex of its stored encoding's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def event_id(at: datetime, random_bytes: bytes) -> str:
    """A UUIDv7-layout id as 32 hex digits: 48-bit Unix ms, version 7, variant, 74 random bits."""
    if len(random_bytes) != 10:
        raise ValueError("event_id needs 10 random bytes")
    ms = int(at.timestamp() * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(random_bytes, "big")
    rand_a = (rand >> 68) & 0xFFF  # 12 bits
    rand_b = rand & ((1 << 62) - 1)  # 62 bits
    value = (ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return f"{value:032x}"


# -- encoding --------------------------------------------------------------------------------

_ENCODER = wire_json.CANONICAL


def to_dict(event: EventEnvelope) -> dict[str, Any]:
    """The envelope as the JSON object of the docstring's table."""
    a = event.attribution
    doc: dict[str, Any] = {
        "schema_version": event.schema_version,
        "event_id": event.event_id,
        "box_id": event.box_id,
        "seq": event.seq,
        "type": event.type.value,
        "occurred_at": event.occurred_at.astimezone(UTC).isoformat(),
        "code": event.code,
        "store_id": a.store_id,
        "till_id": a.till_id,
        "cashier_id": a.cashier_id,
        "transaction_id": a.transaction_id,
        "member_id": a.member_id,
        "campaign_id": a.campaign_id,
        "variant": a.variant,
        "channel": a.channel,
        "amount": event.amount,
        "details": event.details,
    }
    if event.prev_hash is not None:
        doc["prev_hash"] = event.prev_hash
    return doc


def encode(event: EventEnvelope) -> str:
    """The canonical JSON text of ``event``: sorted keys, no whitespace."""
    return _ENCODER.encode(to_dict(event))


# -- decoding --------------------------------------------------------------------------------


# The tree is shared with the link's messages (``decode_errors.py``); these names are the ones
# this module's callers and the envelope's documentation use.
EnvelopeError = DecodeError
MalformedEnvelopeError = MalformedError


_STR = "a string"
_OPT_STR = "a string or null"
_INT = "an integer"
_OBJECT = "an object"
# Every field of version 1 with its JSON type, in the order they are checked.
_FIELDS_V1: Final[dict[str, str]] = {
    "schema_version": _INT,
    "event_id": _STR,
    "box_id": _STR,
    "seq": _INT,
    "type": _STR,
    "occurred_at": _STR,
    "code": _OPT_STR,
    "store_id": _STR,
    "till_id": _STR,
    "cashier_id": _STR,
    "transaction_id": _OPT_STR,
    "member_id": _OPT_STR,
    "campaign_id": _OPT_STR,
    "variant": _OPT_STR,
    "channel": _OPT_STR,
    "amount": _INT,
    "details": _OBJECT,
}
# Each readable version's fields (what asyncapi.yaml describes, and a test checks it does).
FIELDS: Final[dict[int, dict[str, str]]] = {
    1: _FIELDS_V1,
    2: {**_FIELDS_V1, "prev_hash": _STR},
}
_HASH = re.compile(r"[0-9a-f]{64}")
_EVENT_ID = re.compile(r"[0-9a-f]{12}7[0-9a-f]{3}[89ab][0-9a-f]{15}")
_EVENT_TYPES: Final = {t.value: t for t in EventType}


def _of_type(value: object, expected: str) -> bool:
    if expected == _INT:
        return type(value) is int  # JSON true/false parse as bool, a subclass of int
    if expected == _OBJECT:
        return isinstance(value, dict)
    return isinstance(value, str) or (expected == _OPT_STR and value is None)


def decode(data: str | bytes) -> EventEnvelope:
    """The envelope in ``data`` (JSON text, or its UTF-8 bytes); ``EnvelopeError`` if none."""
    return from_dict(wire_json.load(data, malformed=MalformedEnvelopeError))


def from_dict(doc: object) -> EventEnvelope:
    """The envelope in a parsed JSON document, checked as the module docstring lists."""
    if not isinstance(doc, dict):
        raise MalformedEnvelopeError("an event is a JSON object")
    version = doc.get("schema_version", UNVERSIONED)
    if type(version) is not int:
        raise WrongTypeError("schema_version", _INT)
    if version not in READABLE_VERSIONS:
        raise UnknownVersionError(version, READABLE_VERSIONS)
    fields = FIELDS[version]
    unknown = sorted(doc.keys() - fields.keys())
    if unknown:
        name = unknown[0]
        raise UnknownFieldError(f"{name} is not a field of version {version}", field=name)
    for name, expected in fields.items():
        if name not in doc:
            if name == "schema_version":
                continue
            raise MissingFieldError(f"{name} is missing", field=name)
        if not _of_type(doc[name], expected):
            raise WrongTypeError(name, expected)
    return EventEnvelope(
        event_id=_checked(doc, "event_id", _EVENT_ID.fullmatch(doc["event_id"]) is not None),
        box_id=_checked(doc, "box_id", doc["box_id"] != ""),
        seq=_checked(doc, "seq", doc["seq"] >= 1),
        type=_event_type(doc["type"]),
        occurred_at=_time(doc["occurred_at"]),
        code=doc["code"],
        attribution=Attribution(
            store_id=_checked(doc, "store_id", doc["store_id"] != ""),
            till_id=doc["till_id"],
            cashier_id=doc["cashier_id"],
            transaction_id=doc["transaction_id"],
            member_id=doc["member_id"],
            campaign_id=doc["campaign_id"],
            variant=doc["variant"],
            channel=doc["channel"],
        ),
        amount=doc["amount"],
        details=doc["details"],
        prev_hash=(
            None
            if version == UNCHAINED
            else _checked(doc, "prev_hash", _HASH.fullmatch(doc["prev_hash"]) is not None)
        ),
    )


def _checked(doc: dict[str, Any], name: str, ok: bool) -> Any:
    if not ok:
        raise BadValueError(f"{name} {doc[name]!r} is not a possible value", field=name)
    return doc[name]


def _event_type(text: str) -> EventType:
    found = _EVENT_TYPES.get(text)
    if found is None:
        raise BadValueError(f"type {text!r} is not an event type of this version", field="type")
    return found


def _time(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
        if at.tzinfo is None:
            raise ValueError("no UTC offset")
        return at.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise BadValueError(f"occurred_at {text!r}: {exc}", field="occurred_at") from None
