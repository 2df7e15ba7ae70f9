"""A member's presence identities, as HQ ships them to the stores: one definition, both ends.

Theory of operation
-------------------
A member who gave proximity consent may be recognised in a store three ways, each keyed by
something HQ enrolled for them:

    keys    rotating-identifier keys (``rotating_id.py``): key id, 16-byte key, validity
            window (valid_from inclusive, valid_until exclusive, each optional), so HQ rotates
            a key with an overlap in which the old and the new both resolve
    tags    fixed beacon tags: the frame kind and its fixed identity (iBeacon UUID+major+minor
            20 bytes, AltBeacon id 20 bytes, Eddystone-UID namespace+instance 16 bytes; the
            box's ``presence.frames.parse.tag_identity``)
    cards   NFC member cards, as the salted digest of their UID (``card_uid.py``); never the UID

HQ sends the whole set of one member at once (the delta op ``member.identities`` carries the
member, the programme's card salt and this body; a snapshot carries one body per consenting
member), so the box replaces what it held for the member: an empty set is how a withdrawn
consent or a last unenrolment reaches the stores. A member without consent is always sent the
empty set: their keys never leave HQ.

The body is a closed JSON object, schema version 1, read with the link's strict codec
(``message_codec``) and refused, first fault first, with its typed errors (``decode_errors``)::

    schema_version  1
    keys    [{key_id: 16 lowercase hex, key: 32 lowercase hex, valid_from: time|null,
              valid_until: time|null}]       at most MAX_KEYS, ids unique, from < until
    tags    [{kind: "ibeacon"|"altbeacon"|"eddystone_uid", value: lowercase hex of the
              kind's length}]                at most MAX_TAGS, unique
    cards   [64 lowercase hex]              at most MAX_CARDS, unique

Times are ISO 8601 with an offset, read as UTC. ``encode_body`` writes the canonical text
(sorted keys, each list sorted), so one set has one text and a re-sent set is byte-equal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from cloud_sync.contract import message_codec
from cloud_sync.contract.decode_errors import (
    MissingFieldError,
    UnknownFieldError,
    WrongTypeError,
)
from cloud_sync.contract.message_codec import Kind, is_text, require, utc_time

SCHEMA_VERSION: Final = 1
MAX_KEYS: Final = 8  # a current key and the ones still in their overlap; generous
MAX_TAGS: Final = 16
MAX_CARDS: Final = 16
MAX_BODY_BYTES: Final = 16 * 1024  # the largest legal body is about 4 KiB
KEY_BYTES: Final = 16  # rotating_id.KEY_BYTES (kept apart so this module stands alone)
SALT_BYTES: Final = 16
# The fixed identity's length for each tag kind (the box's FrameKind values).
TAG_BYTES: Final = {"ibeacon": 20, "altbeacon": 20, "eddystone_uid": 16}
FIELDS: Final = {
    SCHEMA_VERSION: {
        "schema_version": Kind.INT,
        "keys": Kind.LIST,
        "tags": Kind.LIST,
        "cards": Kind.LIST,
    }
}
_KEY_FIELDS: Final = ("key_id", "key", "valid_from", "valid_until")
_TAG_FIELDS: Final = ("kind", "value")
KEY_ID: Final = re.compile(r"[0-9a-f]{16}")
DIGEST: Final = re.compile(r"[0-9a-f]{64}")
_HEX: Final = re.compile(r"(?:[0-9a-f]{2})*")


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentityKey:
    key_id: str
    key: bytes  # KEY_BYTES
    valid_from: datetime | None = None
    valid_until: datetime | None = None  # exclusive


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentityTag:
    kind: str  # a TAG_BYTES key
    value: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentitySet:
    keys: tuple[IdentityKey, ...] = ()
    tags: tuple[IdentityTag, ...] = ()
    cards: tuple[str, ...] = ()  # card_uid.uid_digest hex

    @property
    def empty(self) -> bool:
        return not (self.keys or self.tags or self.cards)


EMPTY: Final = IdentitySet()


def encode_body(identities: IdentitySet) -> str:
    """The set's canonical text; ValueError if it is not a set ``decode_body`` would take."""
    keys = sorted(identities.keys, key=lambda k: k.key_id)
    tags = sorted(identities.tags, key=lambda t: (t.kind, t.value))
    text = message_codec.canonical(
        {
            "schema_version": SCHEMA_VERSION,
            "keys": [
                {
                    "key_id": k.key_id,
                    "key": k.key.hex(),
                    "valid_from": None if k.valid_from is None else k.valid_from.isoformat(),
                    "valid_until": None if k.valid_until is None else k.valid_until.isoformat(),
                }
                for k in keys
            ],
            "tags": [{"kind": t.kind, "value": t.value.hex()} for t in tags],
            "cards": sorted(identities.cards),
        }
    )
    try:
        decode_body(text)
    except message_codec.MessageError as exc:
        raise ValueError(f"not a valid identity set: {exc}") from None
    return text


