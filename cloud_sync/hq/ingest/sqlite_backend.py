"""The event store in one SQLite file: HQ's embedded default (a pilot, a demo, the tests).

WAL, so the views (``storeside-hq fleet``, ``events``) read while a worker writes, and
``synchronous = FULL``: HQ's ack lets a box delete events from its outbox, so a committed
batch must survive a power cut (PERFORMANCE.md: a commit here costs ~0.1-0.3 ms, against a
batch of hundreds of events). ``BEGIN IMMEDIATE`` takes the write lock before anything is
read, which is the per-box lock ingest needs (for every box at once: SQLite has one writer),
so ``lock_streams`` and ``lock_keys`` need no lock of their own. Transactions are HQ's one
helper's (``hq_schema.transaction``), as every other write at HQ. Another process holding the
lock longer than ``busy_timeout`` is ``StoreUnavailableError``: the message comes again.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Self, TypeVar

from cloud_sync.contract.event_envelope import GENESIS_HASH
from cloud_sync.hq.hq_schema import transaction
from cloud_sync.hq.ingest.errors import EventStoreFileError, StoreUnavailableError
from cloud_sync.hq.ingest.event_store import Row, migrate
from cloud_sync.hq.ingest.schema import Dialect

T = TypeVar("T")
BUSY_TIMEOUT_MS = 5_000
_HEAD = "SELECT store_id, stored_through, head_hash, head_chained FROM streams WHERE box_id = ?"
_NEW_HEAD = (
    "INSERT INTO streams (box_id, store_id, stored_through, head_hash, head_chained) "
    "VALUES (?, ?, 0, ?, 0) ON CONFLICT (box_id) DO NOTHING"
)


class _SqliteTx:
    dialect = Dialect.SQLITE

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        return self._conn.execute(sql, params).rowcount

    def query(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        return self._conn.execute(sql, params).fetchall()

    def insert_many(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[object]]
    ) -> None:
        marks = ", ".join("?" * len(columns))
        self._conn.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608 (names are ours)
            rows,
        )

    def execute_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        self._conn.executemany(sql, rows)

    def lock_streams(self, heads: Sequence[tuple[str, str]]) -> dict[str, Row]:
        self._conn.executemany(_NEW_HEAD, [(box, store, GENESIS_HASH) for box, store in heads])
        return {box: self._conn.execute(_HEAD, (box,)).fetchone() for box, _ in heads}

    def lock_keys(self, keys: Sequence[str]) -> None:
        """BEGIN IMMEDIATE already serialises every writer of the file."""


class SqliteEventStore:
    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        # One connection holds one transaction at a time: services sharing this store on
        # several threads (the demo's ingest and fan-out) take turns rather than nesting.
        self._turn = threading.Lock()

    @property
    def location(self) -> str:
        return str(self.path)

    @classmethod
    def open(cls, path: Path) -> Self:
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise EventStoreFileError(f"{path}: cannot open it ({exc})") from exc
        store = cls(conn, path)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if tables and "ingest_schema" not in tables:
                # Never turn another SQLite file (HQ's central store, a box's cache) into an
                # event store: `--db` and `--hq-db` are easy to swap.
                raise EventStoreFileError(f"{path} is a SQLite file but not an HQ event store")
            store.run(migrate)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise EventStoreFileError(f"{path} is not a usable event store: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        return store

    def run(self, work: Callable[[_SqliteTx], T]) -> T:
        try:
            with self._turn, transaction(self._conn):
                return work(_SqliteTx(self._conn))
        except sqlite3.OperationalError as exc:  # locked past the timeout, I/O error, full
            raise StoreUnavailableError(f"{self.path}: {exc}") from exc

    def read(self, work: Callable[[_SqliteTx], T]) -> T:
        # DEFERRED in WAL: a snapshot from the first read on, beside the writer; query_only
        # makes a write an error rather than a silent lock upgrade.
        try:
            with self._turn:
                self._conn.execute("PRAGMA query_only = ON")
                try:
                    with transaction(self._conn, begin="DEFERRED"):
                        return work(_SqliteTx(self._conn))
                finally:
                    self._conn.execute("PRAGMA query_only = OFF")
        except sqlite3.OperationalError as exc:
            raise StoreUnavailableError(f"{self.path}: {exc}") from exc

    def close(self) -> None:
        self._conn.close()
