"""A code cache delta: one step of a store's ordered stream of changes from HQ.

Theory of operation
-------------------
A box's cache follows HQ as a snapshot (``snapshot_format.py``) and then the store's delta
stream: every change HQ makes to what the store's boxes hold, in order, numbered without a gap.
Each delta travels as the body of an HQ-signed document (``hq_document.py``, kind "delta");
this module is the body. A flat JSON object, schema version 1::

    schema_version  int     1
    store_id        str     the store whose stream this is (a topic level)
    stream          str     the stream's id, 32 lowercase hex: HQ starts a new one (and the
                            boxes resync from a snapshot naming it) when it cannot continue
                            the old, e.g. restored from a backup
    seq             int     >= 1: this delta's place in the stream; the box applies seq n only
                            on top of n - 1 (its watermark)
    issued_at       str     ISO 8601 with offset: when HQ made it
    changes         [obj]   1 to ``MAX_CHANGES`` changes, applied in order in one transaction

So a box holding watermark w of stream s, given delta (s, n): n <= w is a duplicate (a no-op),
n == w + 1 applies, n > w + 1 is a gap (the box asks HQ to resend from w + 1 and applies
nothing beyond the gap meanwhile); another stream than s means the box's snapshot is of a past
stream, so it resyncs from a snapshot. ``place`` says which, purely.

A change is an object whose ``op`` names its kind and fixes its other fields, closed like
every message of the link (an unknown field, a missing one, a wrong type is a typed error
naming ``changes[i].field``)::

    code.issued               code, campaign_id, member_id?, channel, variant, issued_at?,
                              expires_at?               a new code (or one re-sent whole)
    code.revoked              code, at                  HQ withdrew it
    code.linked               code, member_id, at       linked to a member at HQ (offered at
                                                        the member's next checkout)
    code.redeemed_elsewhere   code, store_id, box_id, till_id?, transaction_id?, at, uses
                                                        redeemed by another box: where and
                                                        when it last was, and its uses at
                                                        that box in all (a box ignores the
                                                        ones naming itself)
    member.changed            member_id, segment, tier, proximity_consent (bool)
    member.issued_elsewhere   member_id, store_id, box_id, till_id, transaction_id, at
                                                        a receipt coupon issued (or held
                                                        out) to the member at a checkout of
                                                        that box, at that time: what the
                                                        frequency cap and velocity limit
                                                        count (a box ignores the ones naming
                                                        itself); one fact per sale (till and
                                                        transaction id), never changed
    member.identities         member_id, card_salt, body
                                                        the member's whole set of presence
                                                        identities (rotating-id keys, beacon
                                                        tags, card UID digests), replacing
                                                        what the box held: the body is
                                                        ``member_identities`` JSON text, empty
                                                        for a member without proximity
                                                        consent; card_salt the programme's
                                                        (32 hex)
    campaign.changed          campaign_id, body         the campaign's rules (promotion_codec
                                                        JSON text, as snapshot rows hold it)
    campaign.used_elsewhere   campaign_id, store_id, box_id, redemptions, discount
                                                        what one box used of the campaign's
                                                        budget so far, in all (not a step):
                                                        a box sums every other box's, and
                                                        its store's for the store allocation
    member.points             member_id, programme, balance, marks
                                                        the member's regular points balance
                                                        in the programme as HQ's ledger holds
                                                        it (may be negative), and ``marks``:
                                                        ``points_balance`` JSON text naming,
                                                        per box, the last of its events that
                                                        balance includes; a box adds its own
                                                        later postings to know what the
                                                        member may spend offline
    store_key.registered      key_id, store_id, public_key, registered_at
    store_key.revoked         key_id, revoked_at

Fields marked ``?`` may be null. Times are ISO 8601 with an offset, read as UTC. Counts are
integers >= 0 (a refund can bring a box's ``uses`` back to 0). Every change says the whole
new state of what it touches (totals, not increments; an issue is a fact keyed by its sale), so
applying a delta twice, or a change the box already made itself (its own redemption or issue,
seen again from HQ), leaves the same cache.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any, Final

from cloud_sync.contract import member_identities, message_codec
from cloud_sync.contract.decode_errors import (
    BadValueError,
    MissingFieldError,
    UnknownFieldError,
    WrongTypeError,
)
from cloud_sync.contract.message_codec import Kind, is_text, require, utc_time
from cloud_sync.contract.topics import level_fault

SCHEMA_VERSION: Final = 1
MAX_CHANGES: Final = 2000
MAX_DELTA_BYTES: Final = 960 * 1024  # inside hq_document's 1 MiB with the envelope around it
FIELDS: Final = {
    SCHEMA_VERSION: {
        "schema_version": Kind.INT,
        "store_id": Kind.STR,
        "stream": Kind.STR,
        "seq": Kind.INT,
        "issued_at": Kind.STR,
        "changes": Kind.LIST,
    }
}
_STREAM = re.compile(r"[0-9a-f]{32}")
_KEY_ID = re.compile(r"[0-9a-f]{8}")


class Op(StrEnum):
    CODE_ISSUED = "code.issued"
    CODE_REVOKED = "code.revoked"
    CODE_LINKED = "code.linked"
    CODE_REDEEMED_ELSEWHERE = "code.redeemed_elsewhere"
    MEMBER_CHANGED = "member.changed"
    MEMBER_ISSUED_ELSEWHERE = "member.issued_elsewhere"
    MEMBER_IDENTITIES = "member.identities"
    MEMBER_POINTS = "member.points"
    CAMPAIGN_CHANGED = "campaign.changed"
    CAMPAIGN_USED_ELSEWHERE = "campaign.used_elsewhere"
    STORE_KEY_REGISTERED = "store_key.registered"
    STORE_KEY_REVOKED = "store_key.revoked"


class _T(Enum):
    """A change field's type: what its value must be, as errors name it."""

    STR = "a string"
    OPT_STR = "a string or null"
    INT = "an integer"
    SIGNED = "a signed integer"
    BOOL = "true or false"
    TIME = "an ISO 8601 time with offset"
    OPT_TIME = "an ISO 8601 time with offset, or null"


