"""Scanned strings that are signed tokens: verify them, and stand in for codes not cached yet.

Theory of operation
-------------------
``scan`` runs before any lookup. A string without the token prefix is a typed code and passes
through untouched. A token is verified against ``TrustedKeys``: a refusal is final (the code it
claims is never looked up); a genuine token stands for its code.

A genuine coupon of another store may name a code this cache has not received yet.
``foreign_facts`` then builds its record from the claims (the campaign must be in the cache:
the token carries only a reference to it) and reads the store's own usage of that code, so
single use holds locally. ``remember`` writes the record into ``codes`` in the redemption's
transaction; if a later snapshot (which replaces ``codes``) drops it again before HQ has heard
of it, the usage tables still hold the redemption and the next scan is ALREADY_REDEEMED.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from dataclasses import dataclass
from datetime import datetime

from edge_agent.domain import messages, token_check
from edge_agent.domain.code_format import normalise
from edge_agent.domain.code_record import (
    CodeFacts,
    CodeRecord,
    RedemptionInfo,
    Reservation,
    UsageFacts,
)
from edge_agent.domain.coupon_token import KeyLookup, TokenClaims, TokenFault, verify
from edge_agent.domain.decision import Refused
from edge_agent.domain.token_codec import campaign_ref, looks_like_token
from edge_agent.store.cache import CodeCache
from edge_agent.store.ledger import from_us, to_us


@dataclass(frozen=True, slots=True, kw_only=True)
class Scan:
    raw: str
    key: str  # the code it stands for (normalised), or the scanned text of a refused token
    claims: TokenClaims | None = None  # a genuine token
    refusal: Refused | None = None  # a token refused before any lookup


def scan(raw: str, keys: KeyLookup, now: datetime) -> Scan:
    if not looks_like_token(raw):
        return Scan(raw=raw, key=normalise(raw))
    result = verify(raw, keys, now)
    if isinstance(result, TokenClaims):
        return Scan(raw=raw, key=result.code, claims=result)
    scanned = raw.strip()
    if result.fault is TokenFault.EXPIRED and result.code is not None:
        return Scan(raw=raw, key=result.code, refusal=token_check.refusal(scanned, result))
    return Scan(raw=raw, key=scanned, refusal=token_check.refusal(scanned, result))


def resolve_campaign(conn: sqlite3.Connection, claims: TokenClaims) -> str | None:
    """The cached campaign the token refers to; None if none (or, astronomically unlikely,
    two campaigns share the 4-byte reference: refusing is the safe side)."""
    found = [
        str(cid)
        for (cid,) in conn.execute("SELECT campaign_id FROM campaigns")
        if campaign_ref(str(cid)) == claims.campaign_ref
    ]
    return found[0] if len(found) == 1 else None


# The store's own usage of a code, without needing its row in ``codes`` (cf. cache._CODE_SQL).
_USAGE_SQL = """
SELECT u.uses, r.redeemed_us, r.store_id, r.till_id, r.transaction_id,
       (SELECT member_id FROM code_links WHERE code = ?1)
FROM (SELECT ?1 AS code) AS k
LEFT JOIN code_usage AS u ON u.code = k.code
LEFT JOIN redemptions AS r ON r.id = u.last_redemption_id
"""
_CAMPAIGN_USAGE_SQL = "SELECT uses, money, store_uses FROM campaign_usage WHERE campaign_id = ?"
_MEMBER_USES_SQL = "SELECT uses FROM member_code_usage WHERE code = ? AND member_id = ?"
_VELOCITY_SQL = (
    "SELECT redeemed_us FROM redemptions WHERE member_id = ? AND redeemed_us > ? "
    "AND fully_reversed = 0 ORDER BY redeemed_us DESC LIMIT ?"
)
_HOLDS_SQL = (
    "SELECT till_id, store_id, transaction_id, until_us FROM reservations "
    "WHERE code = ? AND until_us > ?"
)


def foreign_facts(
    cache: CodeCache, claims: TokenClaims, member_id: str | None, now: datetime
) -> CodeFacts | Refused:
    """Facts for a genuine token whose code this cache does not hold (binding already checked).

    The reads mirror ``CodeCache.lookup`` for a record that comes from the claims.
    """
    conn = cache.conn
    campaign_id = resolve_campaign(conn, claims)
    promotion = None if campaign_id is None else cache.promotion(campaign_id)
    if campaign_id is None or promotion is None:
        return messages.token_campaign_unknown(claims.code, claims.store_id)
    code = claims.code
    uses, last_us, last_store, last_till, last_txn, linked = conn.execute(
        _USAGE_SQL, (code,)
    ).fetchone()
    record = token_check.record_from_claims(claims, campaign_id=campaign_id, member_id=member_id)
    if linked is not None:
        record = dataclasses.replace(record, linked_member_id=str(linked))
    c_row = conn.execute(_CAMPAIGN_USAGE_SQL, (campaign_id,)).fetchone()
    c_uses, c_money, c_store = c_row if c_row is not None else (0, 0, 0)
    subject = member_id or record.linked_member_id or record.member_id
    member_uses = 0
    recent: tuple[datetime, ...] = ()
    if subject is not None:
        got = conn.execute(_MEMBER_USES_SQL, (code, subject)).fetchone()
        member_uses = 0 if got is None else int(got[0])
        limit = promotion.limits.member_velocity_count
        if limit is not None:
            since = to_us(now - promotion.limits.member_velocity_window)
            rows = conn.execute(_VELOCITY_SQL, (subject, since, max(100, limit + 1)))
            recent = tuple(from_us(us) for (us,) in rows)
    holds = tuple(
        Reservation(till_id=t, store_id=s, transaction_id=x, until=from_us(u))
        for t, s, x, u in conn.execute(_HOLDS_SQL, (code, to_us(now)))
    )
    last = (
        None
        if last_us is None
        else RedemptionInfo(
            at=from_us(last_us), store_id=last_store, till_id=last_till, transaction_id=last_txn
        )
    )
    usage = UsageFacts(
        code_uses=uses or 0,
        member_code_uses=member_uses,
        member_recent_redemptions=recent,
        campaign_uses=c_uses,
        campaign_money=c_money,
        store_campaign_uses=c_store,
        reservations=holds,
        last_redemption=last,
    )
    member = cache.member(member_id) if member_id is not None else None
    return CodeFacts(record=record, promotion=promotion, member=member, usage=usage)


def remember(conn: sqlite3.Connection, record: CodeRecord) -> None:
    """Put a token's code into ``codes`` (inside the caller's transaction), unless present."""
    conn.execute(
        "INSERT OR IGNORE INTO codes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            record.code,
            record.campaign_id,
            record.member_id,
            record.status.value,
            record.channel,
            record.variant,
            None if record.issued_at is None else int(record.issued_at.timestamp()),
            None if record.expires_at is None else int(record.expires_at.timestamp()),
            None,  # a link lives in code_links, which a snapshot never replaces
        ),
    )
