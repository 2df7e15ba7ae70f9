"""What a ledger view selects: one programme, one account holder (or all), a time range and
the entry filters of DOMAIN.md section 5 (source channel, till, store, entry type, category).

The range is half-open, ``start <= at < end`` (UTC instants), so consecutive ranges never
count an entry twice; ``View.of`` fills the defaults: ``end`` is now, ``start`` seven days
before ``end``. ``where`` renders the filters as SQL over ``ledger_entries`` (aliased ``e``)
once, for the page, the sums and the CSV export alike.

Two kinds of filter, and why they matter to balances:

* **account filters** (programme, holder, category) choose *accounts*: a closing balance of
  those accounts is a fact of the ledger, kept fast by ``ledger_daily``;
* **entry filters** (channel, till, store, kind, side) choose *entries* among an account's:
  the entries they leave out still moved the balance, so such a view's own total
  (``view_net``) is not a balance and is reported beside the accounts' one (``balances``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from cloud_sync.hq.ingest.event_store import to_micros
from edge_agent.domain.points.accounts import Category
from edge_agent.domain.points.event import Channel, EventKind, Side

DEFAULT_SPAN: Final = timedelta(days=7)


class RangeError(ValueError):
    """A range that selects nothing by construction (``start`` not before ``end``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class View:
    programme: str
    holder: str | None  # a member id; None: every account of the programme (the export)
    start: datetime
    end: datetime
    category: Category | None = None
    channel: Channel | None = None
    till: str | None = None
    store: str | None = None
    kind: EventKind | None = None
    side: Side | None = None

    @classmethod
    def of(
        cls,
        *,
        programme: str,
        holder: str | None,
        now: datetime,
        start: datetime | None = None,
        end: datetime | None = None,
        category: Category | None = None,
        channel: Channel | None = None,
        till: str | None = None,
        store: str | None = None,
        kind: EventKind | None = None,
        side: Side | None = None,
    ) -> View:
        """The view with the defaults filled in; ``RangeError`` for an empty range."""
        end = now if end is None else end
        start = end - DEFAULT_SPAN if start is None else start
        if start >= end:
            raise RangeError(f"from {start.isoformat()} is not before to {end.isoformat()}")
        return cls(
            programme=programme,
            holder=holder,
            start=start,
            end=end,
            category=category,
            channel=channel,
            till=till,
            store=store,
            kind=kind,
            side=side,
        )

    @property
    def filters_entries(self) -> bool:
        """Whether an entry filter leaves some of the accounts' entries out."""
        return any(
            f is not None for f in (self.channel, self.till, self.store, self.kind, self.side)
        )

    def accounts_where(self) -> tuple[str, list[object]]:
        """The account filters as SQL over ``e`` (any table with programme, holder,
        category columns)."""
        clauses = ["e.programme = ?"]
        params: list[object] = [self.programme]
        if self.holder is not None:
            clauses.append("e.holder = ?")
            params.append(self.holder)
        if self.category is not None:
            clauses.append("e.category = ?")
            params.append(self.category.value)
        return " AND ".join(clauses), params

    def where(self) -> tuple[str, list[object]]:
        """Every filter and the range, as SQL over ``ledger_entries e``."""
        sql, params = self.accounts_where()
        clauses = [sql, "e.at >= ?", "e.at < ?"]
        params += [to_micros(self.start), to_micros(self.end)]
        for column, value in (
            ("channel", self.channel),
            ("till_id", self.till),
            ("store_id", self.store),
            ("kind", self.kind),
            ("side", self.side),
        ):
            if value is not None:
                clauses.append(f"e.{column} = ?")
                params.append(str(value))
        return " AND ".join(clauses), params
