"""Balances of a ledger view: its accounts at the ends of its range, its own net, and now.

Theory of operation
-------------------
An account's balance just before instant ``t`` is the sum of its ``ledger_daily`` nets of the
UTC days before ``t``'s day plus its entries of ``t``'s day dated before ``t``: a few hundred
day rows and one day's entries, however long the member's history (100,000 entries or more),
where summing entries would read them all. Both sums go through the view's account filters
(programme, holder, category), so a view of every category is the member's total.

``closing`` answers, for a view over ``[start, end)``:

    opening_balance   the view's accounts' balance before ``start``
    closing_balance   their balance before ``end``: *the* closing balance of the view, the
                      points the member held at the end of the range. Entry filters (channel,
                      till, store, kind, side) do not change it: the entries a filter hides
                      still moved the balance.
    view_net          what the view's own entries add up to, summed over the range. With no
                      entry filter it is ``closing_balance - opening_balance`` and costs
                      nothing; with one, it is a sum over the range's entries (bounded by the
                      range: the default is seven days), e.g. "net points from till T1 this
                      week".

``current`` is each open account's running balance (``ledger_accounts``): one row a category.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from cloud_sync.hq.ingest.event_store import Tx, from_micros, to_micros
from cloud_sync.hq.ledger.book import DAY_US
from cloud_sync.hq.ledger_api.view import View

_SUM: Final = "SELECT COALESCE(SUM(e.signed), 0) FROM ledger_entries e"


class Closing(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    start: datetime = Field(description="the range's start (inclusive)")
    end: datetime = Field(description="the range's end (exclusive)")
    opening_balance: int = Field(description="the view's accounts' balance before `start`")
    closing_balance: int = Field(
        description="the view's accounts' balance at the end of the range (before `end`), "
        "whatever the entry filters"
    )
    view_net: int = Field(description="the sum of the view's own entries over the range")


class AccountBalance(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    category: str
    balance: int
    opened_at: datetime | None = Field(description="when its opening entry was dated")


def balance_before(tx: Tx, view: View, moment: datetime) -> int:
    """The view's accounts' balance from entries dated before ``moment``."""
    where, params = view.accounts_where()
    t = to_micros(moment)
    day = t // DAY_US
    # The clauses are the view's own text; every value is a parameter.
    days_sql = f"SELECT COALESCE(SUM(e.net), 0) FROM ledger_daily e WHERE {where} AND e.day < ?"  # noqa: S608
    today_sql = f"{_SUM} WHERE {where} AND e.at >= ? AND e.at < ?"
    days = tx.query(days_sql, (*params, day))
    today = tx.query(today_sql, (*params, day * DAY_US, t))
    return int(days[0][0]) + int(today[0][0])


def closing(tx: Tx, view: View) -> Closing:
    opening = balance_before(tx, view, view.start)
    closing_balance = balance_before(tx, view, view.end)
    if view.filters_entries:
        where, params = view.where()
        net = int(tx.query(f"{_SUM} WHERE {where}", params)[0][0])
    else:
        net = closing_balance - opening
    return Closing(
        start=view.start,
        end=view.end,
        opening_balance=opening,
        closing_balance=closing_balance,
        view_net=net,
    )


def current(tx: Tx, *, programme: str, holder: str) -> list[AccountBalance]:
    rows = tx.query(
        "SELECT category, balance, opened_at FROM ledger_accounts "
        "WHERE programme = ? AND holder = ? ORDER BY category",
        (programme, holder),
    )
    return [
        AccountBalance(
            category=str(r[0]),
            balance=int(r[1]),
            opened_at=None if r[2] is None else from_micros(int(r[2])),
        )
        for r in rows
    ]
