"""Schema migration v7: every sale, hold and stored answer belongs to the till that made it.

A POS numbers its own sales, so a transaction id is only unique within one till: till 1's
``T-1001`` and till 2's ``T-1001`` are two sales. Before v7 the store keyed holds, redemptions,
stored answers, receipt coupon issues and print jobs by transaction id alone, so a second till
reusing an id was taken for the same sale (it got the other sale's stored answer, could commit a
code the other till held, void its holds or reprint its coupon). From v7 each of those is keyed
by (till, transaction id); the store is the cache's own, so it need not be in the key.

A return is its own transaction at the returning till (often the service desk): its stored
answer is keyed by (returning till, return id, code), and it names the sale it gives money back
on by that sale's till and transaction id.

Stored answers also carry the fingerprint of the request they answered (``fingerprint``): a
retry must be the same request, and one that reuses the key with another basket, other codes or
another member is refused (409), the way payment APIs treat a reused idempotency key.

SQLite cannot change a primary key or a UNIQUE constraint in place, so the four keyed tables are
rebuilt (create, copy, drop, rename) inside the migration's one transaction. Rows written before
v7 are given the till that the store's own records name (a redemption's or a hold's till);
stored answers no record can place, and receipt coupon issues, get the empty till id: no real
till has it, so at worst a retry of a sale that was in flight during the upgrade is decided
afresh.
"""

from __future__ import annotations

import sqlite_utils


