"""A member card's enrolment key: the salted digest of its UID, the same at HQ and on the box.

A card's UID is a stable identifier any reader can see, so neither HQ's database nor a box's
cache holds it raw: HQ stores (and ships) only this digest, and the box computes it on each tap
and looks it up. The salt is programme-wide (HQ makes it once, 16 random bytes, and ships it
with the identities), so enrolment tables cannot be joined across programmes; the context
string and the salt's length prefix keep the input unambiguous.
"""

from __future__ import annotations

import hashlib
from typing import Final

UID_CONTEXT: Final = b"storeside/nfc-uid/v1\x00"


def uid_digest(uid: bytes, *, salt: bytes) -> str:
    """The lowercase hex SHA-256 an enrolment is keyed by."""
    return hashlib.sha256(UID_CONTEXT + len(salt).to_bytes(2, "big") + salt + uid).hexdigest()
