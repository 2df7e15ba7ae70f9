"""Schema migration for receipt coupon issuing (v3). (Initial; the issuing work owns it.)"""

from __future__ import annotations

import sqlite_utils


def migrate(db: sqlite_utils.Database) -> None:
    """Tables for coupons this store issued at checkout."""
    db.execute(
        "CREATE TABLE coupon_issues (transaction_id TEXT PRIMARY KEY, member_id TEXT, "
        "campaign_id TEXT, code TEXT, withheld INTEGER NOT NULL, issued_us INTEGER NOT NULL, "
        "response TEXT NOT NULL) WITHOUT ROWID"
    )
    db.execute("CREATE INDEX coupon_issues_by_member ON coupon_issues (member_id, issued_us)")
