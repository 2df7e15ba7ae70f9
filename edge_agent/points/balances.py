"""The balances HQ told the box: ``member.points`` deltas and the snapshot's points_balances.

HQ's ledger holds the truth; the box keeps, per member and programme, HQ's regular balance and
HQ's ``marks`` (``cloud_sync/contract/points_balance.py``), and reads its own mark out of them
once, when they arrive, so the till's query compares integers. What the box knows of a member is
then HQ's balance plus its own postings after its mark (``points_schema.KNOWN_SQL``).

A delta whose marks do not decode is HQ's fault: ``BadMarksError`` refuses that delta whole
(``delta_apply`` turns it into its ``bad_points`` refusal), as a broken identities body does.
A snapshot with such a row is refused whole (``SnapshotError``) before anything is touched.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cloud_sync.contract.decode_errors import DecodeError
from cloud_sync.contract.points_balance import decode_marks
from cloud_sync.contract.snapshot_format import POINTS_BALANCES_COLUMNS
from edge_agent.errors import SnapshotError
from edge_agent.points import points_schema


class BadMarksError(ValueError):
    """HQ's marks text does not decode; ``reason`` is the codec's stable reason."""

    def __init__(self, member_id: str, reason: str, detail: str) -> None:
        super().__init__(f"member {member_id}: marks {reason}: {detail}")
        self.member_id = member_id
        self.reason = reason


def own_mark(member_id: str, marks: str, box_id: str) -> int:
    """This box's seq in HQ's ``marks`` (0: HQ's balance includes none of its postings)."""
    try:
        return decode_marks(marks).get(box_id, 0)
    except DecodeError as exc:
        raise BadMarksError(member_id, exc.reason, str(exc)) from None


def put(
    conn: sqlite3.Connection,
    *,
    member_id: str,
    programme: str,
    balance: int,
    marks: str,
    box_id: str,
) -> None:
    """HQ's word on one member's balance, in place of the last (inside the caller's
    transaction). ``BadMarksError`` if ``marks`` does not decode: nothing written."""
    mark = own_mark(member_id, marks, box_id)
    conn.execute(points_schema.PUT_BALANCE_SQL, (member_id, programme, balance, marks, mark))


def check_snapshot(snap: sqlite3.Connection, path: Path) -> bool:
    """Whether the snapshot carries points balances (an HQ from before them does not);
    SnapshotError if it carries a table other than the agreed one, or a row that is wrong."""
    found = tuple(r[1] for r in snap.execute("PRAGMA table_info(points_balances)"))
    if not found:
        return False
    if found != POINTS_BALANCES_COLUMNS:
        raise SnapshotError(f"{path}: table points_balances has columns {found}")
    rows = snap.execute("SELECT member_id, programme, balance, marks FROM points_balances")
    for member_id, programme, balance, marks in rows:
        if not isinstance(member_id, str) or not isinstance(programme, str):
            raise SnapshotError(f"{path}: points balance row {member_id!r} is malformed")
        if type(balance) is not int or not isinstance(marks, str):
            raise SnapshotError(f"{path}: points balance of member {member_id!r} is malformed")
        try:
            decode_marks(marks)
        except DecodeError as exc:
            why = f"{exc.reason}: {exc}"
            raise SnapshotError(f"{path}: points marks of member {member_id!r}: {why}") from None
    return True


def take_snapshot(conn: sqlite3.Connection, *, box_id: str) -> int:
    """Inside the snapshot swap (``snap`` attached and checked): HQ's balances in place of all
    the box held. Returns how many were taken."""
    conn.execute("DELETE FROM points_balances")
    rows = conn.execute(
        "SELECT member_id, programme, balance, marks FROM snap.points_balances "
        "ORDER BY member_id, programme"
    ).fetchall()
    for member_id, programme, balance, marks in rows:
        put(
            conn,
            member_id=member_id,
            programme=programme,
            balance=balance,
            marks=marks,
            box_id=box_id,
        )
    return len(rows)
