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

from edge_agent.cache.code_cache import CodeCache
from edge_agent.domain import messages, token_check
from edge_agent.domain.code_format import normalise
from edge_agent.domain.code_record import CodeFacts, CodeRecord
from edge_agent.domain.coupon_token import KeyLookup, TokenClaims, TokenFault, verify
from edge_agent.domain.decision import Refused
from edge_agent.domain.token_codec import campaign_ref, looks_like_token


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


# A link lives in ``code_links``, which a snapshot never replaces: it holds even for a code that
# is not in ``codes``.
_LINK_SQL = "SELECT member_id FROM code_links WHERE code = ?"


def foreign_facts(
    cache: CodeCache, claims: TokenClaims, member_id: str | None, now: datetime
) -> CodeFacts | Refused:
    """Facts for a genuine token whose code this cache does not hold (binding already checked).

    The record comes from the claims (with any link overlay); the usage reads are
    ``CodeCache.facts_for``'s, the same as ``lookup``'s.
    """
    campaign_id = resolve_campaign(cache.conn, claims)
    if campaign_id is None:
        return messages.token_campaign_unknown(claims.code, claims.store_id)
    record = token_check.record_from_claims(claims, campaign_id=campaign_id, member_id=member_id)
    linked = cache.conn.execute(_LINK_SQL, (claims.code,)).fetchone()
    if linked is not None:
        record = dataclasses.replace(record, linked_member_id=str(linked[0]))
    facts = cache.facts_for(record, member_id, now)
    if facts is None:  # only if the campaign vanished since ``resolve_campaign`` read it
        return messages.token_campaign_unknown(claims.code, claims.store_id)
    return facts


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
