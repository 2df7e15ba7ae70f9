"""The event store in PostgreSQL (psycopg 3): HQ at fleet scale, many ingest workers at once.

Theory of operation
-------------------
Workers share the events subscription, so two consecutive batches of one box can be handled at
the same moment by two workers. Each group of batches runs in one transaction that first locks
its boxes' stream heads, in box id order: ``INSERT ... ON CONFLICT DO NOTHING`` (so a box's
very first batches race on the primary key, and the loser waits for the winner's commit) and
then ``SELECT ... ORDER BY box_id FOR UPDATE``. Two groups sharing boxes so wait for each other
in one order, never in a cycle. Under READ COMMITTED every statement after the lock sees what
the previous holder committed, so the second worker continues exactly where the first stopped:
the result is the serial one. Redemptions of one code from two boxes are counted under an
advisory lock on the code (``lock_keys``), taken after the insert, so whichever transaction
counts second sees the first one's rows.

Transient failures are retried here, the whole ``work`` again (it is a function of what it
reads, ``event_store.py``): a deadlock (the stream and code locks are taken in one order
everywhere, but a row another transaction has just inserted, such as one event id from two
boxes, is waited for wherever it is met) and a unique violation (two boxes inserting one event
id at once: the retry sees the other's row and quarantines). A lost connection is
``StoreUnavailableError``; the next ``run`` connects afresh. Rows go in with ``COPY``, the
fastest way in (~5x ``executemany`` here).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Self, TypeVar

import psycopg
from psycopg import errors as pg_errors

from cloud_sync.contract.event_envelope import GENESIS_HASH
from cloud_sync.hq.ingest.errors import EventStoreFileError, StoreUnavailableError
from cloud_sync.hq.ingest.event_store import Row, migrate
from cloud_sync.hq.ingest.schema import Dialect

T = TypeVar("T")
RETRIES = 5
CONNECT_TIMEOUT_S = 5
_RETRIED = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure, pg_errors.UniqueViolation)
# FOR UPDATE locks the rows as the sorted scan returns them (LockRows runs above Sort), so
# in box id order; the insert goes in that order too, for the same reason.
_HEADS = (
    "SELECT box_id, store_id, stored_through, head_hash, head_chained FROM streams "
    "WHERE box_id = ANY(%s) ORDER BY box_id FOR UPDATE"
)
_NEW_HEADS = (
    "INSERT INTO streams (box_id, store_id, stored_through, head_hash, head_chained) "
    "SELECT box_id, store_id, 0, %s, 0 FROM unnest(%s::text[], %s::text[]) AS h(box_id, "
    "store_id) ORDER BY box_id ON CONFLICT (box_id) DO NOTHING"
)
# Sorted, so two transactions wanting the same codes take them in one order.
_LOCK_KEYS = (
    "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) "
    "FROM (SELECT DISTINCT unnest(%s::text[]) AS k ORDER BY 1) AS wanted"
)
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


def _pg(sql: str) -> str:
    """The shared SQL's ``?`` placeholders as psycopg's ``%s`` (no shared SQL has ``%``)."""
    return sql.replace("?", "%s")


class _PostgresTx:
    dialect = Dialect.POSTGRESQL

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        return self._conn.execute(_pg(sql), params).rowcount

    def query(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        return self._conn.execute(_pg(sql), params).fetchall()

    def insert_many(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[object]]
    ) -> None:
        with (
            self._conn.cursor() as cur,
            cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def execute_many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        with self._conn.cursor() as cur:
            cur.executemany(_pg(sql), rows)

    def lock_streams(self, heads: Sequence[tuple[str, str]]) -> dict[str, Row]:
        boxes = [box for box, _ in heads]
        stores = [store for _, store in heads]
        self._conn.execute(_NEW_HEADS, (GENESIS_HASH, boxes, stores))
        rows = self._conn.execute(_HEADS, (boxes,)).fetchall()
        locked = {str(row[0]): tuple(row[1:]) for row in rows}
        assert len(locked) == len(set(boxes))  # inserted above, and heads are never deleted
        return locked

    def lock_keys(self, keys: Sequence[str]) -> None:
        if keys:
            self._conn.execute(_LOCK_KEYS, (list(keys),))


class PostgresEventStore:
    def __init__(self, url: str) -> None:
        self._url = url
        self._conn: psycopg.Connection[Any] | None = None

    @property
    def location(self) -> str:
        return _PASSWORD.sub(r"\1***@", self._url)

    @classmethod
    def connect(cls, url: str) -> Self:
        store = cls(url)
        try:
            store.run(migrate)
        except psycopg.Error as exc:
            store.close()
            raise EventStoreFileError(f"{store.location}: {exc}") from exc
        return store

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            try:
                self._conn = psycopg.connect(
                    self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
                )
            except psycopg.OperationalError as exc:
                raise StoreUnavailableError(f"{self.location}: {exc}") from exc
        return self._conn

    def run(self, work: Callable[[_PostgresTx], T]) -> T:
        return self._transaction(work, read_only=False)

    def read(self, work: Callable[[_PostgresTx], T]) -> T:
        return self._transaction(work, read_only=True)

    def _transaction(self, work: Callable[[_PostgresTx], T], *, read_only: bool) -> T:
        for attempt in range(RETRIES):
            conn = self._connection()
            try:
                with conn.transaction():
                    if read_only:
                        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    return work(_PostgresTx(conn))
            except _RETRIED:
                if attempt == RETRIES - 1:
                    raise
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:  # server gone
                raise StoreUnavailableError(f"{self.location}: {exc}") from exc
        raise AssertionError("unreachable: the last attempt returns or raises")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
