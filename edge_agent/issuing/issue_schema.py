"""Schema migration for receipt coupon issuing (v3), and the queries over its table.

``coupon_issues`` holds one row per checkout that was issued a coupon or held out of one:

* keyed by the sale (till and transaction id, from v7), which makes issuing idempotent: a
  retried checkout finds its row and gets the stored answer (``response``, the outcome as JSON),
  never a second coupon, and ``fingerprint`` tells a retry from another checkout;
* indexed by (member, time): the member's recent issues are what the frequency cap and the
  velocity limit count. Held-out checkouts count too, so the control group is "issued" at the
  same cadence as the treated group and the two stay comparable. The fleet's other boxes'
  issues, from HQ, count beside them (``issues_elsewhere``, v12);
* carrying the minted code's whole row: a snapshot from HQ replaces the ``codes`` table, and
  until HQ has learnt this store's codes from the outbox, ``RESTORE_CODES_SQL`` puts them back.

Refusals are not stored: they changed nothing, so computing one again is harmless (the
redemption service does the same), and the table stays as small as the coupons issued.
"""

from __future__ import annotations

import sqlite3

import sqlite_utils

CHANNEL = "receipt"


def migrate(db: sqlite_utils.Database) -> None:
    """Tables for coupons this store issued (or held out) at checkout."""
    db.execute(
        "CREATE TABLE coupon_issues ("
        "transaction_id TEXT PRIMARY KEY, "
        "withheld INTEGER NOT NULL, "  # 1: holdout, no code
        "member_id TEXT, "
        "campaign_id TEXT NOT NULL, "
        "variant TEXT NOT NULL, "
        "code TEXT, "  # NULL when withheld
        "issued_us INTEGER NOT NULL, "
        "expires_at INTEGER NOT NULL, "  # epoch seconds, as in codes
        "response TEXT NOT NULL"
        ") WITHOUT ROWID"
    )
    db.execute(
        "CREATE INDEX coupon_issues_by_member ON coupon_issues (member_id, issued_us) "
        "WHERE member_id IS NOT NULL"
    )
    db.execute(
        "CREATE UNIQUE INDEX coupon_issues_by_code ON coupon_issues (code) WHERE code IS NOT NULL"
    )


# From v7 (till_scope_schema.py) the table is keyed by the sale: (till, transaction id).
STORED_SQL = (
    "SELECT fingerprint, response FROM coupon_issues WHERE till_id = ? AND transaction_id = ?"
)
INSERT_SQL = "INSERT INTO coupon_issues VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
# The member's issues here and, from HQ, at the fleet's other boxes (v12,
# ``edge_agent/follow/issues_elsewhere.py``): both are what the caps count. ?1 member, ?2 since
# (exclusive), ?3 how many; each side is read newest first through its (member, time) index.
RECENT_SQL = (
    "SELECT issued_us FROM coupon_issues WHERE member_id = ?1 AND issued_us > ?2 "
    "UNION ALL SELECT issued_us FROM issues_elsewhere WHERE member_id = ?1 AND issued_us > ?2 "
    "ORDER BY issued_us DESC LIMIT ?3"
)
# Column order of schema.CODES_DDL; one fixed statement per target table (no SQL is built).
_RESTORE_SELECT = (
    " SELECT code, campaign_id, member_id, 'active', 'receipt', variant, issued_us / 1000000, "
    "expires_at, NULL FROM coupon_issues WHERE code IS NOT NULL AND expires_at > ?"
)
RESTORE_CODES_SQL = {
    "codes": "INSERT OR IGNORE INTO codes" + _RESTORE_SELECT,
    "codes_next": "INSERT OR IGNORE INTO codes_next" + _RESTORE_SELECT,
}


def restore_codes(conn: sqlite3.Connection, *, table: str, now_s: int) -> int:
    """Re-add this store's unexpired minted codes to ``table`` (``codes`` or ``codes_next``)
    where HQ's snapshot lacks them; HQ's own row (e.g. revoked) wins. Call inside the caller's
    transaction; returns how many rows were added."""
    sql = RESTORE_CODES_SQL.get(table)
    if sql is None:
        raise ValueError(f"not a codes table: {table!r}")
    return int(conn.execute(sql, (now_s,)).rowcount)


def prune(conn: sqlite3.Connection, *, expired_before_s: int, issued_before_us: int) -> int:
    """Delete rows no cap, retry or restore can need any more: the coupon expired and the issue
    left every cap window. Call inside the caller's transaction."""
    return int(
        conn.execute(
            "DELETE FROM coupon_issues WHERE expires_at < ? AND issued_us < ?",
            (expired_before_s, issued_before_us),
        ).rowcount
    )
