"""Schema migration for the durable print queue (v4). (Initial; the printing work owns it.)"""

from __future__ import annotations

import sqlite_utils


def migrate(db: sqlite_utils.Database) -> None:
    """Print jobs survive restarts: a coupon is never lost because a printer failed."""
    db.execute(
        "CREATE TABLE print_jobs (id INTEGER PRIMARY KEY, code TEXT NOT NULL, "
        "transaction_id TEXT NOT NULL, document TEXT NOT NULL, state TEXT NOT NULL, "
        "attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, reprint_of INTEGER, "
        "created_us INTEGER NOT NULL, updated_us INTEGER NOT NULL)"
    )
    db.execute("CREATE INDEX print_jobs_open ON print_jobs (state, id)")
