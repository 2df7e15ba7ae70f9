"""Schema migration for proximity offers (v13), and the queries over its table.

``proximity_offers`` holds one row per proximity offer this box gave or held out:

* indexed by (member, time): the member's recent offers are what the per-visit and per-day caps
  count (``proximity_rules.PastTrigger``). Held-out ones count too, so the control group is
  exposed at the treated group's cadence;
* carrying the minted code's whole row: a snapshot from HQ replaces the ``codes`` table, and
  until HQ has learnt this store's codes from the outbox, ``restore_codes`` puts them back (the
  same as ``issue_schema`` does for receipt coupons).

Suppressions other than the holdout change nothing and are only events.
"""

from __future__ import annotations

import sqlite3
from typing import Final

import sqlite_utils

CHANNEL: Final = "proximity"


def migrate(db: sqlite_utils.Database) -> None:
    """The proximity offers table, and the index a member's codes are found by at a tap
    (``CodeCache.member_codes``; snapshot loads build it on each new codes table)."""
    db.execute("CREATE INDEX codes_by_member ON codes (member_id) WHERE member_id IS NOT NULL")
    db.execute(
        "CREATE TABLE proximity_offers ("
        "event_id TEXT PRIMARY KEY, "  # the offer.triggered / offer.suppressed event
        "member_id TEXT NOT NULL, "
        "rule_id TEXT NOT NULL, "
        "campaign_id TEXT NOT NULL, "
        "variant TEXT NOT NULL, "
        "code TEXT, "  # NULL when held out
        "issued_us INTEGER NOT NULL, "
        "expires_at INTEGER NOT NULL"  # epoch seconds, as in codes
        ") WITHOUT ROWID"
    )
    db.execute("CREATE INDEX proximity_offers_by_member ON proximity_offers (member_id, issued_us)")
    db.execute(
        "CREATE UNIQUE INDEX proximity_offers_by_code ON proximity_offers (code) "
        "WHERE code IS NOT NULL"
    )


INSERT_SQL: Final = "INSERT INTO proximity_offers VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
RECENT_SQL: Final = (
    "SELECT rule_id, issued_us FROM proximity_offers WHERE member_id = ? AND issued_us > ? "
    "ORDER BY issued_us DESC LIMIT 100"
)
_RESTORE_SELECT = (
    " SELECT code, campaign_id, member_id, 'active', 'proximity', variant, issued_us / 1000000, "
    "expires_at, NULL FROM proximity_offers WHERE code IS NOT NULL AND expires_at > ?"
)
_RESTORE_SQL: Final = {
    "codes": "INSERT OR IGNORE INTO codes" + _RESTORE_SELECT,
    "codes_next": "INSERT OR IGNORE INTO codes_next" + _RESTORE_SELECT,
}


def restore_codes(conn: sqlite3.Connection, *, table: str, now_s: int) -> int:
    """Re-add this store's unexpired proximity codes to ``table`` where HQ's snapshot lacks
    them; HQ's own row (e.g. revoked) wins. Inside the caller's transaction."""
    sql = _RESTORE_SQL.get(table)
    if sql is None:
        raise ValueError(f"not a codes table: {table!r}")
    return int(conn.execute(sql, (now_s,)).rowcount)


def prune(conn: sqlite3.Connection, *, expired_before_s: int, issued_before_us: int) -> int:
    """Delete rows no cap or restore can need: the coupon expired and the offer left every cap
    window. Inside the caller's transaction."""
    return int(
        conn.execute(
            "DELETE FROM proximity_offers WHERE expires_at < ? AND issued_us < ?",
            (expired_before_s, issued_before_us),
        ).rowcount
    )
