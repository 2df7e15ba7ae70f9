"""Boxes' streams at HQ: store each event once, prove the stream complete, park what is early.

Theory of operation
-------------------
``ingest_group`` runs inside one transaction with batches whose signatures HQ has checked,
of one box or many, in the order they arrived. It first locks the stream head of every box
among them (``Tx.lock_streams``: sorted by box id, so two workers applying groups that share
boxes take the locks in one order and cannot deadlock on them), reads the boxes' parked
ranges once, then applies the batches one after the other in arrival order, each exactly as
if it had a transaction of its own: the group keeps every box's head and parked ranges in
memory, so a box's second batch continues from the state its first left. (Parked rows are
only written here, under the box's lock, so the copy cannot go stale.) HQ holds exactly the
box's events 1..``stored_through`` and the ``ChainLink`` of the last one (the head). A
batch's events fall in two parts, handled in this order:

    seq <= stored_through   already stored. Each is compared by hash with what is stored:
                            the same text is a duplicate (a redelivery, a resend: nothing
                            to do); another text is a second version of a stored event,
                            quarantined ``conflicting_event`` and reported in ``conflicts``,
                            never stored over the first.
    seq >  stored_through   new. Starting at stored_through + 1: verified with
                            ``verify_chain`` from the head, and the run that verifies is
                            stored (one ``insert_many``); the first event that does not link
                            on is recorded in ``chain_breaks`` and the rest is quarantined
                            ``chain_break``. An event id HQ holds for another event stops the
                            run there too (``duplicate_event_id``), before the insert.
                            Starting beyond stored_through + 1: a batch ahead of a hole,
                            parked as received (at most ``MAX_PARKED`` per box; beyond that
                            quarantined ``parked_full``, and the box sends it again after
                            the hole is filled, as the ack's ``missing`` ranges tell it).

After storing, parked batches that now start at or below stored_through + 1 are taken out
and handled the same way, in the same transaction, until none continues the stream. When
every batch is applied, the events stored go in (one ``insert_many`` for the group), the
heads that moved are written back (one statement per box, not per batch), and the
redemptions stored by the whole group are checked for double redemption across boxes
(``redemptions.py``: one lock of the sorted codes, after every stream lock, so the lock
order is streams then codes in every transaction). The answer is each box's
``Ack``, from its last state: stored_through and the holes below the parked batches.

The group reads and writes the events table through ``_EventTable``, so that a group of many
boxes' small batches (a fleet at a store's pace: one or two events a batch) costs a few round
trips, not two per batch: the ids of every new event of the group are looked up in one query
up front, and the rows to store wait in memory for the one insert. Whatever reads the table
(the duplicate comparison, the redemption count) flushes them first, so every read sees what
the batches before it stored, as one transaction per batch would.

A batch delivered again is a no-op: all its events are duplicates, or it is parked already
(the same range), and nothing is written; the ack is computed from the same state, so it is
the same ack. Nothing here trusts the order batches arrive in: reordered, repeated and
overlapping batches all end in the stream the box wrote, and a group ends exactly where
handling its batches one transaction each, in the same order, does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from cloud_sync.contract import batch as batches
from cloud_sync.contract import topics
from cloud_sync.contract.ack import Ack
from cloud_sync.contract.batch import ReceivedBatch
from cloud_sync.contract.chain import ChainLink, Sealed, verify_chain
from cloud_sync.contract.event_envelope import EventType, event_hash
from cloud_sync.contract.topics import Channel
from cloud_sync.hq.ingest import quarantine, redemptions
from cloud_sync.hq.ingest.event_store import Row, Tx, to_micros
from cloud_sync.hq.ingest.quarantine import Quarantined, Refusal
from cloud_sync.hq.ingest.ranges import missing_ranges
from cloud_sync.hq.member_push import push_queue

MAX_PARKED: Final = 64  # batches per box: 16 MiB at most, far more than a box has in flight
MAX_INT64: Final = 2**63 - 1
ID_LOOKUP_CHUNK: Final = 1000  # event ids per query: well inside SQLite's 32,766 parameters
EVENT_COLUMNS: Final = (
    "box_id",
    "seq",
    "event_id",
    "store_id",
    "type",
    "code",
    "occurred_at",
    "till_id",
    "cashier_id",
    "member_id",
    "amount",
    "body",
    "hash",
    "received_at",
)


@dataclass(slots=True, kw_only=True)
class Tally:
    """What one transaction did, for the caller's outcome and the worker's log."""

    stored: int = 0
    duplicates: int = 0
    parked: bool = False
    quarantined: list[str] = field(default_factory=list)
    conflicts: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Arrival:
    """One verified batch to apply: as decoded, its bytes (kept if it parks), when it came."""

    received: ReceivedBatch
    payload: bytes
    received_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamResult:
    ack: Ack | None  # None: the box is HQ's under another store, nothing to answer it
    tally: Tally


def unstorable(received: ReceivedBatch) -> str | None:
    """Why an event of a decoded batch cannot go into the events table, or None.

    The decoders accept any JSON string and integer; the columns do not: a string holding a
    lone surrogate (JSON's ``\\ud800`` escape) or NUL (PostgreSQL's text refuses it), an
    integer beyond 64 bits."""
    if received.batch.last_seq > MAX_INT64:
        return f"last_seq {received.batch.last_seq} is beyond a 64-bit integer"
    for sealed in received.events:
        e, a = sealed.event, sealed.event.attribution
        for name, value in (
            ("code", e.code),
            ("till_id", a.till_id),
            ("cashier_id", a.cashier_id),
            ("member_id", a.member_id),
        ):
            if value is not None and ("\x00" in value or _has_surrogate(value)):
                return f"event {e.seq}: {name} holds NUL or a lone surrogate"
        if not -MAX_INT64 <= e.amount <= MAX_INT64:
            return f"event {e.seq}: amount {e.amount} is beyond a 64-bit integer"
    return None


def _has_surrogate(value: str) -> bool:
    if value.isascii():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


_UPDATE_HEAD: Final = (
    "UPDATE streams SET stored_through = ?, head_hash = ?, head_chained = ?, "
    "last_batch_at = ? WHERE box_id = ?"
)


def ingest_group(tx: Tx, arrivals: Sequence[Arrival]) -> list[StreamResult]:
    """Apply verified batches, in order, to their boxes' streams (see the module docstring):
    one result per arrival, whose ack is its box's after the whole group."""
    if not arrivals:
        return []
    # A box's head row is made with the store of its first batch, as one by one would.
    stores: dict[str, str] = {}
    for arrival in arrivals:
        stores.setdefault(arrival.received.batch.box_id, arrival.received.batch.store_id)
    boxes = sorted(stores)
    heads = tx.lock_streams([(box, stores[box]) for box in boxes])
    parked: dict[str, set[tuple[int, int]]] = {box: set() for box in boxes}
    marks = ", ".join("?" * len(boxes))
    for box, first, last in tx.query(
        f"SELECT box_id, first_seq, last_seq FROM parked WHERE box_id IN ({marks})",  # noqa: S608
        boxes,
    ):
        parked[str(box)].add((int(first), int(last)))
    streams = {box: _Stream.of(box, heads[box], parked[box]) for box in boxes}
    table = _EventTable(tx=tx)
    table.look_up(
        [
            sealed.event.event_id
            for arrival in arrivals
            for sealed in arrival.received.events
            if sealed.event.seq > streams[arrival.received.batch.box_id].head.seq
        ]
    )
    runs: list[_Run] = []
    for arrival in arrivals:
        batch = arrival.received.batch
        box = streams[batch.box_id]
        run = _Run(
            tx=tx,
            table=table,
            store_id=batch.store_id,
            received_at=arrival.received_at,
            stream=box,
        )
        runs.append(run)
        if box.store_id != batch.store_id:
            why = f"box {batch.box_id} streams to HQ as store {box.store_id}"
            run.refuse(batch.box_id, Refusal.OTHER_STORE_STREAM, why, arrival.payload)
            run.answered = False
            continue
        before = box.head
        box.head = run.drain_parked(run.apply(box.head, arrival.received, arrival.payload))
        if box.head != before or run.tally.parked:
            box.touched_at = arrival.received_at
    table.flush()
    moved = [(b, streams[b]) for b in boxes if streams[b].touched_at is not None]
    if moved:
        tx.execute_many(
            _UPDATE_HEAD,
            [
                (s.head.seq, s.head.hash, int(s.head.chained), to_micros(s.touched_at), box)
                for box, s in moved
                if s.touched_at is not None
            ],
        )
    limits: dict[str, int] = {}
    for run in runs:
        limits.update(run.limits)
    # Each conflict is told with the last batch that redeemed the code, once per group.
    at = max(arrival.received_at for arrival in arrivals)
    for code in redemptions.check(tx, limits, at=at):
        next(r for r in reversed(runs) if code in r.limits).tally.conflicts += 1
    acks = {box: s.ack() for box, s in streams.items()}
    return [
        StreamResult(ack=acks[run.stream.box_id] if run.answered else None, tally=run.tally)
        for run in runs
    ]


