"""The expiry run: every member account's points older than the validity, booked as expired.

Theory of operation
-------------------
``expire_page`` takes the next ``limit`` members (programme, member order) after a cursor
that hold points in some account (``ledger_accounts.balance > 0``: an account at or below zero
has no lot to expire), reads all their entries with one range scan of
``ledger_entries_by_holder`` per programme (index order is (holder, at, pos, idx): the lots'
order), and for each account books ``edge_agent.domain.points.expiry.expiry`` (oldest lots
first, dated ``now``, id ``expiry:{programme}:{member}:{category}:{day}``, ``day`` the UTC date
of ``now``), all in one transaction under ``openings.LOCK``: each event is admitted by the pure
``admit`` against the page's own reads (one account per event, so they cannot change each
other's answer) and the page's events are stored together (``book.store_admitted``: a few
statements a page, not a dozen an account). ``run`` walks the pages, one
transaction each, so ingest (which never takes the ledger lock, and on SQLite waits only for
the one page in hand) is held up for one page at most.

Resumable: an account whose id for the day is booked is skipped before its entries are even
aged, and one whose lots were taken has nothing due, so a second run the same day, or a run
resumed after a crash (a page is all or nothing), books nothing twice. An account with no
credit dated at or before the cutoff is skipped before building the pure ``Entry`` values.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Final

from cloud_sync.hq.ingest.event_store import EventStore, Row, Tx, from_micros, to_micros
from cloud_sync.hq.ingest.schema import Dialect
from cloud_sync.hq.ledger import openings
from cloud_sync.hq.ledger.book import store_admitted
from cloud_sync.hq.ledger.openings import HQ_ORIGIN
from edge_agent.domain.points.accounts import Account, Category, MemberAccount, liability
from edge_agent.domain.points.admission import Admitted, OverdraftPolicy, admit
from edge_agent.domain.points.event import Entry, EventKind, LedgerEvent, Posting, Side
from edge_agent.domain.points.expiry import expiry

log = logging.getLogger("storeside.hq.ledger")
PAGE: Final = 1_000  # members per transaction
# Between two pages on SQLite: longer than the longest sleep of SQLite's busy handler
# (100 ms), so an ingest transaction waiting for the lock always wakes inside the gap and
# takes it; back to back, the run would re-take the lock first every time and starve it.
SQLITE_PAUSE_S: Final = 0.11
POLICY: Final = OverdraftPolicy()  # an expiry never overdraws (``expiry.expiring``)
Cursor = tuple[str, str]  # (programme, member) of the last member done
START: Final[Cursor] = ("", "")


@dataclass(slots=True, kw_only=True)
class ExpiryTally:
    members: int = 0
    expired_accounts: int = 0
    points: int = 0
    pages: int = 0


def expiry_id(account: MemberAccount, now: datetime) -> str:
    day = now.date().isoformat()
    return f"expiry:{account.programme}:{account.member}:{account.category.value}:{day}"


def expire_page(
    tx: Tx, *, after: Cursor, now: datetime, validity: timedelta, limit: int = PAGE
) -> tuple[Cursor | None, ExpiryTally]:
    """Expire the next ``limit`` members after ``after``; the cursor to go on from (None:
    done) and what was booked."""
    tx.lock_keys([openings.LOCK])
    members = tx.query(
        "SELECT programme, holder FROM ledger_accounts WHERE (programme, holder) > (?, ?) "
        "AND holder <> '' AND balance > 0 GROUP BY programme, holder "
        "ORDER BY programme, holder LIMIT ?",
        (*after, limit),
    )
    tally = ExpiryTally(members=len(members), pages=1)
    if not members:
        return None, tally
    by_programme: dict[str, list[str]] = defaultdict(list)
    for programme, holder in members:
        by_programme[str(programme)].append(str(holder))
    cutoff = to_micros(now - validity)
    view = _PageView()
    admitted: list[tuple[LedgerEvent, tuple[str, int] | None]] = []
    for programme, holders in by_programme.items():
        span = (programme, holders[0], holders[-1])
        for holder, category, balance, opened in tx.query(
            "SELECT holder, category, balance, opened_at FROM ledger_accounts "
            "WHERE programme = ? AND holder >= ? AND holder <= ?",
            span,
        ):
            account = MemberAccount(programme, str(holder), Category(str(category)))
            view.balances[account] = int(balance)
            if opened is not None:
                view.opened[account] = from_micros(int(opened))
        rows = tx.query(
            "SELECT holder, category, pos, signed, at FROM ledger_entries "
            "WHERE programme = ? AND holder >= ? AND holder <= ? ORDER BY holder, at, pos, idx",
            span,
        )
        accounts: dict[MemberAccount, list[Row]] = defaultdict(list)
        for row in rows:
            accounts[MemberAccount(programme, str(row[0]), Category(str(row[1])))].append(row)
        due = {
            a: r
            for a, r in accounts.items()
            if any(int(x[3]) > 0 and int(x[4]) <= cutoff for x in r)
            and sum(int(x[3]) for x in r) > 0
        }
        done = _booked_today(tx, [expiry_id(a, now) for a in due])
        for account, entry_rows in sorted(due.items()):
            event_id = expiry_id(account, now)
            if event_id in done:
                continue
            event = expiry(
                event_id=event_id,
                now=now,
                origin=HQ_ORIGIN,
                account=account,
                entries=[_entry(account, r) for r in entry_rows],
                validity=validity,
            )
            if event is None:
                continue
            # The pure decision, against the page's own reads: one account per event, so
            # the events of a page cannot change each other's answer.
            decision = admit(event, view, POLICY)
            if not isinstance(decision, Admitted):
                log.warning("expiry %s not admitted: %s", event_id, decision)
                continue
            admitted.append((event, None))
            tally.expired_accounts += 1
            tally.points += -event.net(account)
    store_admitted(tx, admitted, booked_at=now)
    last = members[-1]
    return (str(last[0]), str(last[1])), tally


def run(
    store: EventStore,
    *,
    now: datetime,
    validity: timedelta,
    limit: int = PAGE,
    pause_s: float | None = None,
    progress: Callable[[ExpiryTally, float], None] | None = None,
) -> ExpiryTally:
    """Expire every member, one page per transaction (module docstring), ``pause_s``
    between pages (default ``SQLITE_PAUSE_S`` on SQLite, none on PostgreSQL, where ingest
    takes no lock the run holds); ``progress`` hears the totals and each page's seconds."""
    if pause_s is None:
        sqlite = store.run(lambda tx: tx.dialect) is Dialect.SQLITE
        pause_s = SQLITE_PAUSE_S if sqlite else 0.0
    total = ExpiryTally()
    cursor: Cursor | None = START
    while cursor is not None:
        if total.pages and pause_s:
            time.sleep(pause_s)
        started = time.perf_counter()
        cursor, done = store.run(
            partial(expire_page, after=cursor, now=now, validity=validity, limit=limit)
        )
        took = time.perf_counter() - started
        total.members += done.members
        total.expired_accounts += done.expired_accounts
        total.points += done.points
        total.pages += done.pages
        if progress is not None:
            progress(total, took)
    return total


