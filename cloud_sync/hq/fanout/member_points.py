"""What every store's boxes must know of a member's points: HQ's balance and what it includes.

Theory of operation
-------------------
A box bounds offline burns by HQ's balance of the member plus its own postings HQ has not
applied (``cloud_sync/contract/points_balance.py``). Every booking that moves a member account
queues the member in ``points_balance_queue`` (``ledger/book.py``), and so does the till
intake when a member's marks move (``ledger/intake.py``), in the transaction that books. ``take``
turns a page of that queue into one ``member.points`` change per member (state now: the
regular account's balance and the marks of every box, ``encode_marks``) and deletes the rows it
took, in the caller's transaction (the fan-out step's), so a crash re-does the page and a
member booked twice between steps is told once, with the later state.

A member who has bought at more than ``points_balance.MAX_BOXES`` boxes keeps the marks of
the first of them in box id order (seqs of different boxes say nothing of recency); a box
whose mark is cut counts its postings as unsynced and over-estimates by its own booked
postings, which the offline allowance bounds. (512 boxes is beyond any real shopper.)

``balances`` is the same state for every member with a regular account, in the snapshot's
``points_balances`` rows (``snapshot_format.POINTS_BALANCES_COLUMNS``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Final

from cloud_sync.contract.delta import Change, Op
from cloud_sync.contract.points_balance import MAX_BOXES, encode_marks
from cloud_sync.hq.ingest.event_store import Row, Tx

PAGE: Final = 5_000  # members per step
CHUNK: Final = 1_000  # members per lookup: well inside SQLite's 32,766 parameters
REGULAR: Final = "regular"


def take(tx: Tx, *, limit: int = PAGE) -> list[Change]:
    """Up to ``limit`` queued members, taken off the queue; a ``member.points`` for each."""
    rows = tx.query(
        "SELECT programme, member_id FROM points_balance_queue "
        "ORDER BY programme, member_id LIMIT ?",
        (limit,),
    )
    if not rows:
        return []
    tx.execute_many("DELETE FROM points_balance_queue WHERE programme = ? AND member_id = ?", rows)
    return [
        Change(
            op=Op.MEMBER_POINTS,
            fields={"member_id": m, "programme": p, "balance": b, "marks": marks},
        )
        for m, p, b, marks in _states(tx, rows)
    ]


def balances(tx: Tx) -> list[Row]:
    """Every member's regular balance and marks, in ``POINTS_BALANCES_COLUMNS`` order."""
    members = tx.query(
        "SELECT programme, holder FROM ledger_accounts WHERE holder <> '' AND category = ? "
        "ORDER BY programme, holder",
        (REGULAR,),
    )
    out: list[Row] = []
    for start in range(0, len(members), PAGE):
        out.extend(_states(tx, members[start : start + PAGE]))
    return out


def _states(tx: Tx, members: Sequence[Row]) -> list[Row]:
    """(member, programme, balance, marks text) of each (programme, member)."""
    wanted = [(str(p), str(m)) for p, m in members]
    by_programme: dict[str, list[str]] = defaultdict(list)
    for p, m in wanted:
        by_programme[p].append(m)
    found_balance: dict[tuple[str, str], int] = {}
    found_marks: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for programme, holders in by_programme.items():
        for start in range(0, len(holders), CHUNK):
            chunk = holders[start : start + CHUNK]
            marks_sql = ", ".join("?" * len(chunk))
            for m, b in tx.query(
                "SELECT holder, balance FROM ledger_accounts WHERE programme = ? "  # noqa: S608
                f"AND category = '{REGULAR}' AND holder IN ({marks_sql})",
                (programme, *chunk),
            ):
                found_balance[(programme, str(m))] = int(b)
            for m, box, seq in tx.query(
                "SELECT member_id, box_id, seq FROM ledger_marks WHERE programme = ? "  # noqa: S608
                f"AND member_id IN ({marks_sql}) ORDER BY member_id, box_id",
                (programme, *chunk),
            ):
                marks = found_marks[(programme, str(m))]
                if len(marks) < MAX_BOXES:
                    marks[str(box)] = int(seq)
    return [
        (m, p, found_balance.get((p, m), 0), encode_marks(found_marks.get((p, m), {})))
        for p, m in wanted
    ]
