"""Schema migration for the durable print queue (v4).

One row per print job. A coupon's first job is enqueued in the same SQLite transaction that
records the coupon's issue, so the two commit together or not at all; reprints are further rows
pointing at the job they repeat (``reprint_of``). States:

    pending  -> printing   claimed by the print worker (lease_until_us bounds the claim)
    printing -> printed    the printer took every byte and reported no problem after it
    printing -> pending    it failed; retried at next_attempt_us (capped exponential backoff)
    printing -> pending    the worker died mid-job: the lease ran out or the worker restarted;
                           retried with reprint = 1, since part of the coupon may be on paper
    pending  -> abandoned  not printed within printer.give_up_after_s; the coupon stays issued
                           and can be reprinted on demand
"""

from __future__ import annotations

import sqlite_utils


def migrate(db: sqlite_utils.Database) -> None:
    """Print jobs survive restarts: a coupon is never lost because a printer failed."""
    db.execute(
        "CREATE TABLE print_jobs (id INTEGER PRIMARY KEY, code TEXT NOT NULL, "
        "transaction_id TEXT NOT NULL, document TEXT NOT NULL, "
        "state TEXT NOT NULL CHECK (state IN ('pending', 'printing', 'printed', 'abandoned')), "
        "reprint INTEGER NOT NULL DEFAULT 0, reprint_of INTEGER REFERENCES print_jobs (id), "
        "attempts INTEGER NOT NULL DEFAULT 0, next_attempt_us INTEGER NOT NULL, "
        "lease_until_us INTEGER, last_error TEXT, printed_us INTEGER, "
        "created_us INTEGER NOT NULL, updated_us INTEGER NOT NULL)"
    )
    # One first job per coupon: enqueueing the same issue twice (a retried request) is a no-op.
    db.execute(
        "CREATE UNIQUE INDEX print_jobs_first ON print_jobs (transaction_id, code) "
        "WHERE reprint_of IS NULL"
    )
    # The worker's scan: open jobs only, so printed history never slows it down.
    db.execute(
        "CREATE INDEX print_jobs_open ON print_jobs (next_attempt_us, id) "
        "WHERE state IN ('pending', 'printing')"
    )
    db.execute("CREATE INDEX print_jobs_by_txn ON print_jobs (transaction_id, id)")
