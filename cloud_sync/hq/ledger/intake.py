"""Booking the tills' ``points.posted`` events into HQ's ledger, exactly once, in pages.

Theory of operation
-------------------
Ingest queues every stored ``points.posted`` event's (box_id, seq) in ``points_queue`` in the
transaction that stores it (``ingest/stream.py``). ``post_page`` takes up to ``limit`` queued
events in (box_id, seq) order, so each box's postings are booked in the order the box made
them, and in one transaction (under ``openings.LOCK``) for each event:

1. reads it (``till_posting.read``); a kind a till does not book (``TILL_KINDS``) or an origin
   naming another store than the box's is refused;
2. looks its ledger id up: the same content booked before is a replay (nothing is booked; a
   box that re-sent a posting under a new seq still moves its mark), other content is refused
   ``conflict`` and the first booking stands;
3. opens with a zero entry every member account it posts to that is not open yet
   (``openings``: a till only posts for members it knows from HQ's snapshot, so a member it
   names is one HQ registered), after refusing ``before_opening`` an event dated before an
   account's (migrated) opening;
4. books it under ``TILL_POLICY``, which lets every kind take a member below zero: what a till
   gave is given (two offline stores can each burn the same points), and refusing it at HQ
   would only make HQ's ledger disagree with the receipts. The same event is first judged by
   the default policy, and an event that policy would have refused is booked *and* recorded
   in ``points_refusals`` with reason ``overdraft`` (the one reason whose event *is* in
   ``ledger_events``: join on ``event_id``), with a warning in the log;
5. records its basket lines (``ledger_lines``, for the per-campaign / per-band reports) and
   moves the marks ``ledger_marks`` (programme, member, box) to the event's seq (never back),
   queueing the member in ``points_balance_queue`` so the stores hear balance and marks.

A refusal is a row of ``points_refusals`` (box, seq, the ledger id if known, a ``Refusal``
reason and the detail) and a warning; the queue moves on, so one bad event never blocks a box.
Then the page's queue rows are deleted, in the same transaction: a crash repeats the page, and
a repeated page finds its events booked (replays) or its refusals recorded (kept as first
written), so nothing is booked twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from typing import Final

from cloud_sync.hq.ingest.errors import StoreUnavailableError
from cloud_sync.hq.ingest.event_store import EventStore, Tx, to_micros
from cloud_sync.hq.ledger import openings, till_posting
from cloud_sync.hq.ledger.book import TxLedgerView, book
from cloud_sync.hq.ledger.till_posting import TillPosting, UnreadablePostingError
from edge_agent.domain.points.accounts import MemberAccount
from edge_agent.domain.points.admission import OverdraftPolicy, Overdrawn, admit
from edge_agent.domain.points.errors import AccountStateError, BeforeOpeningError
from edge_agent.domain.points.event import EventKind

log = logging.getLogger("storeside.hq.ledger")
PAGE: Final = 500  # events per transaction: a page holds the ledger for tens of milliseconds
IDLE_S: Final = 0.5
STORE_RETRY_S: Final = 5.0
TILL_KINDS: Final = frozenset(
    {EventKind.EARN, EventKind.BURN, EventKind.BURN_REVERSAL, EventKind.REFUND_RETURN}
)
TILL_POLICY: Final = OverdraftPolicy(may_go_negative=frozenset(EventKind))
STRICT_POLICY: Final = OverdraftPolicy()


class Refusal(StrEnum):
    UNREADABLE = "unreadable"  # the body's details are not a posting (detail: field, reason)
    KIND = "kind"  # a kind only HQ books (an opening, an expiry, a merge...)
    ORIGIN = "origin"  # the ledger event names another store than the box's
    CONFLICT = "conflict"  # the ledger id was booked before with other content
    BEFORE_OPENING = "before_opening"  # dated before the account's (migrated) opening
    ACCOUNT = "account"  # another account state fault
    OVERDRAFT = "overdraft"  # BOOKED, but the default policy would have refused it


@dataclass(slots=True, kw_only=True)
class PostTally:
    taken: int = 0
    booked: int = 0
    replayed: int = 0
    refused: int = 0
    overdrafts: int = 0
    opened: int = 0

    def add(self, other: PostTally) -> None:
        for name in PostTally.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


_PAGE_SQL: Final = (
    "SELECT q.box_id, q.seq, e.store_id, e.body FROM points_queue AS q "
    "JOIN events AS e ON e.box_id = q.box_id AND e.seq = q.seq "
    "ORDER BY q.box_id, q.seq LIMIT ?"
)
_MARK_SQL: Final = (
    "INSERT INTO ledger_marks (programme, member_id, box_id, seq) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (programme, member_id, box_id) DO UPDATE SET seq = CASE "
    "WHEN excluded.seq > ledger_marks.seq THEN excluded.seq ELSE ledger_marks.seq END"
)


@dataclass(slots=True)
class _Page:
    tx: Tx
    now: datetime
    tally: PostTally = field(default_factory=PostTally)
    marks: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def refuse(self, box: str, seq: int, event_id: str | None, why: Refusal, detail: str) -> None:
        log.warning("points.posted %s/%d (%s) refused %s: %s", box, seq, event_id, why, detail)
        self.tx.execute(
            "INSERT INTO points_refusals (box_id, seq, event_id, reason, detail, refused_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (box_id, seq) DO NOTHING",
            (box, seq, event_id, why.value, detail, to_micros(self.now)),
        )
        if why is Refusal.OVERDRAFT:
            self.tally.overdrafts += 1
        else:
            self.tally.refused += 1

    def post(self, box: str, seq: int, store: str, body: str) -> None:
        try:
            posting = till_posting.read(body)
        except UnreadablePostingError as exc:
            self.refuse(box, seq, None, Refusal.UNREADABLE, f"{exc.field}: {exc.reason}: {exc}")
            return
        event = posting.event
        if event.kind not in TILL_KINDS:
            self.refuse(
                box, seq, event.event_id, Refusal.KIND, f"a till does not book {event.kind}"
            )
            return
        if event.origin.store not in (None, store):
            detail = f"origin store {event.origin.store!r}, the box's is {store!r}"
            self.refuse(box, seq, event.event_id, Refusal.ORIGIN, detail)
            return
        view = TxLedgerView(self.tx)
        prior = view.event(event.event_id)
        if prior is not None:
            if prior != event:
                self.refuse(
                    box, seq, event.event_id, Refusal.CONFLICT, "booked before as other content"
                )
                return
            self.tally.replayed += 1
            self.mark(box, seq, posting)
            return
        try:
            self.book(box, seq, posting)
        except BeforeOpeningError as exc:
            self.refuse(box, seq, event.event_id, Refusal.BEFORE_OPENING, str(exc))
        except AccountStateError as exc:
            self.refuse(box, seq, event.event_id, Refusal.ACCOUNT, str(exc))

    def book(self, box: str, seq: int, posting: TillPosting) -> None:
        event, view = posting.event, TxLedgerView(self.tx)
        members = [a for a in event.accounts() if isinstance(a, MemberAccount)]
        for account in members:
            opened = view.opened_at(account)
            if opened is not None and event.at < opened:
                raise BeforeOpeningError(event_id=event.event_id, account=account, opened_at=opened)
        for account in members:
            if openings.ensure_open(self.tx, account, booked_at=self.now) is not None:
                self.tally.opened += 1
        strict = admit(event, view, STRICT_POLICY)
        book(self.tx, event, policy=TILL_POLICY, booked_at=self.now, source=(box, seq))
        self.tally.booked += 1
        if isinstance(strict, Overdrawn):
            detail = (
                f"booked: {strict.account} held {strict.balance}, the event took "
                f"{strict.points} ({strict.shortfall} short)"
            )
            self.refuse(box, seq, event.event_id, Refusal.OVERDRAFT, detail)
        pos = int(
            self.tx.query("SELECT pos FROM ledger_events WHERE event_id = ?", (event.event_id,))[0][
                0
            ]
        )
        self.tx.execute_many(
            "INSERT INTO ledger_lines (pos, line, side, band, campaign_id, points) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (pos, line, side) DO NOTHING",
            [(pos, li.line, li.side, li.band, li.campaign_id, li.points) for li in posting.lines],
        )
        self.mark(box, seq, posting)

    def mark(self, box: str, seq: int, posting: TillPosting) -> None:
        event = posting.event
        for account in event.accounts():
            if isinstance(account, MemberAccount):
                key = (event.programme, account.member, box)
                self.marks[key] = max(self.marks.get(key, 0), seq)


def post_page(tx: Tx, *, now: datetime, limit: int = PAGE) -> PostTally:
    """Book up to ``limit`` queued till postings (module docstring); what it did."""
    tx.lock_keys([openings.LOCK])
    rows = tx.query(_PAGE_SQL, (limit,))
    page = _Page(tx, now)
    for box, seq, store, body in rows:
        page.post(str(box), int(seq), str(store), str(body))
    tx.execute_many(
        "DELETE FROM points_queue WHERE box_id = ? AND seq = ?", [(r[0], r[1]) for r in rows]
    )
    marks = sorted(page.marks.items())
    tx.execute_many(_MARK_SQL, [(p, m, b, s) for (p, m, b), s in marks])
    tx.execute_many(
        "INSERT INTO points_balance_queue (programme, member_id) VALUES (?, ?) "
        "ON CONFLICT (programme, member_id) DO NOTHING",
        sorted({(p, m) for (p, m, _), _ in marks}),
    )
    page.tally.taken = len(rows)
    return page.tally


def post_all(
    store: EventStore,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    limit: int = PAGE,
    stop: threading.Event | None = None,
) -> PostTally:
    """Book the whole queue, one page per transaction, until it is empty (or ``stop``)."""
    total = PostTally()
    while stop is None or not stop.is_set():
        done = store.run(partial(post_page, now=clock(), limit=limit))
        total.add(done)
        if done.taken < limit:
            break
    return total


@dataclass(slots=True, kw_only=True)
class PointsPoster:
    """The poster as a running HQ service drives it (``storeside-hq points run``)."""

    store: EventStore
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    idle_s: float = IDLE_S
    limit: int = PAGE

    def run(self, stop: threading.Event) -> None:
        """Book pages until ``stop``; an unreachable event store is waited out."""
        log.info("booking till postings from %s", self.store.location)
        while not stop.is_set():
            try:
                done = post_all(self.store, clock=self.clock, limit=self.limit, stop=stop)
            except StoreUnavailableError as exc:
                log.warning("event store unavailable, retrying in %g s: %s", STORE_RETRY_S, exc)
                stop.wait(STORE_RETRY_S)
                continue
            if done.taken:
                log.info(
                    "booked %d, replayed %d, refused %d, overdrafts %d",
                    done.booked,
                    done.replayed,
                    done.refused,
                    done.overdrafts,
                )
            else:
                stop.wait(self.idle_s)