def migrate(db: sqlite_utils.Database) -> None:
    """Key holds, redemptions, reversals, stored answers, issues and print jobs by till."""
    for sql in (
        # Holds: one per (code, sale).
        "CREATE TABLE reservations_v7 (code TEXT NOT NULL, till_id TEXT NOT NULL, "
        "transaction_id TEXT NOT NULL, store_id TEXT NOT NULL, cashier_id TEXT NOT NULL, "
        "member_id TEXT, created_us INTEGER NOT NULL, until_us INTEGER NOT NULL, "
        "PRIMARY KEY (code, till_id, transaction_id)) WITHOUT ROWID",
        "INSERT INTO reservations_v7 SELECT code, till_id, transaction_id, store_id, cashier_id, "
        "member_id, created_us, until_us FROM reservations",
        "DROP TABLE reservations",
        "ALTER TABLE reservations_v7 RENAME TO reservations",
        # UNIQUE (code, till_id, transaction_id): one sale is never credited twice for one code.
        "CREATE TABLE redemptions_v7 (id INTEGER PRIMARY KEY, code TEXT NOT NULL, "
        "transaction_id TEXT NOT NULL, campaign_id TEXT NOT NULL, member_id TEXT, "
        "store_id TEXT NOT NULL, till_id TEXT NOT NULL, cashier_id TEXT NOT NULL, "
        "channel TEXT NOT NULL, variant TEXT NOT NULL, amount INTEGER NOT NULL, "
        "reversed_amount INTEGER NOT NULL DEFAULT 0, fully_reversed INTEGER NOT NULL DEFAULT 0, "
        "redeemed_us INTEGER NOT NULL, UNIQUE (code, till_id, transaction_id))",
        "INSERT INTO redemptions_v7 SELECT id, code, transaction_id, campaign_id, member_id, "
        "store_id, till_id, cashier_id, channel, variant, amount, reversed_amount, "
        "fully_reversed, redeemed_us FROM redemptions",
        "DROP TABLE redemptions",
        "ALTER TABLE redemptions_v7 RENAME TO redemptions",
        "CREATE INDEX redemptions_by_member ON redemptions (member_id, redeemed_us) "
        "WHERE member_id IS NOT NULL",
        # A return is keyed by the returning till's own return id.
        "CREATE TABLE reversals_v7 (redemption_id INTEGER NOT NULL, till_id TEXT NOT NULL, "
        "return_id TEXT NOT NULL, amount INTEGER NOT NULL, reversed_us INTEGER NOT NULL, "
        "cashier_id TEXT NOT NULL, PRIMARY KEY (redemption_id, till_id, return_id))",
        "INSERT INTO reversals_v7 SELECT redemption_id, till_id, return_id, amount, reversed_us, "
        "cashier_id FROM reversals",
        "DROP TABLE reversals",
        "ALTER TABLE reversals_v7 RENAME TO reversals",
        # Stored answers: (till, transaction, code, operation), and what they answered.
        "CREATE TABLE requests_v7 (till_id TEXT NOT NULL, transaction_id TEXT NOT NULL, "
        "code TEXT NOT NULL, operation TEXT NOT NULL, fingerprint TEXT NOT NULL, "
        "response TEXT NOT NULL, created_us INTEGER NOT NULL, "
        "PRIMARY KEY (till_id, transaction_id, code, operation)) WITHOUT ROWID",
        # Old reverse answers were keyed (sale, code, 'reverse:<return id>'); they move to the
        # returning till's (return id, code, 'reverse') like new ones.
        "INSERT OR IGNORE INTO requests_v7 SELECT "
        "coalesce((SELECT v.till_id FROM reversals AS v JOIN redemptions AS r "
        "ON r.id = v.redemption_id WHERE r.code = q.code AND r.transaction_id = q.transaction_id "
        "AND 'reverse:' || v.return_id = q.operation), ''), "
        "substr(q.operation, 9), q.code, 'reverse', '', q.response, q.created_us "
        "FROM requests AS q WHERE q.operation LIKE 'reverse:%'",
        "INSERT OR IGNORE INTO requests_v7 SELECT "
        "coalesce((SELECT r.till_id FROM redemptions AS r WHERE r.code = q.code "
        "AND r.transaction_id = q.transaction_id), (SELECT h.till_id FROM reservations AS h "
        "WHERE h.code = q.code AND h.transaction_id = q.transaction_id), ''), "
        "q.transaction_id, q.code, q.operation, '', q.response, q.created_us "
        "FROM requests AS q WHERE q.operation NOT LIKE 'reverse:%'",
        "DROP TABLE requests",
        "ALTER TABLE requests_v7 RENAME TO requests",
        "CREATE INDEX requests_by_age ON requests (created_us)",
        # Receipt coupons: one issue per sale.
        "CREATE TABLE coupon_issues_v7 (till_id TEXT NOT NULL, transaction_id TEXT NOT NULL, "
        "withheld INTEGER NOT NULL, member_id TEXT, campaign_id TEXT NOT NULL, "
        "variant TEXT NOT NULL, code TEXT, issued_us INTEGER NOT NULL, "
        "expires_at INTEGER NOT NULL, response TEXT NOT NULL, fingerprint TEXT NOT NULL, "
        "PRIMARY KEY (till_id, transaction_id)) WITHOUT ROWID",
        "INSERT INTO coupon_issues_v7 SELECT '', transaction_id, withheld, member_id, "
        "campaign_id, variant, code, issued_us, expires_at, response, '' FROM coupon_issues",
        "DROP TABLE coupon_issues",
        "ALTER TABLE coupon_issues_v7 RENAME TO coupon_issues",
        "CREATE INDEX coupon_issues_by_member ON coupon_issues (member_id, issued_us) "
        "WHERE member_id IS NOT NULL",
        "CREATE UNIQUE INDEX coupon_issues_by_code ON coupon_issues (code) WHERE code IS NOT NULL",
        # Print jobs: a sale's coupon is printed, and reprinted, for its own till only.
        "ALTER TABLE print_jobs ADD COLUMN till_id TEXT NOT NULL DEFAULT ''",
        "DROP INDEX print_jobs_first",
        "DROP INDEX print_jobs_by_txn",
        "CREATE UNIQUE INDEX print_jobs_first ON print_jobs (till_id, transaction_id, code) "
        "WHERE reprint_of IS NULL",
        "CREATE INDEX print_jobs_by_txn ON print_jobs (till_id, transaction_id, id)",
    ):
        db.execute(sql)
