"""HQ keys, trust, member tokens and NDEF messages shared by the NFC tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import ndef
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from cloud_sync.contract import member_token
from cloud_sync.contract.member_token import MemberClaims
from edge_agent.domain.token_codec import key_id_of
from edge_agent.presence.tap_identify import CardEnrolment, uid_digest
from edge_agent.sync.hq_trust import HqKey, HqTrust

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SALT = b"programme-salt"
CARD_UID = bytes.fromhex("a1b2c3d4e5f601")  # not 04: not NXP
CARD_MEMBER = "M-card-1"
PHONE_MEMBER = "M-phone-7"


def hq_key(seed: int = 7) -> Ed25519PrivateKey:
    # Deterministic keys: a failing example reproduces exactly.
    return Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def trust(*announced: Ed25519PrivateKey, pinned: Ed25519PrivateKey | None = None) -> HqTrust:
    root = pinned or hq_key()
    keys = [HqKey(key_id=key_id_of(raw_public(k)), public_key=raw_public(k)) for k in announced]
    return HqTrust.pinned(raw_public(root), keys)


def token(
    member_id: str = PHONE_MEMBER,
    *,
    key: Ed25519PrivateKey | None = None,
    issued: datetime = NOW - timedelta(hours=1),
    lifetime: timedelta = timedelta(days=1),
) -> bytes:
    signer = key or hq_key()
    claims = MemberClaims(member_id=member_id, issued_at=issued, expires_at=issued + lifetime)
    return member_token.encode(claims, key_id=key_id_of(raw_public(signer)), sign=signer.sign)


def message(*records: ndef.Record) -> bytes:
    return b"".join(ndef.message_encoder(list(records)))


def token_message(payload: bytes) -> bytes:
    return message(ndef.Record(member_token.RECORD_TYPE, "", payload))


def cards() -> CardEnrolment:
    return CardEnrolment(salt=SALT, members={uid_digest(CARD_UID, salt=SALT): CARD_MEMBER})
