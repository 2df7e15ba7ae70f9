"""Unsent events out of a damaged cache file and into a fresh one, so HQ still gets each once.

Theory of operation
-------------------
``read`` opens the set-aside file read-only (it is evidence: nothing here writes to it) and
reads what it can, each read on its own so one bad page costs only what lives on it:

    meta        box_id, next_seq, chain_head, acked_through, one key at a time
    texts       every event after ``acked_through``, from both tables that hold its stored
                text (``events.body`` and ``outbox.payload``): two copies on different pages,
                so a page lost in one is usually readable in the other. Read in chunks of
                seqs; a chunk that fails is read again one seq at a time.

``plan`` (pure) then walks the seqs in order from the last acknowledged event's link. A text
that decodes, names this box and its seq, and links on (``verify_chain``) is kept exactly as
written: HQ compares by (box, seq) and hash, so one it already holds (an ack lost in the power
cut) is a harmless duplicate, and one it lacks is stored. A seq with no such text is lost (a
text that decodes but does not link, or that the next event's link does not vouch for, was
altered on its page: lost too); the box never
invents it. The chain exists to make a missing event visible and HQ refuses any event that
does not link on, so an event read after a loss cannot go as written: it is sealed again
after the rescued head with the next seq and link, keeping its event id, type, time,
attribution, amount and details (``resequenced``), if the next event's link vouches for its
text (or the next is unreadable too). HQ stores each event id once.

The one case this cannot put right, said in the log: HQ held events the box lost (sent, then
the page with them and their ack was lost). HQ then has other texts at the seqs the box reuses
and quarantines them as ``conflicting_event``; only HQ can resolve that, by hand.

``restore`` writes the plan into a freshly created cache in one transaction: the events (so a
resend request is answered), their outbox rows, and ``next_seq``, ``chain_head`` and
``acked_through`` where the old file left them, so the outbox pump goes on from there.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cloud_sync.contract.chain import ChainLink, Sealed, verify_chain
from cloud_sync.contract.event_envelope import GENESIS_HASH, event_hash
from cloud_sync.contract.message_codec import MessageError
from edge_agent.cache.timestamps import to_us

CHUNK: Final = 1000  # seqs per read; a failed chunk is read again seq by seq


@dataclass(frozen=True, slots=True, kw_only=True)
class Found:
    """What could be read of a damaged file."""

    box_id: str | None
    acked_through: int
    next_seq: int | None
    chain_head: str | None
    anchor_text: str | None  # the stored text of event ``acked_through``, when readable
    texts: dict[int, list[str]]  # seq -> the readable copies of its text
    unreadable_reads: int  # reads that failed (a chunk or a single seq)


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """The events the new cache's outbox gets, and where its chain stands after them."""

    box_id: str | None
    acked_through: int
    events: tuple[Sealed, ...]  # in seq order, from acked_through + 1
    kept: int  # sent as written
    resequenced: int  # read after a loss: the same event, sealed again after the head
    lost: tuple[tuple[int, int], ...]  # seq ranges of which nothing readable was found
    head: ChainLink | None  # None: no box id known, nothing to continue


def _fetch(conn: sqlite3.Connection, sql: str, params: tuple[object, ...] = ()) -> list[Any] | None:
    """The rows of ``sql``, or None when a page it needs cannot be read."""
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.DatabaseError:
        return None


def read_only_uri(path: Path) -> str:
    """How to open ``path`` so that nothing is written to it: read-only, and, without a WAL
    to read, immutable, so SQLite makes no empty ``-wal`` and ``-shm`` beside it either."""
    wal = Path(f"{path}-wal")
    mode = "mode=ro" if wal.exists() and wal.stat().st_size > 0 else "immutable=1"
    return f"{path.resolve().as_uri()}?{mode}"


def read(path: Path) -> Found:
    """Everything readable of ``path``'s identity and unacknowledged events (see the module
    docstring). The file is opened read-only and never written."""
    conn = sqlite3.connect(read_only_uri(path), uri=True)
    # A file shorter than its header says (a torn tail) is refused whole as corrupt unless
    # the schema is "writable": then SQLite trusts the file's size and reads what is there.
    # Nothing is written: the connection is read-only.
    conn.execute("PRAGMA writable_schema = ON")
    failures = 0
    try:

        def meta(key: str) -> str | None:
            rows = _fetch(conn, "SELECT value FROM meta WHERE key = ?", (key,))
            return str(rows[0][0]) if rows else None

        def top(table: str) -> int:
            rows = _fetch(conn, f"SELECT max(seq) FROM {table}")  # noqa: S608
            return int(rows[0][0]) if rows and rows[0][0] is not None else 0

        acked = int(meta("acked_through") or 0)
        next_seq = meta("next_seq")
        upper = max(int(next_seq or 1) - 1, top("events"), top("outbox"))
        texts: dict[int, list[str]] = {}
        for table, column in (("events", "body"), ("outbox", "payload")):
            for rows, failed in _chunks(conn, table, column, acked + 1, upper):
                failures += failed
                for seq, text in rows:
                    texts.setdefault(int(seq), []).append(str(text))
        anchor = _fetch(conn, "SELECT body FROM events WHERE seq = ?", (acked,))
        return Found(
            box_id=meta("box_id"),
            acked_through=acked,
            next_seq=None if next_seq is None else int(next_seq),
            chain_head=meta("chain_head"),
            anchor_text=str(anchor[0][0]) if anchor else None,
            texts=texts,
            unreadable_reads=failures,
        )
    finally:
        conn.close()


