"""HQ's next signing key, announced to the boxes signed by a key they already trust.

Theory of operation
-------------------
Every box pins one HQ public key in its config (``[sync] hq_public_key``) and believes only
documents signed by a key it trusts (``hq_document.py``). HQ rotates its key without visiting
the stores: it announces the next key in a document of kind "hq_key" signed by the current
one, and the box, having checked that signature, trusts the new key too. The announcement
says which key it replaces and from when that one is no longer to be trusted, so the fleet
moves over in a window: HQ keeps signing with the old key until the boxes have had time to
hear, then switches. A box that missed the announcement (offline past ``retire_at``, or a
cache restored from before it) refuses HQ's new documents with ``unknown_key`` and says so in
its health; its installer brings it over by setting the pinned key to the new one (the pin is
the trust root and is always trusted).

The body, a flat JSON object, schema version 1::

    schema_version  int   1
    key_id          str   the new key's id: 8 lowercase hex (``token_codec.key_id_of``)
    public_key      str   its 32 raw bytes as unpadded base64url (as store keys are written)
    announced_at    str   ISO 8601 with offset
    retires         str?  the key id it replaces (8 hex), or null: an extra key, none retired
    retire_at       str?  from when the replaced key is refused; null exactly when retires is

The pure checks are here; whether the key id is the public key's, and the signature, need
``cryptography`` and are the box's (``edge_agent/sync/hq_trust.py``).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from cloud_sync.contract import message_codec
from cloud_sync.contract.message_codec import Kind, require, utc_time

SCHEMA_VERSION: Final = 1
MAX_BYTES: Final = 2048
FIELDS: Final = {
    SCHEMA_VERSION: {
        "schema_version": Kind.INT,
        "key_id": Kind.STR,
        "public_key": Kind.STR,
        "announced_at": Kind.STR,
        "retires": Kind.OPT_STR,
        "retire_at": Kind.OPT_STR,
    }
}
_KEY_ID = re.compile(r"[0-9a-f]{8}")
_B64URL = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes, unpadded


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyAnnouncement:
    key_id: str
    public_key: bytes  # 32 raw Ed25519 bytes
    announced_at: datetime
    retires: str | None = None
    retire_at: datetime | None = None


def encode(announcement: KeyAnnouncement) -> str:
    """The announcement's canonical text: the body HQ signs."""
    if len(announcement.public_key) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    if (announcement.retires is None) != (announcement.retire_at is None):
        raise ValueError("retires and retire_at go together")
    return message_codec.canonical(
        {
            "schema_version": SCHEMA_VERSION,
            "key_id": announcement.key_id,
            "public_key": base64.urlsafe_b64encode(announcement.public_key).decode().rstrip("="),
            "announced_at": announcement.announced_at.isoformat(),
            "retires": announcement.retires,
            "retire_at": (
                None if announcement.retire_at is None else announcement.retire_at.isoformat()
            ),
        }
    )


def decode(data: str | bytes) -> KeyAnnouncement:
    """The announcement in ``data`` (a verified document's body); a ``MessageError`` naming
    the first fault if there is none."""
    _, doc = message_codec.read(data, max_bytes=MAX_BYTES, fields=FIELDS)
    require(_KEY_ID.fullmatch(doc["key_id"]) is not None, "key_id", doc["key_id"], "not 8 hex")
    text = doc["public_key"]
    require(_B64URL.fullmatch(text) is not None, "public_key", text, "not 32 bytes of base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=")
    except (binascii.Error, ValueError):  # the pattern admits no such text; kept typed anyway
        raw = b""
    canonical = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    require(len(raw) == 32 and canonical == text, "public_key", text, "not 32 bytes of base64url")
    announced_at = utc_time("announced_at", doc["announced_at"])
    retires, retire_at = doc["retires"], doc["retire_at"]
    require(
        (retires is None) == (retire_at is None),
        "retire_at",
        retire_at,
        "given exactly when retires is",
    )
    if retires is not None:
        require(_KEY_ID.fullmatch(retires) is not None, "retires", retires, "not 8 hex")
        require(retires != doc["key_id"], "retires", retires, "a key cannot retire itself")
    return KeyAnnouncement(
        key_id=doc["key_id"],
        public_key=raw,
        announced_at=announced_at,
        retires=retires,
        retire_at=None if retire_at is None else utc_time("retire_at", retire_at),
    )
