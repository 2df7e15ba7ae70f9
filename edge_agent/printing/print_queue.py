"""The durable print queue: receipt coupons waiting for (or done with) the printer.

Theory of operation
-------------------
The issuing path calls ``enqueue`` inside its own open transaction, the one that records the
coupon issue: ``enqueue`` never begins or commits, so a coupon and its first print job commit
together or not at all. Enqueueing the same (transaction, code) again returns the existing job,
so a retried checkout never queues the coupon twice.

The print worker, on its own connection, ``claim``s the oldest due job (BEGIN IMMEDIATE; the
claim is a lease), prints it with no transaction open (never hold the write lock during printer
I/O), then records ``mark_printed`` or ``mark_failed`` (retry after a capped, doubling delay).
A job whose claim was never confirmed (the agent died mid-job) becomes due again when its lease
runs out, or at once through ``recover_interrupted`` when the worker starts, and is printed as a
REPRINT because part of it may already be on paper. Printer failures only ever move a job
between states; they never touch the coupon's issue, so a coupon is never lost or issued twice
because a printer failed. See ``print_schema.py`` for the states.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path

from edge_agent.cache.timestamps import from_us, to_us
from edge_agent.errors import CacheError
from edge_agent.printing.document import CouponDocument, DocumentError

_SCHEMA_VERSION = 7  # print_jobs arrives with v4 (print_schema.py), keyed by till from v7
_SELECT = (
    "SELECT id, code, till_id, transaction_id, document, state, reprint, reprint_of, attempts, "
    "next_attempt_us, last_error, created_us, printed_us FROM print_jobs "
)
_BY_ID = _SELECT + "WHERE id = ?"
_DUE = (
    _SELECT + "WHERE state IN ('pending', 'printing') AND next_attempt_us <= ? "
    "ORDER BY next_attempt_us, id LIMIT 1"
)
_OPEN = _SELECT + "WHERE state IN ('pending', 'printing') ORDER BY id LIMIT ?"
_BY_TXN = _SELECT + "WHERE till_id = ? AND transaction_id = ? ORDER BY id"


class JobState(StrEnum):
    PENDING = "pending"
    PRINTING = "printing"
    PRINTED = "printed"
    ABANDONED = "abandoned"


class PrintStatus(StrEnum):
    """What the POS is told about a transaction's coupon."""

    PRINTED = "printed"
    PENDING = "print_pending"
    ABANDONED = "print_abandoned"


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    base: timedelta = timedelta(seconds=2)
    cap: timedelta = timedelta(seconds=60)
    give_up_after: timedelta = timedelta(minutes=15)
    lease: timedelta = timedelta(seconds=60)

    def delay(self, attempts: int) -> timedelta:
        """Wait before the next try after ``attempts`` failed ones: base, 2x, 4x... capped."""
        factor = 2 ** min(max(attempts - 1, 0), 30)
        delay: timedelta = min(self.cap, self.base * factor)
        return delay


@dataclass(frozen=True, slots=True, kw_only=True)
class PrintJob:
    id: int
    code: str
    till_id: str  # the sale's till: a sale is (till, transaction id)
    transaction_id: str
    document: CouponDocument  # with ``reprint`` set when this print must say REPRINT
    state: JobState
    reprint_of: int | None
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    printed_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionPrintStatus:
    till_id: str
    transaction_id: str
    code: str
    status: PrintStatus  # of the newest job (a reprint request makes it pending again)
    job_id: int
    attempts: int
    last_error: str | None
    printed_at: datetime | None  # when the newest job printed
    ever_printed: bool  # any job of this coupon printed, reprints included
    qr_payload: str  # for the POS to show on screen while printing is pending
    display_code: str


