"""What every store's boxes must count of the receipt coupons issued at each checkout.

Theory of operation
-------------------
A box caps how often a member gets a receipt coupon (DOMAIN.md section 3: at most one a month
per programme) and how fast (section 4: velocity), counting held-out checkouts as issues so the
control group keeps the treated group's cadence. Counted at one box only, a member gets one at
store 1 and another at store 2 the same day. So ingest queues every stored ``coupon.issued`` and
``coupon.withheld`` that names a member (``issue_queue``, in the transaction that stores the
event: none missed, none queued twice), and ``take`` turns a page of the queue into one
``member.issued_elsewhere`` change per issue, records the issue in ``member_issues`` and deletes
the rows it took, all in the caller's transaction (the fan-out step's, with the deltas made of
the changes): a crash re-does the page, never half of it.

An issue is a fact keyed by its sale (box, till, transaction id: a POS numbers its sales per
till), never changed afterwards, so a box applying it twice, or hearing of its own, keeps one
row. The change carries only what a cap needs: the member, where and when, and the sale's key;
not the campaign (the caps count the whole programme) nor whether it was held out (both count).

``member_issues`` is kept ``WINDOW`` (90 days: three times the default 30-day cap window, and
HQ does not know each box's configured lookback) for snapshots: a box with a new or lost cache
learns the fleet's recent issues from its snapshot (``recent``), not only those made after it
starts following. A box configured with a window beyond 90 days starts with 90 days of the
fleet's issues, and counts every later one. ``prune`` forgets what has left the window.

An event that cannot name its sale (an empty till or transaction id, which no real checkout
has: the box refuses a checkout without one) makes no change: a change the boxes would refuse
would stop every store's stream at that delta.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Final

from cloud_sync.contract.delta import Change, Op
from cloud_sync.hq.ingest.event_store import Row, Tx, from_micros, to_micros

PAGE: Final = 5_000  # issues per step: bounds one transaction's work
WINDOW: Final = timedelta(days=90)
_PAGE_SQL: Final = (
    "SELECT e.box_id, e.seq, e.store_id, e.till_id, e.member_id, e.occurred_at, e.body "
    "FROM issue_queue AS q JOIN events AS e ON e.box_id = q.box_id AND e.seq = q.seq "
    "ORDER BY q.box_id, q.seq LIMIT ?"
)
_RECORD_SQL: Final = (
    "INSERT INTO member_issues (box_id, till_id, transaction_id, store_id, member_id, at) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (box_id, till_id, transaction_id) DO NOTHING"
)


def take(tx: Tx, *, limit: int = PAGE) -> list[Change]:
    """Up to ``limit`` queued issues, recorded and taken off the queue; a change for each."""
    rows = tx.query(_PAGE_SQL, (limit,))
    if not rows:
        return []
    tx.execute_many("DELETE FROM issue_queue WHERE box_id = ? AND seq = ?", [r[:2] for r in rows])
    changes: list[Change] = []
    recorded: list[tuple[object, ...]] = []
    for box, _seq, store, till, member, at, body in rows:
        txn = _transaction_id(body)
        if not (_key(till) and _key(member) and txn is not None):
            continue
        recorded.append((box, till, txn, store, member, at))
        changes.append(
            Change(
                op=Op.MEMBER_ISSUED_ELSEWHERE,
                fields={
                    "member_id": member,
                    "store_id": store,
                    "box_id": box,
                    "till_id": till,
                    "transaction_id": txn,
                    "at": from_micros(int(at)),
                },
            )
        )
    tx.execute_many(_RECORD_SQL, recorded)
    return changes


def recent(tx: Tx, *, now: datetime) -> list[Row]:
    """The issues of the last ``WINDOW``, as a snapshot carries them
    (``snapshot_format.ISSUES_ELSEWHERE_COLUMNS``: box, till, transaction, member, time)."""
    return tx.query(
        "SELECT box_id, till_id, transaction_id, member_id, at FROM member_issues "
        "WHERE at >= ? ORDER BY box_id, till_id, transaction_id",
        (to_micros(now - WINDOW),),
    )


def prune(tx: Tx, *, now: datetime) -> int:
    """Forget the issues older than ``WINDOW``; how many went."""
    return tx.execute("DELETE FROM member_issues WHERE at < ?", (to_micros(now - WINDOW),))


def _transaction_id(body: object) -> str | None:
    doc = json.loads(str(body))  # an event ingest verified and stored: an object
    txn = doc.get("transaction_id") if isinstance(doc, dict) else None
    return txn if _key(txn) else None


def _key(value: object) -> bool:
    """A value the box's decoder takes as a change's string: non-empty, no NUL, UTF-8."""
    if not isinstance(value, str) or value == "" or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, from a JSON escape
        return False
    return True