def _chunks(
    conn: sqlite3.Connection, table: str, column: str, first: int, last: int
) -> Iterator[tuple[list[tuple[int, str]], int]]:
    """The (seq, text) rows of ``table`` over seqs ``first..last``, a chunk at a time, with how
    many reads failed; a chunk that fails is read again seq by seq, skipping what cannot be
    read. One seq is read by equality: a range scan steps on to the next row to see where it
    ends, and that row may be on the bad page."""
    scan = f"SELECT seq, {column} FROM {table} WHERE seq BETWEEN ? AND ?"  # noqa: S608
    point = f"SELECT seq, {column} FROM {table} WHERE seq = ?"  # noqa: S608
    for low in range(first, last + 1, CHUNK):
        high = min(low + CHUNK - 1, last)
        rows = _fetch(conn, scan, (low, high))
        if rows is not None:
            yield rows, 0
            continue
        failed = 1
        single: list[tuple[int, str]] = []
        for seq in range(low, high + 1):
            got = _fetch(conn, point, (seq,))
            if got is None:
                failed += 1
            else:
                single.extend(got)
        yield single, failed


def _sealed(text: str, *, box_id: str, seq: int) -> Sealed | None:
    try:
        sealed = Sealed.of(text)
    except MessageError:
        return None
    event = sealed.event
    return sealed if event.box_id == box_id and event.seq == seq else None


def plan(found: Found, *, box_id: str | None) -> Plan:
    """Pure: what goes into the new cache (see the module docstring). ``box_id``: config's;
    else the file's; else the one its events name."""
    box = box_id or found.box_id or _named_box(found)
    if box is None:
        return Plan(
            box_id=None, acked_through=found.acked_through, events=(), kept=0,
            resequenced=0, lost=(), head=None,
        )  # fmt: skip
    acked = found.acked_through
    head = _anchor(found, box)
    events: list[Sealed] = []
    lost: list[tuple[int, int]] = []
    kept = resequenced = 0
    top = max([acked, (found.next_seq or 1) - 1, *found.texts])
    for seq in range(acked + 1, top + 1):
        copies = _copies(found, box, seq)
        vouched = _vouched(copies, _copies(found, box, seq + 1))
        linked = [s for s in vouched if verify_chain([s], anchor=head).ok]
        if linked and not lost:
            chosen = linked[0]
            kept += 1
        elif vouched and lost:
            event = dataclasses.replace(vouched[0].event, seq=head.seq + 1, prev_hash=head.hash)
            chosen = Sealed.seal(event)
            resequenced += 1
        else:  # unreadable, or a text that links to nothing: altered, so not to be sent
            if lost and lost[-1][1] == seq - 1:
                lost[-1] = (lost[-1][0], seq)
            else:
                lost.append((seq, seq))
            continue
        events.append(chosen)
        head = ChainLink.after(chosen)
    return Plan(
        box_id=box,
        acked_through=acked,
        events=tuple(events),
        kept=kept,
        resequenced=resequenced,
        lost=tuple(lost),
        head=head,
    )


def _copies(found: Found, box: str, seq: int) -> list[Sealed]:
    return [s for t in found.texts.get(seq, []) if (s := _sealed(t, box_id=box, seq=seq))]


def _vouched(copies: list[Sealed], following: list[Sealed]) -> list[Sealed]:
    """The copies the next event's link vouches for: after a loss nothing before them can, so
    a text altered on a damaged page is not sealed again as if it were the event. When the
    next event is unreadable too, nothing can vouch, and the copies are taken as they are."""
    if not following:
        return copies
    links = {f.event.prev_hash for f in following}
    return [c for c in copies if event_hash(c.text) in links]


def _named_box(found: Found) -> str | None:
    for copies in found.texts.values():
        for text in copies:
            try:
                return Sealed.of(text).event.box_id
            except MessageError:
                continue
    return None


def _anchor(found: Found, box: str) -> ChainLink:
    """The link of the last acknowledged event: from its stored text when readable; else the
    file's chain head when nothing came after it; else what the first unsent event says."""
    acked = found.acked_through
    if acked == 0:
        return ChainLink.start(box)
    if found.anchor_text is not None:
        sealed = _sealed(found.anchor_text, box_id=box, seq=acked)
        if sealed is not None:
            return ChainLink.after(sealed)
    if found.chain_head is not None and found.next_seq == acked + 1:
        return ChainLink(box_id=box, seq=acked, hash=found.chain_head, chained=True)
    for text in found.texts.get(acked + 1, []):
        sealed = _sealed(text, box_id=box, seq=acked + 1)
        if sealed is not None and sealed.event.prev_hash is not None:
            return ChainLink(box_id=box, seq=acked, hash=sealed.event.prev_hash, chained=True)
    # Unknown: the next event will show HQ a break here, which is the truth.
    return ChainLink(box_id=box, seq=acked, hash=GENESIS_HASH, chained=True)


def restore(conn: sqlite3.Connection, rescued: Plan) -> None:
    """Inside the caller's transaction on a fresh cache (no event yet): the plan's events, their
    outbox rows and the chain's position."""
    if not conn.in_transaction:
        raise RuntimeError("event_rescue.restore must run inside the caller's transaction")
    if rescued.head is None:
        return
    conn.executemany(
        "INSERT INTO events (seq, event_id, type, code, occurred_us, body) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [
            (e.seq, e.event_id, e.type.value, e.code, to_us(e.occurred_at), s.text)
            for s in rescued.events
            for e in (s.event,)
        ],
    )
    conn.executemany(
        "INSERT INTO outbox (seq, payload) VALUES (?, ?)",
        [(s.event.seq, s.text) for s in rescued.events],
    )
    conn.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (
            ("next_seq", rescued.head.seq + 1),
            ("chain_head", rescued.head.hash),
            ("acked_through", rescued.acked_through),
        ),
    )
