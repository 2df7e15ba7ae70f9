"""The cache checked at agent start; a damaged one set aside (never deleted), its unsent events
rescued into a fresh cache, which then resyncs from HQ.

Theory of operation
-------------------
When to check: ``PRAGMA quick_check`` reads every page of the file. On a 10,000,000-code cache
(885 MB, ``bench/bench_lookup.py``'s) it took 2.7-4.4 s on the 2-core dev machine with the file
in the page cache and 17 s once when it was not, more on a Pi's SD card: several times the
whole cold-start budget (<= 1 s). So it runs only when the last run did not end cleanly,
which is when damage happens (a power cut, a kill, a crash mid-write): ``running`` creates a
marker file beside the cache (``<cache>.running``) before the agent opens it and removes it
after the agent closed it. A marker found at start means the last run never reached its end,
and the check runs then; a clean restart pays only one open and close of the cache (2-17 ms
on that file). Damage that shows on open is caught on every start, marker or not: SQLite's
``SQLITE_CORRUPT`` ("database disk image is malformed") or ``SQLITE_NOTADB`` from the open,
the migrations or the identity reads. Damage that neither the open nor a clean run touches
waits for the next unclean end.

Only those two codes count as damage. Anything else (a locked file, a full disk, a file of a
newer agent or another store) is not the file's fault and is raised as before: setting a
healthy cache aside would throw away the store's state for nothing.

What a damaged cache becomes, in this order (``recover``):

    1. set aside: the file and its ``-wal`` and ``-shm`` renamed in the same folder to
       ``<name>.damaged-<UTC timestamp>`` (+ ``-wal``/``-shm``, so SQLite still reads the
       set-aside WAL with it); a rename, never a copy or a delete: the bytes are evidence
       and may hold what only a person with ``sqlite3 .recover`` can still get out
    2. its unsent events read read-only, as far as they can be read (``event_rescue.read``)
    3. a fresh cache created at the old path, with the same box id (config's, else the
       damaged file's, else the one its events name), and the rescued events appended to
       its outbox in one transaction (``event_rescue.restore``), so the pump sends them and
       HQ stores each once
    4. the fresh cache follows no delta stream: the follower says so on connect and HQ offers
       it a snapshot (``delta_log.catch_up``: "the cache follows no delta stream"), which it
       fetches and loads live, as a new box does. Until then it has no codes.

Each step is logged at WARNING or ERROR with the reason and the names, for journald.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from edge_agent.cache import event_rescue
from edge_agent.cache.code_cache import CodeCache
from edge_agent.errors import CacheError

log = logging.getLogger(__name__)
DAMAGE_CODES: Final = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
SIDE_FILES: Final = ("", "-wal", "-shm")


@dataclass(frozen=True, slots=True, kw_only=True)
class Recovered:
    """What ``recover`` did with a damaged cache."""

    reason: str
    set_aside: Path
    rescued: event_rescue.Plan


def marker(path: Path) -> Path:
    return path.with_name(path.name + ".running")


@contextmanager
def running(path: Path) -> Iterator[None]:
    """The agent's run on ``path``: the marker exists from before its open until after its
    close, so only a run that ended cleanly (also with a core failure) removes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    marker(path).touch()
    yield
    marker(path).unlink(missing_ok=True)


def damage_of(exc: sqlite3.DatabaseError) -> str | None:
    """The reason if ``exc`` says the file is damaged, else None."""
    code = getattr(exc, "sqlite_errorcode", None)
    return str(exc) if code in DAMAGE_CODES else None


def quick_check(path: Path) -> str | None:
    """None if ``PRAGMA quick_check`` finds ``path`` sound, else its first complaint. Opened
    read-only, so a damaged file's WAL is read, never checkpointed into it."""
    try:
        conn = sqlite3.connect(event_rescue.read_only_uri(path), uri=True)
        try:
            rows = conn.execute("PRAGMA quick_check(20)").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        reason = damage_of(exc)
        if reason is None:
            raise CacheError(f"{path}: {exc}") from exc
        return reason
    found = [str(r[0]) for r in rows]
    return None if found == ["ok"] else "; ".join(found)


def check_at_start(
    path: Path, *, store_id: str, box_id: str | None, now: datetime
) -> Recovered | None:
    """Before the agent opens ``path``: check it (after an unclean end, see the module
    docstring) and open it once; a damaged one is recovered. None: the cache is as it was."""
    if not path.exists():
        return None
    reason = quick_check(path) if marker(path).exists() else None
    if reason is None:
        try:
            CodeCache.open(path, store_id=store_id, box_id=box_id).close()
        except (CacheError, sqlite3.DatabaseError) as exc:
            # CodeCache.open maps SQLite's errors to CacheError, keeping the cause.
            cause = exc if isinstance(exc, sqlite3.DatabaseError) else exc.__cause__
            if not isinstance(cause, sqlite3.DatabaseError) or damage_of(cause) is None:
                raise
            reason = str(cause)
        else:
            return None
    return recover(path, reason=reason, store_id=store_id, box_id=box_id, now=now)


def recover(
    path: Path, *, reason: str, store_id: str, box_id: str | None, now: datetime
) -> Recovered:
    """Set the damaged cache at ``path`` aside, rescue its unsent events into a fresh one."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    log.error("cache %s is damaged (%s): setting it aside as %s", path, reason, aside.name)
    for suffix in SIDE_FILES:
        source = Path(f"{path}{suffix}")
        if source.exists():
            source.rename(f"{aside}{suffix}")
    try:
        found = event_rescue.read(aside)
    except sqlite3.DatabaseError as exc:
        log.error("cache %s: no event could be read (%s)", aside.name, exc)
        found = event_rescue.Found(
            box_id=None, acked_through=0, next_seq=None, chain_head=None,
            anchor_text=None, texts={}, unreadable_reads=1,
        )  # fmt: skip
    plan = event_rescue.plan(found, box_id=box_id)
    cache = CodeCache.open(path, store_id=store_id, box_id=plan.box_id)
    try:
        with cache.transaction() as conn:
            event_rescue.restore(conn, plan)
    finally:
        cache.close()
    marker(path).unlink(missing_ok=True)
    _log_rescue(path, aside, plan, found.unreadable_reads)
    return Recovered(reason=reason, set_aside=aside, rescued=plan)


def _log_rescue(path: Path, aside: Path, plan: event_rescue.Plan, failed: int) -> None:
    log.warning(
        "cache %s created afresh for box %s: %d unsent event(s) rescued from %s "
        "(%d as written, %d sealed again after a loss; %d read(s) failed); acknowledged "
        "through seq %d; it asks HQ for a snapshot",
        path,
        plan.box_id,
        len(plan.events),
        aside.name,
        plan.kept,
        plan.resequenced,
        failed,
        plan.acked_through,
    )
    if plan.lost:
        seqs = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in plan.lost)
        log.error(
            "cache %s: event seq(s) %s could not be read and are lost; if HQ holds them, it "
            "will quarantine the box's next events at those seqs as conflicting",
            aside.name,
            seqs,
        )
    if plan.head is None:
        log.error("cache %s: no box id could be read; no event was rescued", aside.name)