CHANGE_FIELDS: Final[Mapping[Op, Mapping[str, _T]]] = {
    Op.CODE_ISSUED: {
        "code": _T.STR,
        "campaign_id": _T.STR,
        "member_id": _T.OPT_STR,
        "channel": _T.STR,
        "variant": _T.STR,
        "issued_at": _T.OPT_TIME,
        "expires_at": _T.OPT_TIME,
    },
    Op.CODE_REVOKED: {"code": _T.STR, "at": _T.TIME},
    Op.CODE_LINKED: {"code": _T.STR, "member_id": _T.STR, "at": _T.TIME},
    Op.CODE_REDEEMED_ELSEWHERE: {
        "code": _T.STR,
        "store_id": _T.STR,
        "box_id": _T.STR,
        "till_id": _T.OPT_STR,
        "transaction_id": _T.OPT_STR,
        "at": _T.TIME,
        "uses": _T.INT,
    },
    Op.MEMBER_CHANGED: {
        "member_id": _T.STR,
        "segment": _T.STR,
        "tier": _T.STR,
        "proximity_consent": _T.BOOL,
    },
    # No campaign, no withheld flag: the caps count every issue of the receipt programme,
    # held-out ones alike, so the member, the time and the sale's key are all a box needs.
    Op.MEMBER_ISSUED_ELSEWHERE: {
        "member_id": _T.STR,
        "store_id": _T.STR,
        "box_id": _T.STR,
        "till_id": _T.STR,
        "transaction_id": _T.STR,
        "at": _T.TIME,
    },
    # The body is decoded by the box (``member_identities.decode_body``), as campaign bodies
    # are, so a set it cannot take refuses that one delta with a reason, not the stream.
    Op.MEMBER_IDENTITIES: {"member_id": _T.STR, "card_salt": _T.STR, "body": _T.STR},
    # Marks are decoded by the box (``points_balance.decode_marks``), like identities' body.
    Op.MEMBER_POINTS: {
        "member_id": _T.STR,
        "programme": _T.STR,
        "balance": _T.SIGNED,
        "marks": _T.STR,
    },
    Op.CAMPAIGN_CHANGED: {"campaign_id": _T.STR, "body": _T.STR},
    Op.CAMPAIGN_USED_ELSEWHERE: {
        "campaign_id": _T.STR,
        "store_id": _T.STR,
        "box_id": _T.STR,
        "redemptions": _T.INT,
        "discount": _T.INT,
    },
    Op.STORE_KEY_REGISTERED: {
        "key_id": _T.STR,
        "store_id": _T.STR,
        "public_key": _T.STR,
        "registered_at": _T.TIME,
    },
    Op.STORE_KEY_REVOKED: {"key_id": _T.STR, "revoked_at": _T.TIME},
}
_OPS: Final = {op.value: op for op in Op}
# The changes that tell what another box did: they name a store and a box, each a topic level.
ELSEWHERE_OPS: Final = frozenset(
    {Op.CODE_REDEEMED_ELSEWHERE, Op.CAMPAIGN_USED_ELSEWHERE, Op.MEMBER_ISSUED_ELSEWHERE}
)
MAX_INT64: Final = 2**63 - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One change: its op and its fields, typed (times as aware UTC datetimes)."""

    op: Op
    fields: Mapping[str, Any]

    def __getitem__(self, name: str) -> Any:
        return self.fields[name]


@dataclass(frozen=True, slots=True, kw_only=True)
class Delta:
    store_id: str
    stream: str
    seq: int
    issued_at: datetime
    changes: tuple[Change, ...]


class Place(StrEnum):
    """Where a delta falls against what a box has applied (``place``)."""

    NEXT = "next"  # apply it
    DUPLICATE = "duplicate"  # applied already: a no-op
    GAP = "gap"  # deltas are missing before it: ask for them from the watermark + 1
    OTHER_STREAM = "other_stream"  # the box's snapshot is of another stream: resync


def place(delta: Delta, *, stream: str, watermark: int) -> Place:
    """Where ``delta`` falls for a box on ``stream`` that has applied through ``watermark``."""
    if delta.stream != stream:
        return Place.OTHER_STREAM
    if delta.seq <= watermark:
        return Place.DUPLICATE
    if delta.seq == watermark + 1:
        return Place.NEXT
    return Place.GAP


def encode(delta: Delta) -> str:
    """The delta's canonical text: the body HQ signs (``hq_document.Document.body``)."""
    text = message_codec.canonical(
        {
            "schema_version": SCHEMA_VERSION,
            "store_id": delta.store_id,
            "stream": delta.stream,
            "seq": delta.seq,
            "issued_at": delta.issued_at.isoformat(),
            "changes": [_change_doc(c) for c in delta.changes],
        }
    )
    if len(text) > MAX_DELTA_BYTES:
        raise ValueError(f"{len(text)} bytes is over the bound of {MAX_DELTA_BYTES}")
    return text


