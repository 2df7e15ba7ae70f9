"""The member token a phone presents at an NFC reader: one signed NDEF record. Pure, no keys.

Theory of operation
-------------------
A phone emulating a card (Android HCE, an Apple Wallet pass) shows a fresh random UID on every
tap (ISO 14443-3 allows it, and phones do it so they cannot be tracked), so the UID says nothing
about who holds the phone. The member app instead serves, as a Type 4 tag, an NDEF message with
one record of the NFC Forum external type (RTD 2.0) ``storeside.io:member``: a compact document
saying which member it is, for how long, signed by HQ. HQ issues it to the member's app (it is
refreshed well before ``expires_at``); the box checks it offline with the HQ keys it already
trusts for HQ's documents (``edge_agent/sync/hq_trust.py``: the pinned key and the announced
rotation), so there is no second key scheme to provision or rotate.

Payload, version 1 (integers big-endian)::

    off  len  field
      0    1  version = 1
      1    4  key id: the HQ key that signed, the first 4 bytes of SHA-256 of its raw public
              key (the same id ``hq_document`` writes as 8 hex digits)
      5    4  issued_at, UTC epoch seconds (uint32)
      9    4  expires_at, UTC epoch seconds, after issued_at
     13    1  n, the member id's length, 1..64
     14    n  the member id, ASCII of [A-Za-z0-9._:@/-] (the box's ``Id``)
      .   64  Ed25519 signature over SIGNING_CONTEXT || every byte before it

At most 14 + 64 + 64 = 142 bytes: one short NDEF record, one ISO-DEP frame or two. The context
is its own, so no signature HQ makes over a document, and no store's coupon signature, can pass
as a member token. The token is a bearer credential for the time it lives: it identifies, it
does not pay; redeeming a member-bound coupon still runs every check at the till.

``decode`` reads the layout only (total: bytes map to ``TokenLayout`` or ``Unreadable``);
verifying the signature and the times is the box's ``member_token_verify.decode_and_verify``.
``encode`` is the issuer's side: HQ (or a test vector) passes its signing function, so this
package holds no keys and imports no cryptography.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

RECORD_TYPE: Final = "urn:nfc:ext:storeside.io:member"  # ndeflib's spelling of the type
EXTERNAL_TYPE: Final = "storeside.io:member"  # the bytes written in the record's TYPE field
VERSION: Final = 1
SIGNING_CONTEXT: Final = b"storeside/member-token/v1\x00"
SIGNATURE_BYTES: Final = 64
KEY_ID_BYTES: Final = 4
MAX_MEMBER_ID: Final = 64
_HEADER: Final = 1 + KEY_ID_BYTES + 4 + 4 + 1
MAX_PAYLOAD_BYTES: Final = _HEADER + MAX_MEMBER_ID + SIGNATURE_BYTES
_MEMBER_ID = re.compile(rb"[A-Za-z0-9._:@/-]{1,64}")
_UINT32_MAX: Final = 2**32 - 1


class Fault(StrEnum):
    """Why a payload is not a readable token (before any key is consulted)."""

    OVERSIZED = "oversized"
    TRUNCATED = "truncated"
    UNKNOWN_VERSION = "unknown_version"
    MALFORMED = "malformed"  # a bad member id, times out of order, bytes left over


@dataclass(frozen=True, slots=True, kw_only=True)
class Unreadable:
    fault: Fault
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberClaims:
    member_id: str
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenLayout:
    """A version 1 token as written; nothing verified yet."""

    claims: MemberClaims
    key_id: str  # 8 lowercase hex
    signed: bytes  # SIGNING_CONTEXT || the bytes before the signature
    signature: bytes


def _epoch(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValueError("token times must be timezone-aware")
    seconds = int(at.timestamp())
    if not 0 <= seconds <= _UINT32_MAX:
        raise ValueError(f"{at.isoformat()} does not fit a uint32 epoch")
    return seconds


def body_bytes(claims: MemberClaims, key_id: str) -> bytes:
    """The bytes of a token before its signature; ``ValueError`` for claims no token can hold."""
    member = claims.member_id.encode("ascii", errors="replace")
    if _MEMBER_ID.fullmatch(member) is None:
        raise ValueError(f"member id {claims.member_id!r} is not 1..64 of [A-Za-z0-9._:@/-]")
    raw_key = bytes.fromhex(key_id)
    if len(raw_key) != KEY_ID_BYTES:
        raise ValueError("a key id is 8 hex digits")
    issued, expires = _epoch(claims.issued_at), _epoch(claims.expires_at)
    if expires <= issued:
        raise ValueError("a token expires after it is issued")
    return (
        bytes((VERSION,))
        + raw_key
        + issued.to_bytes(4, "big")
        + expires.to_bytes(4, "big")
        + bytes((len(member),))
        + member
    )


def encode(claims: MemberClaims, *, key_id: str, sign: Callable[[bytes], bytes]) -> bytes:
    """The record payload: ``sign`` is the issuer's Ed25519 signing function (HQ's key)."""
    body = body_bytes(claims, key_id)
    signature = sign(SIGNING_CONTEXT + body)
    if len(signature) != SIGNATURE_BYTES:
        raise ValueError(f"an Ed25519 signature is {SIGNATURE_BYTES} bytes")
    return body + signature


def decode(payload: bytes) -> TokenLayout | Unreadable:
    """The layout of ``payload``; an ``Unreadable`` naming the first fault if there is none."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return Unreadable(fault=Fault.OVERSIZED, detail=f"{len(payload)} bytes")
    if not payload:
        return Unreadable(fault=Fault.TRUNCATED, detail="no bytes")
    if payload[0] != VERSION:
        return Unreadable(fault=Fault.UNKNOWN_VERSION, detail=f"version {payload[0]}")
    if len(payload) < _HEADER:
        return Unreadable(fault=Fault.TRUNCATED, detail="shorter than the header")
    n = payload[_HEADER - 1]
    end = _HEADER + n
    if len(payload) < end + SIGNATURE_BYTES:
        return Unreadable(fault=Fault.TRUNCATED, detail=f"needs {end + SIGNATURE_BYTES} bytes")
    if len(payload) != end + SIGNATURE_BYTES:
        return Unreadable(fault=Fault.MALFORMED, detail="bytes after the signature")
    member = payload[_HEADER:end]
    if _MEMBER_ID.fullmatch(member) is None:
        return Unreadable(fault=Fault.MALFORMED, detail="member id not 1..64 of the id set")
    issued = int.from_bytes(payload[5:9], "big")
    expires = int.from_bytes(payload[9:13], "big")
    if expires <= issued:
        return Unreadable(fault=Fault.MALFORMED, detail="expires_at not after issued_at")
    claims = MemberClaims(
        member_id=member.decode("ascii"),
        issued_at=datetime.fromtimestamp(issued, UTC),
        expires_at=datetime.fromtimestamp(expires, UTC),
    )
    return TokenLayout(
        claims=claims,
        key_id=payload[1:5].hex(),
        signed=SIGNING_CONTEXT + payload[:end],
        signature=payload[end:],
    )
