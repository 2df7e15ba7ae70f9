"""Signed coupon tokens carried by receipt QR codes: sign at issue, verify offline anywhere.

A receipt coupon's QR carries a compact token (layout in ``token_codec``): the claims below,
signed with the issuing store's Ed25519 key. Any store verifies it offline with the public
keys HQ distributes. Pure: keys come in as objects, time as ``now``; nothing is read or written.

``verify`` is total: any string in, a ``TokenClaims`` or a ``TokenRefusal`` out, in this order
of checks (the first failure is the answer):

    NOT_A_TOKEN / BAD_ENCODING / TRUNCATED / UNKNOWN_VERSION / MALFORMED   (token_codec.parse)
    UNKNOWN_KEY      no trusted key has the token's key id
    BAD_SIGNATURE    the signature does not verify with that key: forged or altered
    REVOKED_KEY      genuine, but HQ has revoked the key (a lost or stolen box)
    EXPIRED          genuine, but ``now`` is at or past the token's expiry

The only failure that raises is a programming error in ``CouponSigner.sign`` (claims the
format cannot carry): ``ValueError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from edge_agent.domain import token_codec
from edge_agent.domain.token_codec import Fault, Layout, Unreadable


@dataclass(frozen=True, slots=True, kw_only=True)
class CouponClaims:
    code: str  # the canonical code, also printed under the QR
    campaign_id: str  # the offer
    member_id: str | None  # the member it is bound to (None: anonymous receipt coupon)
    store_id: str  # the issuing store
    issued_at: datetime
    expires_at: datetime


class TokenFault(StrEnum):
    NOT_A_TOKEN = Fault.NOT_A_TOKEN.value
    BAD_ENCODING = Fault.BAD_ENCODING.value
    TRUNCATED = Fault.TRUNCATED.value
    UNKNOWN_VERSION = Fault.UNKNOWN_VERSION.value
    MALFORMED = Fault.MALFORMED.value
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    REVOKED_KEY = "revoked_key"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenRefusal:
    fault: TokenFault
    detail: str
    key_id: str | None = None  # once the token was readable
    store_id: str | None = None  # once a key was found
    code: str | None = None  # only once the signature verified (else it is unproven text)
    expired_at: datetime | None = None

    ok = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenClaims:
    """What a genuine token says. The member and campaign are references to compare, not ids."""

    code: str
    campaign_ref: bytes
    member_binding: bytes | None  # None: an anonymous coupon
    key_id: str
    store_id: str  # the issuing store, from the key registry (not from the token)
    issued_at: datetime
    expires_at: datetime

    ok = True

    @property
    def bound(self) -> bool:
        return self.member_binding is not None

    def binds(self, member_id: str) -> bool:
        """Whether the coupon was issued to ``member_id``."""
        return self.member_binding == token_codec.member_binding(self.code, member_id)

    def names_campaign(self, campaign_id: str) -> bool:
        return self.campaign_ref == token_codec.campaign_ref(campaign_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class TrustedKey:
    key_id: str
    store_id: str
    public_key: Ed25519PublicKey
    revoked: bool = False


class KeyLookup(Protocol):
    """Where ``verify`` finds keys: ``TrustedKeys`` on a store, a dict in tests and benches."""

    def get(self, key_id: str, /) -> TrustedKey | None: ...


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    return token_codec.key_id_of(raw_public_key(key))


def _epoch(moment: datetime, name: str) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be an aware datetime")
    return int(moment.timestamp() // 1)  # whole seconds: the token's precision


class CouponSigner:
    """Signs coupon claims with one store's private key. Built by ``signing_key.load_signer``."""

    def __init__(self, *, private_key: Ed25519PrivateKey, store_id: str) -> None:
        self._key = private_key
        self.store_id = store_id
        self.public_key = private_key.public_key()
        self.key_id = key_id(self.public_key)

    def trusted_key(self) -> TrustedKey:
        """This signer's own key, for a store that must trust the coupons it prints."""
        return TrustedKey(key_id=self.key_id, store_id=self.store_id, public_key=self.public_key)

    def sign(self, claims: CouponClaims) -> str:
        """The QR payload text for ``claims``. Times are kept to the whole second (floored).

        Raises ValueError if the claims are another store's, the code is not 1-24 of
        [0-9A-Z], a time is naive or outside 1970-2106, or the expiry is not after issue.
        """
        if claims.store_id != self.store_id:
            raise ValueError(f"claims of store {claims.store_id!r} signed by {self.store_id!r}")
        issued = _epoch(claims.issued_at, "issued_at")
        expires = _epoch(claims.expires_at, "expires_at")
        if expires <= issued:
            raise ValueError("expires_at must be after issued_at")
        binding = (
            None
            if claims.member_id is None
            else token_codec.member_binding(claims.code, claims.member_id)
        )
        data = token_codec.body(
            Layout(
                key_id=self.key_id,
                issued_at=issued,
                expires_at=expires,
                campaign_ref=token_codec.campaign_ref(claims.campaign_id),
                member_binding=binding,
                code=claims.code,
            )
        )
        signature = self._key.sign(token_codec.SIGNING_CONTEXT + data)
        return token_codec.to_text(data + signature)


def verify(text: str, keys: KeyLookup, now: datetime) -> TokenClaims | TokenRefusal:
    """Check a scanned string. Never raises; see the module docstring for the order."""
    layout = token_codec.parse(text)
    if isinstance(layout, Unreadable):
        return TokenRefusal(fault=TokenFault(layout.fault.value), detail=layout.detail)
    kid = layout.key_id
    trusted = keys.get(kid)
    if trusted is None:
        return TokenRefusal(
            fault=TokenFault.UNKNOWN_KEY, detail=f"no trusted key {kid}", key_id=kid
        )
    try:
        trusted.public_key.verify(layout.signature, layout.signed)
    except InvalidSignature:
        return TokenRefusal(
            fault=TokenFault.BAD_SIGNATURE,
            detail=f"signature does not verify with key {kid} of store {trusted.store_id}",
            key_id=kid,
            store_id=trusted.store_id,
        )
    if trusted.revoked:
        return TokenRefusal(
            fault=TokenFault.REVOKED_KEY,
            detail=f"key {kid} of store {trusted.store_id} has been revoked",
            key_id=kid,
            store_id=trusted.store_id,
            code=layout.code,
        )
    expires_at = datetime.fromtimestamp(layout.expires_at, UTC)
    if now >= expires_at:
        return TokenRefusal(
            fault=TokenFault.EXPIRED,
            detail=f"expired at {expires_at.isoformat()}",
            key_id=kid,
            store_id=trusted.store_id,
            code=layout.code,
            expired_at=expires_at,
        )
    return TokenClaims(
        code=layout.code,
        campaign_ref=layout.campaign_ref,
        member_binding=layout.member_binding,
        key_id=kid,
        store_id=trusted.store_id,
        issued_at=datetime.fromtimestamp(layout.issued_at, UTC),
        expires_at=expires_at,
    )