def _change_doc(change: Change) -> dict[str, object]:
    table = CHANGE_FIELDS[change.op]
    if change.fields.keys() != table.keys():
        raise ValueError(f"{change.op.value} has fields {sorted(table)}")
    doc: dict[str, object] = {"op": change.op.value}
    for name, kind in table.items():
        value = change.fields[name]
        is_time = kind in (_T.TIME, _T.OPT_TIME)
        doc[name] = value.isoformat() if is_time and value is not None else value
    return doc


def decode(data: str | bytes) -> Delta:
    """The delta in ``data`` (a verified document's body); a ``MessageError`` naming the
    first fault if there is none."""
    _, doc = message_codec.read(data, max_bytes=MAX_DELTA_BYTES, fields=FIELDS)
    fault = level_fault(doc["store_id"])
    require(fault is None, "store_id", doc["store_id"], f"not a topic level ({fault})")
    require(_STREAM.fullmatch(doc["stream"]) is not None, "stream", doc["stream"], "not 32 hex")
    require(1 <= doc["seq"] <= MAX_INT64, "seq", doc["seq"], "a seq is >= 1 (64-bit)")
    issued_at = utc_time("issued_at", doc["issued_at"])
    items = doc["changes"]
    require(1 <= len(items) <= MAX_CHANGES, "changes", len(items), "changes out of bounds")
    return Delta(
        store_id=doc["store_id"],
        stream=doc["stream"],
        seq=doc["seq"],
        issued_at=issued_at,
        changes=tuple(_change(i, item) for i, item in enumerate(items)),
    )


