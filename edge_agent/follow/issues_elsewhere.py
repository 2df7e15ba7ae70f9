"""Cache migration v12: receipt coupons other boxes issued to members, for the caps here.

The frequency cap and the velocity limit (``edge_agent/domain/offer_policy.py``) count a
member's receipt coupon issues over the whole programme, held-out checkouts included. This
box's own are in ``coupon_issues``; the fleet's come from HQ (``member.issued_elsewhere``
changes, ``cloud_sync/contract/delta.py``) into ``issues_elsewhere``:

    issues_elsewhere   box_id, till_id, transaction_id (the sale: the key), member_id,
                       issued_us (UTC epoch microseconds); indexed by (member, time), what
                       ``issue_schema.RECENT_SQL`` reads at every checkout

Only what a cap needs is kept: no campaign, no store, no code. An issue is a fact of its sale
and never changes, so a change applied twice is one row (``INSERT OR IGNORE``). A change
naming this box is its own issue seen from HQ, already in ``coupon_issues``, and is skipped;
unless ``coupon_issues`` holds no row of that sale (the cache was lost, or is new): then HQ's
word is all there is, as for redemptions (``delta_apply._holds``). A snapshot cut at a stream
position may carry HQ's recent issues (``snapshot_format``); they are added the same way.
Rows older than the policy's lookback go in the issuing service's housekeeping (``prune``).
"""

from __future__ import annotations

import sqlite3
from typing import Final

import sqlite_utils

from cloud_sync.contract.delta import Change
from cloud_sync.contract.snapshot_format import ISSUES_ELSEWHERE_COLUMNS, ISSUES_ELSEWHERE_DDL
from edge_agent.cache.timestamps import to_us

TABLE: Final = "issues_elsewhere"
_OWN_HELD_SQL: Final = "SELECT 1 FROM coupon_issues WHERE till_id = ? AND transaction_id = ?"
_COLUMNS: Final = ", ".join(ISSUES_ELSEWHERE_COLUMNS)
# From a snapshot attached as ``snap``: every other box's, and this box's own it holds no row
# of. Fixed names only: nothing here is input.
_FROM_SNAPSHOT_SQL: Final = (
    f"INSERT OR IGNORE INTO {TABLE} SELECT {_COLUMNS} FROM snap.{TABLE} AS s "  # noqa: S608
    "WHERE s.box_id != (SELECT value FROM meta WHERE key = 'box_id') OR NOT EXISTS "
    "(SELECT 1 FROM coupon_issues AS c "
    "WHERE c.till_id = s.till_id AND c.transaction_id = s.transaction_id)"
)


def migrate(db: sqlite_utils.Database) -> None:
    db.execute(ISSUES_ELSEWHERE_DDL.format(name=TABLE))
    db.execute(f"CREATE INDEX {TABLE}_by_member ON {TABLE} (member_id, issued_us)")


def apply(conn: sqlite3.Connection, c: Change, box: str) -> bool:
    """One ``member.issued_elsewhere`` inside the delta's transaction; False: skipped (this
    box's own issue, which it holds)."""
    if c["box_id"] == box and (
        conn.execute(_OWN_HELD_SQL, (c["till_id"], c["transaction_id"])).fetchone() is not None
    ):
        return False
    conn.execute(
        f"INSERT OR IGNORE INTO {TABLE} VALUES (?, ?, ?, ?, ?)",  # noqa: S608
        (c["box_id"], c["till_id"], c["transaction_id"], c["member_id"], to_us(c["at"])),
    )
    return True


def take_snapshot(conn: sqlite3.Connection) -> int:
    """Inside the snapshot swap (``snap`` attached, its table checked): add its issues; how
    many were new."""
    return int(conn.execute(_FROM_SNAPSHOT_SQL).rowcount)


def prune(conn: sqlite3.Connection, *, issued_before_us: int) -> int:
    """Inside the caller's transaction: forget the issues every cap window has left."""
    return int(
        conn.execute(
            f"DELETE FROM {TABLE} WHERE issued_us < ?",  # noqa: S608
            (issued_before_us,),
        ).rowcount
    )
