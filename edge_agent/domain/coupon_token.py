"""Signed coupon tokens carried by receipt QR codes. (Contract; the implementation is being
written.)

A receipt coupon's QR carries a compact token: the claims below, signed with the issuing
store's Ed25519 key. Any store verifies it offline with the public keys HQ distributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class CouponClaims:
    code: str  # the canonical code, also printed under the QR
    campaign_id: str  # the offer
    member_id: str | None  # the member it is bound to (None: anonymous receipt coupon)
    store_id: str  # the issuing store
    issued_at: datetime
    expires_at: datetime