class _PageView:
    """``admission.LedgerView`` over what the page read: its accounts' balances and
    openings; no expiry id it books is booked (``_booked_today`` skipped those)."""

    def __init__(self) -> None:
        self.balances: dict[Account, int] = {}
        self.opened: dict[MemberAccount, datetime] = {}

    def event(self, event_id: str) -> LedgerEvent | None:
        return None

    def balance(self, account: Account) -> int:
        return self.balances.get(account, 0)

    def opened_at(self, account: MemberAccount) -> datetime | None:
        return self.opened.get(account)


def _booked_today(tx: Tx, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        found.update(
            str(r[0])
            for r in tx.query(
                f"SELECT event_id FROM ledger_events WHERE event_id IN ({marks})",  # noqa: S608
                chunk,
            )
        )
    return found


def _entry(account: MemberAccount, row: Row) -> Entry:
    """One stored entry as the pure ``Entry`` ``lots`` reads (its sign and time are what
    ageing uses; the other side of the stand-in event is the liability, to balance it)."""
    signed = int(row[3])
    side = Side.CREDIT if signed >= 0 else Side.DEBIT
    event = LedgerEvent(
        event_id=f"pos:{row[2]}",
        kind=EventKind.CORRECTION,
        at=from_micros(int(row[4])),
        programme=account.programme,
        origin=HQ_ORIGIN,
        postings=(
            Posting(account, side, abs(signed)),
            Posting(liability(account.programme), side.flipped(), abs(signed)),
        ),
    )
    return Entry(event, 0)
