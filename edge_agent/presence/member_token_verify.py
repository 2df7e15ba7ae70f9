"""The box's check of a member token record (``cloud_sync/contract/member_token.py``).

Theory of operation
-------------------
``decode_and_verify(record, trust=, now=)`` answers the member id or a ``TokenRefusal``; it
never raises, whatever the record holds. The checks run cheapest first, and nothing of the
claims is believed before the signature holds:

    1. the record's type is ``storeside.io:member`` ......................... wrong_type
    2. the payload is no longer than a token can be ......................... oversized
    3. the layout reads (version, lengths, member id, times in order) ....... malformed
    4. the key id is one of HQ's keys this box trusts ....................... unknown_key
       and not retired at ``now`` (HQ's rotation, ``hq_trust``) ............. retired_key
    5. the Ed25519 signature holds over the token's signed bytes ............ forged
    6. ``now`` is not before issued_at minus the allowed clock skew ......... not_yet_valid
    7. ``now`` is before expires_at (plus the same skew) .................... expired

The trust is the one the box already keeps for HQ's documents, so a key HQ rotates in for its
documents signs member tokens too, and a key it retires stops doing both at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cloud_sync.contract import member_token
from edge_agent.presence.ndef_message import NdefRecord
from edge_agent.sync.hq_trust import HqTrust

DEFAULT_SKEW: Final = timedelta(minutes=5)  # a box's clock may drift between NTP syncs


class TokenRefusal(StrEnum):
    WRONG_TYPE = "wrong_type"
    OVERSIZED = "oversized"
    MALFORMED = "malformed"
    UNKNOWN_KEY = "unknown_key"
    RETIRED_KEY = "retired_key"
    FORGED = "forged"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class RefusedToken:
    reason: TokenRefusal
    detail: str


def decode_and_verify(
    record: NdefRecord,
    *,
    trust: HqTrust,
    now: datetime,
    skew: timedelta = DEFAULT_SKEW,
) -> str | RefusedToken:
    """The member id the token in ``record`` proves at ``now``, or why it proves none."""
    if record.type != member_token.RECORD_TYPE:
        return RefusedToken(TokenRefusal.WRONG_TYPE, f"record type {record.type!r}")
    if len(record.payload) > member_token.MAX_PAYLOAD_BYTES:
        return RefusedToken(TokenRefusal.OVERSIZED, f"{len(record.payload)} bytes")
    layout = member_token.decode(record.payload)
    if isinstance(layout, member_token.Unreadable):
        return RefusedToken(TokenRefusal.MALFORMED, f"{layout.fault.value}: {layout.detail}")
    key = trust.keys.get(layout.key_id)
    if key is None:
        return RefusedToken(TokenRefusal.UNKNOWN_KEY, f"key {layout.key_id} is not trusted")
    if not key.trusted_at(now):
        return RefusedToken(TokenRefusal.RETIRED_KEY, f"key {layout.key_id} is retired")
    try:
        Ed25519PublicKey.from_public_bytes(key.public_key).verify(layout.signature, layout.signed)
    except (InvalidSignature, ValueError):  # ValueError: stored bytes that are no Ed25519 key
        return RefusedToken(TokenRefusal.FORGED, f"not signed by key {layout.key_id}")
    claims = layout.claims
    if now < claims.issued_at - skew:
        return RefusedToken(TokenRefusal.NOT_YET_VALID, f"issued {claims.issued_at.isoformat()}")
    if now >= claims.expires_at + skew:
        return RefusedToken(TokenRefusal.EXPIRED, f"expired {claims.expires_at.isoformat()}")
    return claims.member_id
