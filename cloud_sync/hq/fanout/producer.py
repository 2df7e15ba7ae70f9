"""One step of the fan-out: what changed, as each store's next deltas.

Theory of operation
-------------------
Two sources change what a store's boxes must hold: HQ's own decisions, journalled by the
central store in the transaction that makes them (codes minted or revoked, links, members,
campaigns, store keys; each scoped to one store or to every store, ``*``), and what the fleet
did, queued by ingest: redemptions and returns (``use_totals``), receipt coupons issued to
members (``member_issues``) and members' points balances the ledger moved
(``member_points``). ``step`` takes a page of each,
groups the changes by the store that must see them, and appends each store's as its next
deltas (``delta_log.append``), in one event store transaction that also moves the journal
cursor (``fanout_meta.journal_id``) and empties the queue rows it took. So a crash repeats a
step, never half of one: either the deltas, the cursor and the queue all moved, or none did.

Who sees what: a journalled change goes to its store, or to every known store for ``*``; a
use total or an issue goes to every known store, the one it happened at included (its other
boxes count it; the box that made it skips it). A known store is one with a box HQ has heard
from (events or a position) or a delta stream already (a snapshot cut for it starts one).

A journal backlog of more than ``resync_rows`` rows (a mint of millions of codes, or the
first step of a fan-out over a central store that already holds them) is not made into
deltas: every store would get its own copy of every change, signed and stored, when one
snapshot per store holds the same in a fraction of the bytes and loads in seconds. The step
moves the cursor past the backlog and gives every known store a new stream
(``delta_log.restart``): each box then says a position in the old one, is offered a snapshot
cut after the backlog, and follows the new stream from it. Changes are state-now, so what the
snapshot holds and the deltas after it carry again is harmless.

Only one fan-out may step at a time (``delta_log.LOCK``; on PostgreSQL an advisory lock): a
second one waits for the first's transaction, then finds the work done.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.contract.delta import Change
from cloud_sync.hq.fanout import delta_log, member_issues, member_points, use_totals
from cloud_sync.hq.fanout.delta_log import Published
from cloud_sync.hq.ingest.event_store import Tx

log = logging.getLogger("storeside.hq.fanout")
ALL_STORES: Final = "*"
JOURNAL_PAGE: Final = 20_000
RESYNC_ROWS: Final = 200_000  # a backlog beyond this goes to the boxes as snapshots


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalEntry:
    id: int  # ascending in commit order
    store_id: str  # a store, or ALL_STORES
    change: Change


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalPage:
    entries: Sequence[JournalEntry]  # in id order; several may share an id
    through: int  # the journal is read through this id (some ids make no entry)


class Journal(Protocol):
    """The central store's change journal (``central_journal.py``), read from a position:
    at most ``limit`` journal ids after ``after_id``."""

    def changes_after(self, after_id: int, *, limit: int) -> JournalPage: ...

    def last_id(self) -> int | None:
        """The newest journal id (0: empty), or None when it cannot be read now."""
        ...


def known_stores(tx: Tx) -> list[str]:
    rows = tx.query(
        "SELECT store_id FROM streams UNION SELECT store_id FROM box_positions "
        "UNION SELECT store_id FROM delta_heads"
    )
    return sorted({str(r[0]) for r in rows})


def boxes_of(tx: Tx, store_id: str) -> list[str]:
    rows = tx.query(
        "SELECT box_id FROM streams WHERE store_id = ? "
        "UNION SELECT box_id FROM box_positions WHERE store_id = ?",
        (store_id, store_id),
    )
    return sorted({str(r[0]) for r in rows})


def journal_cursor(tx: Tx) -> int:
    rows = tx.query("SELECT value FROM fanout_meta WHERE key = 'journal_id'")
    return int(rows[0][0]) if rows else 0


def step(
    tx: Tx,
    *,
    journal: Journal | None,
    key: Ed25519PrivateKey,
    now: datetime,
    journal_page: int = JOURNAL_PAGE,
    use_page: int = use_totals.PAGE,
    issue_page: int = member_issues.PAGE,
    points_page: int = member_points.PAGE,
    resync_rows: int = RESYNC_ROWS,
) -> list[Published]:
    """One step (see the module docstring): the deltas made, to publish."""
    tx.lock_keys([delta_log.LOCK])
    stores = known_stores(tx)
    changes: dict[str, list[Change]] = {s: [] for s in stores}
    if journal is not None and _resync(tx, journal, stores, resync_rows, now):
        journal = None  # this step's journal work is done: the backlog goes as snapshots
    if journal is not None:
        cursor = journal_cursor(tx)
        page = journal.changes_after(cursor, limit=journal_page)
        for entry in page.entries:
            targets = stores if entry.store_id == ALL_STORES else [entry.store_id]
            for store in targets:
                changes.setdefault(store, []).append(entry.change)
        if page.through > cursor:
            _move_cursor(tx, page.through)
    used = (
        use_totals.take(tx, limit=use_page)
        + member_issues.take(tx, limit=issue_page)
        + member_points.take(tx, limit=points_page)
    )
    published: list[Published] = []
    for store in sorted(changes):
        mine = changes[store] + used if store in stores else changes[store]
        published.extend(delta_log.append(tx, store, mine, key=key, now=now))
    return published


def _move_cursor(tx: Tx, through: int) -> None:
    tx.execute(
        "INSERT INTO fanout_meta (key, value) VALUES ('journal_id', ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (through,),
    )


def _resync(tx: Tx, journal: Journal, stores: list[str], rows: int, now: datetime) -> bool:
    """Skip a backlog of more than ``rows`` journal rows: restart every known store's stream
    (see the module docstring). True if it did."""
    last, cursor = journal.last_id(), journal_cursor(tx)
    if last is None or last - cursor <= rows:
        return False
    log.warning(
        "fan-out: %d journal rows waiting (over %d): %d stores get a new stream and "
        "their boxes a snapshot instead of deltas",
        last - cursor,
        rows,
        len(stores),
    )
    for store in stores:
        delta_log.restart(tx, store, now=now)
    _move_cursor(tx, last)
    return True
