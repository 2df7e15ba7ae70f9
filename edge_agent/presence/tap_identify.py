"""Who a tap is: a member token on a phone, or a member card's enrolled UID. Pure.

Theory of operation
-------------------
``identify(tap, trust=, cards=, now=)`` answers ``Identified(member_id, how)`` or
``Unidentified(reason)``, in this order:

1. A record of the member token type (``storeside.io:member``) decides alone: its verified
   member id (``how="token"``), or its refusal (``forged``, ``expired``...). A refused token
   never falls back to the UID: a phone's UID is random, and a card carrying a forged token is
   not to be trusted for its UID either.
2. Otherwise an enrolled card: the UID's digest in the store's enrolment table
   (``how="card"``), or ``unknown_card``.
3. No UID and no token: ``no_identity``. An NDEF message that does not parse and no enrolled
   UID: ``malformed_ndef``.

UIDs are stored and looked up as digests, ``SHA-256(context || salt || uid)``, never raw: a
card's UID is a stable identifier any reader can see, so a table of raw UIDs leaked from a box
would let anyone recognise those members' cards elsewhere (other shops, transit gates). The salt
is per programme (HQ computes the digests it syncs), so tables cannot be joined across
programmes. It is a speed bump for 4-byte UIDs (2^32 guesses), not secrecy; what it protects
is the join, not the card.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final, Literal

from cloud_sync.contract import member_token
from edge_agent.presence.member_token_verify import (
    DEFAULT_SKEW,
    RefusedToken,
    decode_and_verify,
)
from edge_agent.presence.nfc_port import Tap
from edge_agent.sync.hq_trust import HqTrust

UID_CONTEXT: Final = b"storeside/nfc-uid/v1\x00"


def uid_digest(uid: bytes, *, salt: bytes) -> str:
    """The hex digest an enrolment table keys a card by."""
    return hashlib.sha256(UID_CONTEXT + len(salt).to_bytes(2, "big") + salt + uid).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class CardEnrolment:
    """Enrolled member cards: ``uid_digest`` -> member id, and the salt those digests use."""

    salt: bytes
    members: Mapping[str, str]

    def member_of(self, uid: bytes) -> str | None:
        return self.members.get(uid_digest(uid, salt=self.salt))


class NotIdentified(StrEnum):
    UNKNOWN_CARD = "unknown_card"
    NO_IDENTITY = "no_identity"
    MALFORMED_NDEF = "malformed_ndef"


@dataclass(frozen=True, slots=True)
class Identified:
    member_id: str
    how: Literal["token", "card"]


@dataclass(frozen=True, slots=True)
class Unidentified:
    reason: str  # a TokenRefusal or a NotIdentified value
    detail: str = ""


def identify(
    tap: Tap,
    *,
    trust: HqTrust,
    cards: CardEnrolment,
    now: datetime,
    skew: timedelta = DEFAULT_SKEW,
) -> Identified | Unidentified:
    """Who ``tap`` is at ``now`` (see the module docstring); never raises."""
    for record in tap.records:
        if record.type == member_token.RECORD_TYPE:
            found = decode_and_verify(record, trust=trust, now=now, skew=skew)
            if isinstance(found, RefusedToken):
                return Unidentified(found.reason.value, found.detail)
            return Identified(found, "token")
    if tap.uid:
        member = cards.member_of(tap.uid)
        if member is not None:
            return Identified(member, "card")
    if tap.ndef_fault is not None:
        return Unidentified(NotIdentified.MALFORMED_NDEF.value, tap.ndef_fault.value)
    if tap.uid:
        return Unidentified(NotIdentified.UNKNOWN_CARD.value)
    return Unidentified(NotIdentified.NO_IDENTITY.value)
