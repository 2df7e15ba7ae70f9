"""Keys, signers and claims shared by the signing tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge_agent.domain.coupon_token import CouponClaims, CouponSigner, TrustedKey

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def signer(store_id: str = "S2", seed: int = 2) -> CouponSigner:
    # Deterministic keys: a failing example reproduces exactly.
    key = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
    return CouponSigner(private_key=key, store_id=store_id)


def claims(code: str, *, member_id: str | None = "M1", store_id: str = "S2",
           campaign_id: str = "C1", days: int = 14) -> CouponClaims:  # fmt: skip
    return CouponClaims(
        code=code,
        campaign_id=campaign_id,
        member_id=member_id,
        store_id=store_id,
        issued_at=NOW - timedelta(hours=1),
        expires_at=NOW + timedelta(days=days),
    )


def keyring(*signers: CouponSigner, revoked: bool = False) -> dict[str, TrustedKey]:
    return {
        s.key_id: TrustedKey(
            key_id=s.key_id, store_id=s.store_id, public_key=s.public_key, revoked=revoked
        )
        for s in signers
    }
