"""Deterministic assignment of members to a holdout group and to offer variants.

Theory of operation
-------------------
Lift is measured against a holdout: a fixed share of every targeted cohort that gets no coupon
(DOMAIN.md section 3). The assignment must be the same in every store, after every restart and
for every checkout of the member, or the control group leaks into the treated one. So it is not
random per process: it is a keyed hash,

    u = HMAC-SHA256(key, purpose || 0x1f || cohort || 0x1f || subject)[:8] as a big-endian integer

read as a uniform number in [0, 2^64). The subject is in the holdout when
``u < share_bp * 2^64 / 10000``. The key is shared by every store (config pushed by HQ), so the
whole chain agrees; keying the hash means nobody without the key can work out who is held out.
``purpose`` separates the holdout draw from the variant draw, so which variant a member would see
is independent of whether they are held out.

A/B variants use the same construction: ``u mod total_weight`` falls into one weight bucket.
(2^64 is not a multiple of the total weight; the resulting bias is below 2^-50 for any sane
weight total, far under anything an A/B test can see.)
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

BASIS_POINTS = 10_000
_SCALE = 1 << 64
_SEP = b"\x1f"  # ASCII unit separator: never part of an id, so fields cannot run together


def draw(key: bytes, purpose: str, cohort: str, subject: str) -> int:
    """A uniform 64-bit number fixed by its inputs (see the module docstring)."""
    message = _SEP.join((purpose.encode(), cohort.encode(), subject.encode()))
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big")


def in_holdout(*, key: bytes, cohort: str, subject: str, share_bp: int) -> bool:
    """Whether ``subject`` (a member id) belongs to ``cohort``'s holdout of ``share_bp``/10000."""
    if not 0 <= share_bp <= BASIS_POINTS:
        raise ValueError(f"holdout share must be 0..{BASIS_POINTS} basis points, got {share_bp}")
    # Integer comparison: u / 2^64 < bp / 10000  <=>  u * 10000 < bp * 2^64.
    return draw(key, "holdout", cohort, subject) * BASIS_POINTS < share_bp * _SCALE


def pick_variant(
    *, key: bytes, cohort: str, subject: str, weights: Sequence[tuple[str, int]]
) -> str:
    """The variant ``subject`` sees in ``cohort``: stable, in proportion to the weights."""
    if not weights or any(w <= 0 for _, w in weights):
        raise ValueError("variants need at least one entry, each with a positive weight")
    if len(weights) == 1:
        return weights[0][0]
    point = draw(key, "variant", cohort, subject) % sum(w for _, w in weights)
    for name, weight in weights:
        if point < weight:
            return name
        point -= weight
    raise AssertionError("unreachable: point < total weight")
