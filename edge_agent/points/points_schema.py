"""Schema migration for points at the till (v15), and the queries over its tables.

* ``points_postings``: every ledger event this box booked, once (``event_id`` is the ledger's
  idempotency key, unique), with the ``seq`` of the ``points.posted`` event it travelled as.
  The member's net and the seq are what the offline bound counts: HQ's balance includes this
  box's postings through its mark, so those after it are the box's unsynced ones
  (``cloud_sync/contract/points_balance.py``). ``body`` is the codec's text of the event.
* ``points_sales``: one row per checkout that booked points, keyed by the sale (till,
  transaction id): the member, the earn and burn results as JSON (every line's units, points
  and discount: what an exact partial return needs), the request's fingerprint and the stored
  answer; a void's stored answer once voided.
* ``points_returns``: one row per return, keyed by the returning till and its return id: the
  sale it reversed, its fingerprint and stored answer. ``points_returned`` holds per sale line
  the units already returned, which the next partial return of that line starts from.
* ``points_balances``: the balances HQ told the box (``member.points`` deltas, the snapshot's
  optional table): balance, HQ's marks text, and this box's own mark read out of it.

Nothing here is pruned: the sales and postings are what make a return or a resend exact, and a
till's return may come weeks after the sale.
"""

from __future__ import annotations

from typing import Final

import sqlite_utils


def migrate(db: sqlite_utils.Database) -> None:
    """The box's points tables (see the module docstring)."""
    for ddl in (
        "CREATE TABLE points_postings ("
        "event_id TEXT PRIMARY KEY, "
        "seq INTEGER NOT NULL UNIQUE, "  # the points.posted event's box seq
        "member_id TEXT NOT NULL, "
        "programme TEXT NOT NULL, "
        "kind TEXT NOT NULL, "
        "member_net INTEGER NOT NULL, "  # what the event adds to the member's balance
        "at_us INTEGER NOT NULL, "
        "body TEXT NOT NULL"  # codec.encode(event) as JSON
        ") WITHOUT ROWID",
        "CREATE INDEX points_postings_by_member ON points_postings (member_id, programme, seq)",
        "CREATE TABLE points_sales ("
        "till_id TEXT NOT NULL, "
        "transaction_id TEXT NOT NULL, "
        "member_id TEXT NOT NULL, "
        "programme TEXT NOT NULL, "
        "earn TEXT NOT NULL, "  # EarnResult as JSON
        "burn TEXT, "  # BurnPlan as JSON; NULL: no burn
        "fingerprint TEXT NOT NULL, "
        "response TEXT NOT NULL, "
        "sold_us INTEGER NOT NULL, "
        "void_response TEXT, "  # NULL until voided
        "PRIMARY KEY (till_id, transaction_id)"
        ") WITHOUT ROWID",
        "CREATE TABLE points_returns ("
        "till_id TEXT NOT NULL, "  # the returning till
        "return_id TEXT NOT NULL, "
        "sale_till_id TEXT NOT NULL, "
        "sale_transaction_id TEXT NOT NULL, "
        "fingerprint TEXT NOT NULL, "
        "response TEXT NOT NULL, "
        "returned_us INTEGER NOT NULL, "
        "PRIMARY KEY (till_id, return_id)"
        ") WITHOUT ROWID",
        "CREATE TABLE points_returned ("
        "till_id TEXT NOT NULL, "  # the sale's till
        "transaction_id TEXT NOT NULL, "
        "line INTEGER NOT NULL, "
        "units INTEGER NOT NULL, "
        "PRIMARY KEY (till_id, transaction_id, line)"
        ") WITHOUT ROWID",
        "CREATE TABLE points_balances ("
        "member_id TEXT NOT NULL, "
        "programme TEXT NOT NULL, "
        "balance INTEGER NOT NULL, "
        "marks TEXT NOT NULL, "  # points_balance.encode_marks text, as HQ sent it
        "own_mark INTEGER NOT NULL, "  # this box's seq in marks (0: none of its postings)
        "PRIMARY KEY (member_id, programme)"
        ") WITHOUT ROWID",
    ):
        db.execute(ddl)


# The member's balance as the box knows it: HQ's (0 when HQ told nothing) and the net of this
# box's postings after its mark. ?1 member, ?2 programme.
KNOWN_SQL: Final = (
    "SELECT coalesce(b.balance, 0), coalesce(b.own_mark, 0), "
    "(SELECT coalesce(sum(p.member_net), 0) FROM points_postings AS p "
    " WHERE p.member_id = ?1 AND p.programme = ?2 AND p.seq > coalesce(b.own_mark, 0)) "
    "FROM (SELECT 1) LEFT JOIN points_balances AS b ON b.member_id = ?1 AND b.programme = ?2"
)
INSERT_POSTING_SQL: Final = "INSERT INTO points_postings VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
SALE_SQL: Final = (
    "SELECT member_id, programme, earn, burn, fingerprint, response, void_response "
    "FROM points_sales WHERE till_id = ? AND transaction_id = ?"
)
INSERT_SALE_SQL: Final = "INSERT INTO points_sales VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)"
VOID_SQL: Final = (
    "UPDATE points_sales SET void_response = ? WHERE till_id = ? AND transaction_id = ?"
)
RETURN_SQL: Final = (
    "SELECT fingerprint, response FROM points_returns WHERE till_id = ? AND return_id = ?"
)
INSERT_RETURN_SQL: Final = "INSERT INTO points_returns VALUES (?, ?, ?, ?, ?, ?, ?)"
RETURNED_SQL: Final = (
    "SELECT line, units FROM points_returned WHERE till_id = ? AND transaction_id = ?"
)
ADD_RETURNED_SQL: Final = (
    "INSERT INTO points_returned VALUES (?, ?, ?, ?) ON CONFLICT (till_id, transaction_id, line) "
    "DO UPDATE SET units = units + excluded.units"
)
PUT_BALANCE_SQL: Final = "INSERT OR REPLACE INTO points_balances VALUES (?, ?, ?, ?, ?)"