def _change(index: int, item: object) -> Change:
    where = f"changes[{index}]"
    if not isinstance(item, dict):
        raise WrongTypeError(where, "an object")
    op_name = item.get("op")
    if "op" not in item:
        raise MissingFieldError(f"{where}.op is missing", field=f"{where}.op")
    if not is_text(op_name) or op_name not in _OPS:
        raise BadValueError(
            f"{where}.op {op_name!r}: not a change of version 1", field=f"{where}.op"
        )
    op = _OPS[op_name]
    table = CHANGE_FIELDS[op]
    unknown = sorted(item.keys() - table.keys() - {"op"})
    if unknown:
        name = f"{where}.{unknown[0]}"
        raise UnknownFieldError(f"{name} is not a field of {op.value}", field=name)
    fields: dict[str, Any] = {}
    for name, kind in table.items():
        path = f"{where}.{name}"
        if name not in item:
            raise MissingFieldError(f"{path} is missing", field=path)
        fields[name] = _value(path, item[name], kind)
    _check(op, where, fields)
    return Change(op=op, fields=fields)


def _value(path: str, value: object, kind: _T) -> Any:
    if value is None and kind in (_T.OPT_STR, _T.OPT_TIME):
        return None
    if kind is _T.INT:
        if type(value) is not int:  # JSON true/false parse as bool, a subclass of int
            raise WrongTypeError(path, kind.value)
        require(0 <= value <= MAX_INT64, path, value, "a count is >= 0 (64-bit)")
        return value
    if kind is _T.SIGNED:
        if type(value) is not int:
            raise WrongTypeError(path, kind.value)
        require(-MAX_INT64 <= value <= MAX_INT64, path, value, "out of 64-bit range")
        return value
    if kind is _T.BOOL:
        if type(value) is not bool:
            raise WrongTypeError(path, kind.value)
        return value
    if not is_text(value):
        raise WrongTypeError(path, kind.value)
    if kind in (_T.TIME, _T.OPT_TIME):
        return utc_time(path, value)
    require(value != "" and "\x00" not in value, path, value, "empty or holding NUL")
    return value


def _check(op: Op, where: str, fields: dict[str, Any]) -> None:
    """The rules beyond each field's type."""
    if op in ELSEWHERE_OPS:
        for name in ("store_id", "box_id"):
            fault = level_fault(fields[name])
            require(fault is None, f"{where}.{name}", fields[name], f"not a level ({fault})")
    if op in (Op.STORE_KEY_REGISTERED, Op.STORE_KEY_REVOKED):
        key = fields["key_id"]
        require(_KEY_ID.fullmatch(key) is not None, f"{where}.key_id", key, "not 8 hex")
    if op is Op.MEMBER_IDENTITIES:
        member_identities.salt_from_text(f"{where}.card_salt", fields["card_salt"])
    if op is Op.CODE_ISSUED:
        issued, expires = fields["issued_at"], fields["expires_at"]
        ok = issued is None or expires is None or expires > issued
        require(ok, f"{where}.expires_at", expires, "expires before it is issued")