@dataclass(slots=True, kw_only=True)
class _Stream:
    """One box's stream as the group's transaction has left it so far."""

    box_id: str
    store_id: str
    head: ChainLink
    parked: set[tuple[int, int]]  # (first_seq, last_seq) of its parked batches
    touched_at: datetime | None = None  # when the last batch that changed it arrived

    @classmethod
    def of(cls, box_id: str, row: Row, parked: set[tuple[int, int]]) -> _Stream:
        store_id, through, head_hash, chained = row
        head = ChainLink(box_id=box_id, seq=int(through), hash=head_hash, chained=bool(chained))
        return cls(box_id=box_id, store_id=str(store_id), head=head, parked=parked)

    def ack(self) -> Ack:
        return Ack(
            store_id=self.store_id,
            box_id=self.box_id,
            stored_through=self.head.seq,
            missing=missing_ranges(self.head.seq, self.parked),
        )


@dataclass(slots=True, kw_only=True)
class _EventTable:
    """The events table as the group sees it: ids looked up once, rows stored in one go."""

    tx: Tx
    pending: list[Row] = field(default_factory=list)  # to store, in the order stored
    held: dict[str, bool] = field(default_factory=dict)  # id -> held, at HQ or by the group
    fanned: list[tuple[str, int]] = field(default_factory=list)  # (box, seq) to fan out
    issued: list[tuple[str, int]] = field(default_factory=list)  # (box, seq) of issues
    offers: list[tuple[str, str, int, int]] = field(default_factory=list)  # to push
    posted: list[tuple[str, int]] = field(default_factory=list)  # (box, seq) to book

    def look_up(self, ids: Sequence[str]) -> None:
        """Learn which of ``ids`` HQ holds (pending rows count as held)."""
        wanted = [i for i in dict.fromkeys(ids) if i not in self.held]
        for start in range(0, len(wanted), ID_LOOKUP_CHUNK):
            chunk = wanted[start : start + ID_LOOKUP_CHUNK]
            marks = ", ".join("?" * len(chunk))
            found = {
                str(r[0])
                for r in self.tx.query(
                    f"SELECT event_id FROM events WHERE event_id IN ({marks})",  # noqa: S608
                    chunk,
                )
            }
            self.held.update((i, i in found) for i in chunk)

    def holds(self, ids: Sequence[str]) -> set[str]:
        self.look_up(ids)
        return {i for i in ids if self.held[i]}

    def add(self, rows: Sequence[Row]) -> None:
        self.pending.extend(rows)
        self.held.update((str(row[_EVENT_ID]), True) for row in rows)
        self.fanned.extend((r[0], r[1]) for r in rows if r[_TYPE] in FANNED_OUT)
        # An issue without a member counts toward no cap: nothing to tell anyone.
        self.issued.extend(
            (r[0], r[1]) for r in rows if r[_TYPE] in ISSUES and r[_MEMBER] is not None
        )
        self.offers.extend(
            (r[_EVENT_ID], r[0], r[1], r[_RECEIVED_AT]) for r in rows if r[_TYPE] == OFFERS
        )
        self.posted.extend((r[0], r[1]) for r in rows if r[_TYPE] == POINTS_POSTED)

    def query(self, sql: str, params: Sequence[object]) -> list[Row]:
        """A read of the table: after the pending rows are in it."""
        self.flush()
        return self.tx.query(sql, params)

    def flush(self) -> None:
        if self.pending:
            self.tx.insert_many("events", EVENT_COLUMNS, self.pending)
            self.pending = []
        if self.fanned:
            # What the other stores must learn (``cloud_sync/hq/fanout/``), in this very
            # transaction: an event stored is an event fanned out, once.
            self.tx.insert_many("fanout_queue", ("box_id", "seq"), self.fanned)
            self.fanned = []
        if self.issued:
            self.tx.insert_many("issue_queue", ("box_id", "seq"), self.issued)
            self.issued = []
        if self.offers:
            # The member's phone or wallet hears of each proximity offer once it is stored
            # (``cloud_sync/hq/member_push/``): queued in this transaction, so exactly once.
            push_queue.enqueue(self.tx, self.offers)
            self.offers = []
        if self.posted:
            # The points ledger books each till posting once (``cloud_sync/hq/ledger/intake``).
            self.tx.insert_many("points_queue", ("box_id", "seq"), self.posted)
            self.posted = []