def decode_body(data: str | bytes) -> IdentitySet:
    """The set in ``data``; a ``MessageError`` naming the first fault if there is none."""
    _, doc = message_codec.read(data, max_bytes=MAX_BODY_BYTES, fields=FIELDS)
    require(len(doc["keys"]) <= MAX_KEYS, "keys", len(doc["keys"]), f"over {MAX_KEYS} keys")
    require(len(doc["tags"]) <= MAX_TAGS, "tags", len(doc["tags"]), f"over {MAX_TAGS} tags")
    cards = doc["cards"]
    require(len(cards) <= MAX_CARDS, "cards", len(cards), f"over {MAX_CARDS} cards")
    keys = tuple(_key(f"keys[{i}]", item) for i, item in enumerate(doc["keys"]))
    require(len({k.key_id for k in keys}) == len(keys), "keys", len(keys), "a key id twice")
    tags = tuple(_tag(f"tags[{i}]", item) for i, item in enumerate(doc["tags"]))
    require(len(set(tags)) == len(tags), "tags", len(tags), "a tag twice")
    for i, card in enumerate(cards):
        if not is_text(card):
            raise WrongTypeError(f"cards[{i}]", "a string")
        require(DIGEST.fullmatch(card) is not None, f"cards[{i}]", card, "not 64 hex")
    require(len(set(cards)) == len(cards), "cards", len(cards), "a card twice")
    return IdentitySet(keys=keys, tags=tags, cards=tuple(cards))


def _object(where: str, item: object, names: tuple[str, ...]) -> dict[str, Any]:
    """``item`` as a closed object of ``names``, every one present."""
    if not isinstance(item, dict):
        raise WrongTypeError(where, "an object")
    unknown = sorted(item.keys() - set(names))
    if unknown:
        name = f"{where}.{unknown[0]}"
        raise UnknownFieldError(f"{name} is not a field", field=name)
    for name in names:
        if name not in item:
            raise MissingFieldError(f"{where}.{name} is missing", field=f"{where}.{name}")
    return item


def _hex(path: str, value: object, size: int) -> bytes:
    if not is_text(value):
        raise WrongTypeError(path, "a string")
    ok = len(value) == 2 * size and _HEX.fullmatch(value) is not None
    require(ok, path, value, f"not {size} bytes of lowercase hex")
    return bytes.fromhex(value)


def _time(path: str, value: object) -> datetime | None:
    if value is None:
        return None
    if not is_text(value):
        raise WrongTypeError(path, "an ISO 8601 time with offset, or null")
    return utc_time(path, value)


def _key(where: str, item: object) -> IdentityKey:
    doc = _object(where, item, _KEY_FIELDS)
    key_id = doc["key_id"]
    if not is_text(key_id):
        raise WrongTypeError(f"{where}.key_id", "a string")
    require(KEY_ID.fullmatch(key_id) is not None, f"{where}.key_id", key_id, "not 16 hex")
    key = _hex(f"{where}.key", doc["key"], KEY_BYTES)
    start = _time(f"{where}.valid_from", doc["valid_from"])
    until = _time(f"{where}.valid_until", doc["valid_until"])
    ordered = start is None or until is None or start < until
    require(ordered, f"{where}.valid_until", doc["valid_until"], "not after valid_from")
    return IdentityKey(key_id=key_id, key=key, valid_from=start, valid_until=until)


def _tag(where: str, item: object) -> IdentityTag:
    doc = _object(where, item, _TAG_FIELDS)
    kind = doc["kind"]
    if not is_text(kind):
        raise WrongTypeError(f"{where}.kind", "a string")
    require(kind in TAG_BYTES, f"{where}.kind", kind, f"not one of {sorted(TAG_BYTES)}")
    return IdentityTag(kind=kind, value=_hex(f"{where}.value", doc["value"], TAG_BYTES[kind]))


def salt_text(salt: bytes) -> str:
    """The card salt as the delta op and the snapshot carry it: lowercase hex."""
    if len(salt) != SALT_BYTES:
        raise ValueError(f"a card salt is {SALT_BYTES} bytes")
    return salt.hex()


def salt_from_text(name: str, text: str) -> bytes:
    """The card salt in ``text``; ``BadValueError`` on ``name`` if it is not one."""
    ok = len(text) == 2 * SALT_BYTES and _HEX.fullmatch(text) is not None
    require(ok, name, text, f"not {SALT_BYTES} bytes of lowercase hex")
    return bytes.fromhex(text)
