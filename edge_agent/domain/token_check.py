"""What a scanned token means for validation. Pure: verification results in, decisions out.

A genuine token stands for its code, with two more conditions the code's own record may not
carry (its code might not even be in this store's cache yet): the member binding and the
token's expiry. A token that is not genuine never reaches a lookup.

=====================  =================  ==================================================
 verify() says          reason             why
=====================  =================  ==================================================
 bad encoding,          INVALID_TOKEN      cannot be read: a damaged print, a misread scan,
 truncated, unknown                        or another system's QR that shares our prefix
 version, malformed
 bad signature          INVALID_SIGNATURE  forged or altered
 unknown key            UNKNOWN_ISSUER     a key this store has never been told to trust
 revoked key            UNKNOWN_ISSUER     HQ withdrew the key (details say "revoked")
 expired                EXPIRED            the token's own expiry
=====================  =================  ==================================================

All but EXPIRED are guess-like for the till throttle (``TOKEN_GUESS_REASONS``): an honest
customer's QR is either readable and genuine, or damaged once.
"""

from __future__ import annotations

from datetime import datetime

from edge_agent.domain import messages
from edge_agent.domain.code_record import CodeRecord
from edge_agent.domain.coupon_token import TokenClaims, TokenFault, TokenRefusal
from edge_agent.domain.decision import Reason, Refused

TOKEN_GUESS_REASONS = frozenset(
    {Reason.INVALID_TOKEN, Reason.INVALID_SIGNATURE, Reason.UNKNOWN_ISSUER}
)
RECEIPT_CHANNEL = "receipt"
# The token does not carry the offer variant; HQ joins the redemption to the issue event by code.
UNKNOWN_VARIANT = "unknown"


def refusal(scanned: str, refused: TokenRefusal) -> Refused:
    """The decision for a token ``verify`` refused (never NOT_A_TOKEN: that is a typed code)."""
    fault = refused.fault
    if fault is TokenFault.EXPIRED and refused.code is not None and refused.expired_at:
        return messages.expired(refused.code, refused.expired_at, "code")
    if fault is TokenFault.BAD_SIGNATURE:
        return messages.invalid_signature(scanned, refused.key_id or "?", refused.store_id or "?")
    if fault is TokenFault.UNKNOWN_KEY:
        return messages.unknown_issuer(scanned, refused.key_id or "?", "unknown", None)
    if fault is TokenFault.REVOKED_KEY:
        return messages.unknown_issuer(scanned, refused.key_id or "?", "revoked", refused.store_id)
    return messages.invalid_token(scanned, fault.value, refused.detail)


def check_binding(claims: TokenClaims, member_id: str | None) -> Refused | None:
    """MEMBER_REQUIRED / WRONG_MEMBER from the token's member binding (None: it passes)."""
    if claims.member_binding is None:
        return None
    if member_id is None:
        return messages.member_required(claims.code, "bound")
    if not claims.binds(member_id):
        return messages.wrong_member(claims.code, "bound")
    return None


def check_expiry(claims: TokenClaims, now: datetime) -> Refused | None:
    """``verify`` already refuses an expired token; this guards a ``now`` that moved on."""
    if now >= claims.expires_at:
        return messages.expired(claims.code, claims.expires_at, "code")
    return None


def record_from_claims(
    claims: TokenClaims, *, campaign_id: str, member_id: str | None
) -> CodeRecord:
    """The code record a genuine token stands for when this cache does not hold the code.

    ``member_id`` is the identified member, who ``check_binding`` proved is the one the coupon
    was issued to (None for an anonymous coupon): the token carries only a binding, not the id.
    """
    return CodeRecord(
        code=claims.code,
        campaign_id=campaign_id,
        member_id=member_id if claims.bound else None,
        channel=RECEIPT_CHANNEL,
        variant=UNKNOWN_VARIANT,
        issued_at=claims.issued_at,
        expires_at=claims.expires_at,
    )