_EVENT_ID: Final = EVENT_COLUMNS.index("event_id")
_TYPE: Final = EVENT_COLUMNS.index("type")
_MEMBER: Final = EVENT_COLUMNS.index("member_id")
_RECEIVED_AT: Final = EVENT_COLUMNS.index("received_at")
# The events that change a code's or a campaign's use, which other stores' boxes count.
FANNED_OUT: Final = frozenset({EventType.REDEEMED.value, EventType.REVERSED.value})
# The receipt coupon issues every box's frequency cap counts, held-out checkouts included.
ISSUES: Final = frozenset({EventType.COUPON_ISSUED.value, EventType.COUPON_WITHHELD.value})
# The proximity offers pushed to the member (every one: one the webhook cannot take is
# recorded as failed with its reason, never dropped unseen).
OFFERS: Final = push_queue.QUEUED
# The tills' points ledger events, every one (an unreadable one is refused by the poster,
# with its reason, never dropped here).
POINTS_POSTED: Final = EventType.POINTS_POSTED.value


@dataclass(slots=True, kw_only=True)
class _Run:
    """One batch's work on its box's stream: the batch, then what it unparks."""

    tx: Tx
    table: _EventTable
    store_id: str
    received_at: datetime
    stream: _Stream
    tally: Tally = field(default_factory=Tally)
    limits: dict[str, int] = field(default_factory=dict)
    answered: bool = True  # False: refused as another store's box, so no ack

    def refuse(self, box_id: str, reason: Refusal, detail: str, payload: bytes) -> None:
        item = Quarantined(
            topic=topics.topic(self.store_id, box_id, Channel.EVENTS),
            store_id=self.store_id,
            box_id=box_id,
            reason=reason,
            detail=detail,
        )
        quarantine.record(self.tx, item, payload, at=self.received_at)
        self.tally.quarantined.append(reason)

    def apply(self, head: ChainLink, received: ReceivedBatch, payload: bytes) -> ChainLink:
        events = received.events
        old = [s for s in events if s.event.seq <= head.seq]
        new = events[len(old) :]
        if old:
            self._compare(head.box_id, old, payload)
        if not new:
            return head
        if new[0].event.seq > head.seq + 1:
            self._park(received, payload)
            return head
        return self._extend(head, new, payload)

    def _compare(self, box_id: str, old: Sequence[Sealed], payload: bytes) -> None:
        stored: dict[int, str] = dict(
            self.table.query(
                "SELECT seq, hash FROM events WHERE box_id = ? AND seq >= ? AND seq <= ?",
                (box_id, old[0].event.seq, old[-1].event.seq),
            )
        )
        differing = []
        for sealed in old:
            received_hash = event_hash(sealed.text)
            if stored.get(sealed.event.seq) == received_hash:
                self.tally.duplicates += 1
            else:
                differing.append((sealed, received_hash))
        for sealed, received_hash in differing:
            seq = sealed.event.seq
            detail = {
                "stored_hash": stored.get(seq),
                "received_hash": received_hash,
                "received_event_id": sealed.event.event_id,
            }
            self.tx.execute(
                "INSERT INTO conflicts (conflict_key, kind, code, box_id, seq, detected_at, "
                "updated_at, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (conflict_key) DO NOTHING",
                (
                    f"event:{box_id}:{seq}:{received_hash}",
                    Refusal.CONFLICTING_EVENT.value,
                    sealed.event.code,
                    box_id,
                    seq,
                    to_micros(self.received_at),
                    to_micros(self.received_at),
                    json.dumps(detail, sort_keys=True),
                ),
            )
            self.tally.conflicts += 1
        if differing:
            seqs = ", ".join(str(s.event.seq) for s, _ in differing)
            self.refuse(
                box_id,
                Refusal.CONFLICTING_EVENT,
                f"another text than the stored one for seq {seqs}",
                payload,
            )

    def _park(self, received: ReceivedBatch, payload: bytes) -> None:
        batch = received.batch
        key = (batch.box_id, batch.first_seq, batch.last_seq)
        if (batch.first_seq, batch.last_seq) in self.stream.parked:
            self.tally.duplicates += len(received.events)
            return
        count = len(self.stream.parked)
        if count >= MAX_PARKED:
            self.refuse(
                batch.box_id,
                Refusal.PARKED_FULL,
                f"seq {batch.first_seq}-{batch.last_seq}: {count} batches wait already",
                payload,
            )
            return
        self.tx.execute(
            "INSERT INTO parked (box_id, first_seq, last_seq, received_at, payload) "
            "VALUES (?, ?, ?, ?, ?)",
            (*key, to_micros(self.received_at), payload),
        )
        self.stream.parked.add((batch.first_seq, batch.last_seq))
        self.tally.parked = True

    def _extend(self, head: ChainLink, new: Sequence[Sealed], payload: bytes) -> ChainLink:
        verdict = verify_chain(new, anchor=head)
        good = list(new[: verdict.head.seq - head.seq])
        cut = self._known_ids(good)
        if cut is not None:
            index, event_id = cut
            good = good[:index]
            self.refuse(
                head.box_id,
                Refusal.DUPLICATE_EVENT_ID,
                f"seq {new[index].event.seq}: event id {event_id} is held for another event",
                payload,
            )
        elif verdict.broken is not None:
            broken = verdict.broken
            offender = new[len(good)]
            self.tx.execute(
                "INSERT INTO chain_breaks (box_id, seq, event_hash, fault, detail, detected_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (box_id, seq, event_hash) DO NOTHING",
                (
                    head.box_id,
                    broken.seq,
                    event_hash(offender.text),
                    broken.fault.value,
                    broken.detail,
                    to_micros(self.received_at),
                ),
            )
            self.refuse(
                head.box_id,
                Refusal.CHAIN_BREAK,
                f"events from seq {broken.seq}: {broken.fault.value}: {broken.detail}",
                payload,
            )
        if not good:
            return head
        self._insert(good)
        return ChainLink.after(good[-1]) if cut is not None else verdict.head

    def _known_ids(self, run: Sequence[Sealed]) -> tuple[int, str] | None:
        """The first event of ``run`` whose id HQ (or ``run`` itself) holds for another."""
        if not run:
            return None
        ids = [s.event.event_id for s in run]
        held = self.table.holds(ids)
        seen: set[str] = set()
        for index, event_id in enumerate(ids):
            if event_id in held or event_id in seen:
                return index, event_id
            seen.add(event_id)
        return None

    def _insert(self, run: Sequence[Sealed]) -> None:
        at = to_micros(self.received_at)
        rows = []
        for sealed in run:
            e, a = sealed.event, sealed.event.attribution
            rows.append(
                (
                    e.box_id,
                    e.seq,
                    e.event_id,
                    a.store_id,
                    e.type.value,
                    e.code,
                    to_micros(e.occurred_at),
                    a.till_id,
                    a.cashier_id,
                    a.member_id,
                    e.amount,
                    sealed.text,
                    event_hash(sealed.text),
                    at,
                )
            )
        self.table.add(rows)
        self.tally.stored += len(rows)
        self.limits.update(redemptions.limited_codes(run))

    def drain_parked(self, head: ChainLink) -> ChainLink:
        """Handle every parked batch that now continues the stream (they never park again:
        each starts at or below stored_through + 1)."""
        while any(first <= head.seq + 1 for first, _ in self.stream.parked):
            ready = self.tx.query(
                "SELECT first_seq, last_seq, payload FROM parked "
                "WHERE box_id = ? AND first_seq <= ? ORDER BY first_seq, last_seq",
                (head.box_id, head.seq + 1),
            )
            for first, last, payload in ready:
                self.tx.execute(
                    "DELETE FROM parked WHERE box_id = ? AND first_seq = ? AND last_seq = ?",
                    (head.box_id, first, last),
                )
                self.stream.parked.remove((int(first), int(last)))  # KeyError: a stale copy
                if int(last) > head.seq:
                    # It passed every check when it was parked; decoding it again cannot fail.
                    received = batches.decode(bytes(payload))
                    head = self.apply(head, received, bytes(payload))
        return head
