"""The event store's seam: a transaction (``Tx``) and a store that runs work in one.

Theory of operation
-------------------
Everything ingest and the views do to the database is written once, against ``Tx``, in SQL
both backends speak: ``?`` placeholders (PostgreSQL's adapter turns them into ``%s``),
``INSERT ... ON CONFLICT``, partial indexes. What differs between the backends is only what
cannot be said the same way, and it sits behind five methods:

    lock_streams  insert the boxes' stream heads where absent, then hold their locks until the
                  transaction ends, taken in box id order (so two transactions wanting some
                  of the same boxes cannot deadlock on them). SQLite: the whole database is
                  locked by BEGIN IMMEDIATE already. PostgreSQL: ``SELECT ... ORDER BY box_id
                  FOR UPDATE`` of the head rows, inserted first with ``ON CONFLICT DO
                  NOTHING`` so the first batch of a box locks too.
    lock_keys     hold named locks (a code whose redemptions are being counted, the schema):
                  a no-op on SQLite, transaction-level advisory locks on PostgreSQL, taken in
                  sorted order.
    insert_many   many rows into one table: ``executemany`` on SQLite, ``COPY`` on PostgreSQL.
    execute_many  one statement for many parameter rows: ``executemany`` on both (psycopg
                  pipelines it: one round trip, not one per row).
    dialect       for the schema's column types.

``EventStore.run(work)`` runs ``work(tx)`` in one transaction and commits it, or rolls it all
back on any exception. ``work`` must do nothing but database work through ``tx``: a backend
may run it again after a transient failure (PostgreSQL's deadlock or a concurrent insert of the
same event id), so it must be a function of what it reads. When the database cannot be reached
``run`` raises ``StoreUnavailableError`` and nothing was committed.

``open_event_store(location)`` picks the backend: a ``postgresql://`` (or ``postgres://``)
URL is PostgreSQL, anything else is the path of a SQLite file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from cloud_sync.hq.ingest.errors import EventStoreFileError
from cloud_sync.hq.ingest.schema import (
    MIGRATION_LOCK,
    MIGRATIONS,
    SCHEMA_VERSION,
    Dialect,
    statements,
)

T = TypeVar("T")
Row = tuple[Any, ...]
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class Tx(Protocol):
    """One open transaction of the event store."""

    @property
    def dialect(self) -> Dialect: ...

    def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        """Run one statement; the number of rows it changed."""

    def query(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """Run one query; all its rows."""

    def insert_many(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[object]]
    ) -> None:
        """Insert ``rows`` (values in ``columns`` order) into ``table``."""

    def execute_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """Run one statement once per row of parameters."""

    def lock_streams(self, heads: Sequence[tuple[str, str]]) -> dict[str, Row]:
        """Create the stream heads of ``heads``' ``(box_id, store_id)`` where absent and lock
        them for the transaction, in box id order: each box's ``(store_id, stored_through,
        head_hash, head_chained)``."""

    def lock_keys(self, keys: Sequence[str]) -> None:
        """Hold the named locks until the transaction ends."""


class EventStore(Protocol):
    @property
    def location(self) -> str:
        """Where the store is, without any password: for logs."""

    def run(self, work: Callable[[Tx], T]) -> T:
        """``work(tx)`` in one transaction, committed; see the module docstring."""

    def read(self, work: Callable[[Tx], T]) -> T:
        """``work(tx)`` in one read-only transaction: one consistent view of the store that
        takes no write lock (on SQLite, ``run`` holds the file's one write lock throughout),
        so a reader (the ledger API, a finance report) never holds up ingest. A write in it
        fails."""

    def close(self) -> None: ...


def open_event_store(location: str) -> EventStore:
    """The store at ``location`` (created and migrated if new): PostgreSQL for a
    ``postgresql://`` URL, else a SQLite file."""
    if location.startswith(POSTGRES_SCHEMES):
        from cloud_sync.hq.ingest.postgres_backend import PostgresEventStore  # noqa: PLC0415

        return PostgresEventStore.connect(location)
    from cloud_sync.hq.ingest.sqlite_backend import SqliteEventStore  # noqa: PLC0415

    return SqliteEventStore.open(Path(location))


def migrate(tx: Tx) -> None:
    """Apply the migrations ``tx``'s store is missing (see ``schema.py``)."""
    tx.lock_keys([MIGRATION_LOCK])
    tx.execute("CREATE TABLE IF NOT EXISTS ingest_schema (version INTEGER NOT NULL)")
    rows = tx.query("SELECT version FROM ingest_schema")
    version = int(rows[0][0]) if rows else 0
    if version > SCHEMA_VERSION:
        raise EventStoreFileError(
            f"the event store has schema version {version}; this HQ knows {SCHEMA_VERSION}"
        )
    for steps in MIGRATIONS[version:]:
        for step in statements(tx.dialect, steps):
            tx.execute(step)
    if not rows:
        tx.execute("INSERT INTO ingest_schema (version) VALUES (?)", (SCHEMA_VERSION,))
    elif version != SCHEMA_VERSION:
        tx.execute("UPDATE ingest_schema SET version = ?", (SCHEMA_VERSION,))


def to_micros(moment: datetime) -> int:
    """An aware time as UTC epoch microseconds (how the store keeps every time)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: times are aware UTC")
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    return datetime.fromtimestamp(micros // 1_000_000, UTC).replace(microsecond=micros % 1_000_000)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
