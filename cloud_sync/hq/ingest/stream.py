"""One box's stream at HQ: store each event once, prove the stream complete, park what is early.

Theory of operation
-------------------
``ingest_batch`` runs inside one transaction that holds the box's lock (``Tx.lock_stream``)
with a batch whose signature HQ has checked. HQ holds exactly the box's events
1..``stored_through`` and the ``ChainLink`` of the last one (the head). The batch's events
fall in two parts, handled in this order:

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
and handled the same way, in the same transaction, until none continues the stream. The
redemptions stored are checked for double redemption across boxes (``redemptions.py``).
The answer is the ``Ack``: stored_through and the holes below the parked batches.

A batch delivered again is a no-op: all its events are duplicates, or it is parked already
(the same range), and nothing is written; the ack is computed from the same state, so it is
the same ack. Nothing here trusts the order batches arrive in: reordered, repeated and
overlapping batches all end in the stream the box wrote.
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
from cloud_sync.contract.event_envelope import event_hash
from cloud_sync.contract.topics import Channel
from cloud_sync.hq.ingest import quarantine, redemptions
from cloud_sync.hq.ingest.event_store import Tx, to_micros
from cloud_sync.hq.ingest.quarantine import Quarantined, Refusal
from cloud_sync.hq.ingest.ranges import missing_ranges

MAX_PARKED: Final = 64  # batches per box: 16 MiB at most, far more than a box has in flight
MAX_INT64: Final = 2**63 - 1
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


def ingest_batch(
    tx: Tx, received: ReceivedBatch, *, payload: bytes, received_at: datetime
) -> StreamResult:
    """Apply one verified batch to its box's stream (see the module docstring)."""
    batch = received.batch
    store_id, through, head_hash, chained = tx.lock_stream(batch.box_id, batch.store_id)
    tally = Tally()
    run = _Run(tx=tx, store_id=batch.store_id, received_at=received_at, tally=tally)
    if store_id != batch.store_id:
        why = f"box {batch.box_id} streams to HQ as store {store_id}"
        run.refuse(batch.box_id, Refusal.OTHER_STORE_STREAM, why, payload)
        return StreamResult(ack=None, tally=tally)
    start = ChainLink(box_id=batch.box_id, seq=int(through), hash=head_hash, chained=bool(chained))
    head = run.apply(start, received, payload)
    head = run.drain_parked(head)
    if head != start or tally.parked:
        tx.execute(
            "UPDATE streams SET stored_through = ?, head_hash = ?, head_chained = ?, "
            "last_batch_at = ? WHERE box_id = ?",
            (head.seq, head.hash, int(head.chained), to_micros(received_at), batch.box_id),
        )
    tally.conflicts += redemptions.check(tx, run.limits, at=received_at)
    return StreamResult(ack=ack_of(tx, store_id, head), tally=tally)


def ack_of(tx: Tx, store_id: str, head: ChainLink) -> Ack:
    parked = tx.query(
        "SELECT first_seq, last_seq FROM parked WHERE box_id = ? ORDER BY first_seq",
        (head.box_id,),
    )
    return Ack(
        store_id=store_id,
        box_id=head.box_id,
        stored_through=head.seq,
        missing=missing_ranges(head.seq, [(int(f), int(la)) for f, la in parked]),
    )


@dataclass(slots=True, kw_only=True)
class _Run:
    """One transaction's work on one box: the batch, then what it unparks."""

    tx: Tx
    store_id: str
    received_at: datetime
    tally: Tally
    limits: dict[str, int] = field(default_factory=dict)

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
            self.tx.query(
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
        if self.tx.query(
            "SELECT 1 FROM parked WHERE box_id = ? AND first_seq = ? AND last_seq = ?", key
        ):
            self.tally.duplicates += len(received.events)
            return
        (count,) = self.tx.query("SELECT count(*) FROM parked WHERE box_id = ?", (batch.box_id,))[0]
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
        marks = ", ".join("?" * len(ids))
        held = {
            str(r[0])
            for r in self.tx.query(
                f"SELECT event_id FROM events WHERE event_id IN ({marks})",  # noqa: S608
                ids,
            )
        }
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
        self.tx.insert_many("events", EVENT_COLUMNS, rows)
        self.tally.stored += len(rows)
        self.limits.update(redemptions.limited_codes(run))

    def drain_parked(self, head: ChainLink) -> ChainLink:
        """Handle every parked batch that now continues the stream (they never park again:
        each starts at or below stored_through + 1)."""
        while True:
            ready = self.tx.query(
                "SELECT first_seq, last_seq, payload FROM parked "
                "WHERE box_id = ? AND first_seq <= ? ORDER BY first_seq, last_seq",
                (head.box_id, head.seq + 1),
            )
            if not ready:
                return head
            for first, last, payload in ready:
                self.tx.execute(
                    "DELETE FROM parked WHERE box_id = ? AND first_seq = ? AND last_seq = ?",
                    (head.box_id, first, last),
                )
                if int(last) > head.seq:
                    # It passed every check when it was parked; decoding it again cannot fail.
                    received = batches.decode(bytes(payload))
                    head = self.apply(head, received, bytes(payload))