def _job(row: tuple[object, ...]) -> PrintJob:
    (job_id, code, till, txn, doc, state, reprint, reprint_of, attempts,
     next_us, error, created_us, printed_us) = row  # fmt: skip
    document = CouponDocument.from_json(str(doc))
    return PrintJob(
        id=int(str(job_id)),
        code=str(code),
        till_id=str(till),
        transaction_id=str(txn),
        document=document.as_reprint() if reprint else document,
        state=JobState(str(state)),
        reprint_of=None if reprint_of is None else int(str(reprint_of)),
        attempts=int(str(attempts)),
        next_attempt_at=from_us(int(str(next_us))),
        last_error=None if error is None else str(error),
        created_at=from_us(int(str(created_us))),
        printed_at=None if printed_us is None else from_us(int(str(printed_us))),
    )


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT on a connection in autocommit mode (the worker's own)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def connect(path: Path | str, *, busy_timeout_ms: int = 5_000) -> sqlite3.Connection:
    """A second connection to an existing cache file, for the print worker's thread.

    WAL lets it write beside the API's connection; ``busy_timeout`` makes a BEGIN IMMEDIATE
    wait for the other writer's short transaction instead of failing at once.
    """
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if mode != "wal" or version < _SCHEMA_VERSION:
            raise CacheError(
                f"{path}: not an opened cache (journal_mode={mode}, version={version}); "
                "open it with CodeCache.open first"
            )
        conn.execute("PRAGMA synchronous = FULL")  # a 'printed' mark survives a power cut
        conn.execute("PRAGMA wal_autocheckpoint = 0")  # the agent checkpoints on its timer
    except BaseException:
        conn.close()
        raise
    return conn


def enqueue(
    conn: sqlite3.Connection,
    *,
    code: str,
    till_id: str,
    transaction_id: str,
    document: CouponDocument,
    now: datetime,
) -> int:
    """Queue the first print of a coupon; returns the job id. Call it inside the transaction
    that records the issue (it neither begins nor commits). Idempotent per (sale, code)."""
    us = to_us(now)
    conn.execute(
        "INSERT INTO print_jobs (code, till_id, transaction_id, document, state, "
        "next_attempt_us, created_us, updated_us) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?) "
        "ON CONFLICT (till_id, transaction_id, code) WHERE reprint_of IS NULL DO NOTHING",
        (code, till_id, transaction_id, _first_print(document).to_json(), us, us, us),
    )
    row = conn.execute(
        "SELECT id FROM print_jobs WHERE till_id = ? AND transaction_id = ? AND code = ? "
        "AND reprint_of IS NULL",
        (till_id, transaction_id, code),
    ).fetchone()
    return int(row[0])


def _first_print(document: CouponDocument) -> CouponDocument:
    # The stored document is always the first print's; the REPRINT mark comes from the row.
    return replace(document, reprint=False)


def reprint(
    conn: sqlite3.Connection,
    *,
    till_id: str,
    transaction_id: str,
    now: datetime,
    code: str | None = None,
) -> int | None:
    """Queue a reprint of a sale's coupon (a new job marked REPRINT, linked to the first one);
    None if the sale has no coupon. One statement: safe inside or outside a caller's
    transaction."""
    us = to_us(now)
    cur = conn.execute(
        "INSERT INTO print_jobs (code, till_id, transaction_id, document, state, reprint, "
        "reprint_of, next_attempt_us, created_us, updated_us) "
        "SELECT code, till_id, transaction_id, document, 'pending', 1, id, ?, ?, ? "
        "FROM print_jobs WHERE till_id = ? AND transaction_id = ? AND reprint_of IS NULL "
        "AND (? IS NULL OR code = ?) ORDER BY id LIMIT 1",
        (us, us, us, till_id, transaction_id, code, code),
    )
    return cur.lastrowid if cur.rowcount == 1 else None


def claim(conn: sqlite3.Connection, *, now: datetime, policy: RetryPolicy) -> PrintJob | None:
    """Take the oldest due job for printing (its own BEGIN IMMEDIATE: call it on the worker's
    connection, outside any transaction). Jobs past ``give_up_after`` are abandoned on the way;
    a job whose lease ran out is handed out again as a reprint."""
    us = to_us(now)
    with _immediate(conn):
        conn.execute(
            "UPDATE print_jobs SET state = 'abandoned', lease_until_us = NULL, updated_us = ? "
            "WHERE state IN ('pending', 'printing') AND next_attempt_us <= ? AND created_us < ?",
            (us, us, to_us(now - policy.give_up_after)),
        )
        while True:
            row = conn.execute(_DUE, (us,)).fetchone()
            if row is None:
                return None
            lease = to_us(now + policy.lease)
            # A 'printing' row here is an expired lease: its worker died mid-job.
            conn.execute(
                "UPDATE print_jobs SET reprint = reprint OR state = 'printing', "
                "state = 'printing', attempts = attempts + 1, next_attempt_us = ?, "
                "lease_until_us = ?, updated_us = ? WHERE id = ?",
                (lease, lease, us, row[0]),
            )
            try:
                return _job(conn.execute(_BY_ID, (row[0],)).fetchone())
            except DocumentError as exc:
                # Unprintable forever: set it aside (visible in status) rather than retry it.
                conn.execute(
                    "UPDATE print_jobs SET state = 'abandoned', last_error = ? WHERE id = ?",
                    (f"unreadable document: {exc}", row[0]),
                )


def mark_printed(conn: sqlite3.Connection, job_id: int, *, now: datetime) -> bool:
    """The printer took the whole job. False if the job was no longer ours to confirm."""
    us = to_us(now)
    cur = conn.execute(
        "UPDATE print_jobs SET state = 'printed', printed_us = ?, lease_until_us = NULL, "
        "last_error = NULL, updated_us = ? WHERE id = ? AND state = 'printing'",
        (us, us, job_id),
    )
    return cur.rowcount == 1


def mark_failed(
    conn: sqlite3.Connection,
    job_id: int,
    *,
    now: datetime,
    error: str,
    may_have_printed: bool,
    policy: RetryPolicy,
) -> datetime | None:
    """Back to pending, due after the backoff; returns when. ``may_have_printed``: part of the
    coupon may be on paper, so the retry says REPRINT."""
    row = conn.execute("SELECT attempts FROM print_jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        return None
    due = now + policy.delay(int(row[0]))
    cur = conn.execute(
        "UPDATE print_jobs SET state = 'pending', reprint = reprint OR ?, last_error = ?, "
        "next_attempt_us = ?, lease_until_us = NULL, updated_us = ? "
        "WHERE id = ? AND state = 'printing'",
        (int(may_have_printed), error[:500], to_us(due), to_us(now), job_id),
    )
    return due if cur.rowcount == 1 else None


def recover_interrupted(conn: sqlite3.Connection, *, now: datetime) -> int:
    """At worker start: every job still 'printing' was cut off by a crash or restart. Make it
    due now, as a reprint. Returns how many. Only one worker may serve a cache file."""
    us = to_us(now)
    cur = conn.execute(
        # Due since it was queued: interrupted jobs keep their place at the head of the line.
        "UPDATE print_jobs SET state = 'pending', reprint = 1, next_attempt_us = created_us, "
        "lease_until_us = NULL, last_error = coalesce(last_error, 'interrupted'), updated_us = ? "
        "WHERE state = 'printing'",
        (us,),
    )
    return cur.rowcount


def next_due(conn: sqlite3.Connection) -> datetime | None:
    """When the next open job becomes due (None: nothing open)."""
    row = conn.execute(
        "SELECT min(next_attempt_us) FROM print_jobs WHERE state IN ('pending', 'printing')"
    ).fetchone()
    return None if row[0] is None else from_us(int(row[0]))


def open_jobs(conn: sqlite3.Connection, *, limit: int = 100) -> list[PrintJob]:
    """Jobs not yet printed (pending or printing), oldest first."""
    rows = conn.execute(
        _OPEN,
        (limit,),
    ).fetchall()
    return [_job(r) for r in rows]


def get(conn: sqlite3.Connection, job_id: int) -> PrintJob | None:
    row = conn.execute(_BY_ID, (job_id,)).fetchone()
    return None if row is None else _job(row)


def transaction_status(
    conn: sqlite3.Connection, *, till_id: str, transaction_id: str
) -> TransactionPrintStatus | None:
    """What to tell the POS about this sale's coupon print; None: no coupon queued."""
    rows = conn.execute(_BY_TXN, (till_id, transaction_id)).fetchall()
    if not rows:
        return None
    jobs = [_job(r) for r in rows]
    newest = jobs[-1]
    status = {
        JobState.PRINTED: PrintStatus.PRINTED,
        JobState.ABANDONED: PrintStatus.ABANDONED,
    }.get(newest.state, PrintStatus.PENDING)
    return TransactionPrintStatus(
        till_id=till_id,
        transaction_id=transaction_id,
        code=newest.code,
        status=status,
        job_id=newest.id,
        attempts=newest.attempts,
        last_error=newest.last_error,
        printed_at=newest.printed_at,
        ever_printed=any(j.state is JobState.PRINTED for j in jobs),
        qr_payload=newest.document.qr_payload,
        display_code=newest.document.display_code,
    )
