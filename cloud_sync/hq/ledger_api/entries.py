"""A ledger view's entries: one page newest first, or every entry in booking order.

Theory of operation
-------------------
``page`` is a keyset walk down ``ledger_entries_by_holder`` (programme, holder, at, pos, idx):
it asks for ``PAGE_SIZE + 1`` entries below the cursor's key, in ``(at, pos, idx)``
descending order, and hands out a cursor only when that extra entry exists, so the last page
says it is the last. Never ``OFFSET``: the database reads the page's entries (plus those the
entry filters skip), not everything before them. The event id comes from ``ledger_events``
by primary key, for the page's rows only.

``walk`` reads a view in booking order, ``(pos, idx)`` ascending, ``chunk`` entries a
transaction, stopping at the last entry booked when it started: the CSV export streams it
without holding one transaction (and SQLite's write lock) for the whole file, and entries
booked during the export (append-only, so only ever after it) are left for the next one.

``Entry`` is the one shape of an entry for the API's JSON, the CSV and the tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from cloud_sync.hq.ingest.event_store import EventStore, Row, Tx, from_micros
from cloud_sync.hq.ledger_api import cursor
from cloud_sync.hq.ledger_api.view import View
from edge_agent.domain.points.event import Channel, EventKind, Side

PAGE_SIZE: Final = 10
EXPORT_CHUNK: Final = 1_000

# The filters' SQL is the view's own text (``View.where``); every value is a parameter.
_SELECT: Final = (
    "SELECT e.pos, e.idx, ev.event_id, e.kind, e.at, e.programme, e.holder, e.category, "
    "e.side, e.points, e.signed, e.channel, e.store_id, e.till_id, e.campaign_id "
    "FROM ledger_entries e JOIN ledger_events ev ON ev.pos = e.pos"
)


class Entry(BaseModel):
    """One posting of a booked event, as the ledger shows it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    entry_id: str = Field(description="`<event id>#<posting index>`: unique in the programme")
    event_id: str = Field(description="the event's id (its idempotency key)")
    kind: EventKind = Field(description="the event's kind (DOMAIN.md section 5)")
    at: datetime = Field(description="when the event happened (UTC)")
    side: Side = Field(description="credit (adds to the balance) or debit")
    points: int = Field(ge=0, description="the posting's points, never negative")
    signed: int = Field(description="what the entry adds to the balance: +points or -points")
    programme: str
    holder: str = Field(description="the member id; '' for the programme's own accounts")
    category: str = Field(
        description="the member's points category, or the programme account "
        "(liability, breakage) when holder is ''"
    )
    channel: Channel = Field(description="where the event came from")
    store: str | None = None
    till: str | None = None
    campaign: str | None = None


def _entry(row: Row) -> Entry:
    idx, event_id = int(row[1]), str(row[2])
    return Entry(
        entry_id=f"{event_id}#{idx}",
        event_id=event_id,
        kind=EventKind(row[3]),
        at=from_micros(int(row[4])),
        programme=str(row[5]),
        holder=str(row[6]),
        category=str(row[7]),
        side=Side(row[8]),
        points=int(row[9]),
        signed=int(row[10]),
        channel=Channel(row[11]),
        store=row[12],
        till=row[13],
        campaign=row[14],
    )


class Page(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    entries: list[Entry] = Field(description="newest first, at most 10")
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next (older) page; null on the last page"
    )


def page(tx: Tx, view: View, after: cursor.Key | None = None, *, size: int = PAGE_SIZE) -> Page:
    """The ``size`` entries of ``view`` next below ``after`` (newest first)."""
    where, params = view.where()
    if after is not None:
        # Row values keep the keyset one index range on both backends.
        where += " AND (e.at, e.pos, e.idx) < (?, ?, ?)"
        params += [after.at, after.pos, after.idx]
    order = "ORDER BY e.at DESC, e.pos DESC, e.idx DESC LIMIT ?"
    rows = tx.query(f"{_SELECT} WHERE {where} {order}", (*params, size + 1))
    entries = [_entry(r) for r in rows[:size]]
    more = len(rows) > size
    last = rows[size - 1] if more else None
    next_cursor = (
        None
        if last is None
        else cursor.encode(cursor.Key(int(last[4]), int(last[0]), int(last[1])))
    )
    return Page(entries=entries, next_cursor=next_cursor)


def walk(store: EventStore, view: View, *, chunk: int = EXPORT_CHUNK) -> Iterator[Entry]:
    """Every entry of ``view`` in booking order, ``chunk`` a transaction (module docstring)."""
    where, params = view.where()
    sql = f"{_SELECT} WHERE {where} AND (e.pos, e.idx) > (?, ?) AND e.pos <= ?"
    sql += " ORDER BY e.pos, e.idx LIMIT ?"
    head = store.read(lambda tx: tx.query("SELECT MAX(pos) FROM ledger_events"))[0][0]
    if head is None:
        return
    place = (-1, -1)
    while True:

        def read(tx: Tx, place: tuple[int, int] = place) -> list[Row]:
            return tx.query(sql, (*params, *place, int(head), chunk))

        rows = store.read(read)
        yield from (_entry(r) for r in rows)
        if len(rows) < chunk:
            return
        place = (int(rows[-1][0]), int(rows[-1][1]))
