"""The box's one way to write: ``with transaction(conn):``. Nothing else says BEGIN or COMMIT.

Theory of operation
-------------------
Every connection on the box is in autocommit mode (``isolation_level=None``: the sqlite3 module
never opens a transaction on its own), and every write runs inside this helper:

* **Outermost** (the connection is in no transaction): ``BEGIN IMMEDIATE`` ... ``COMMIT``.
  IMMEDIATE takes the write lock before anything is read, so a check-then-write inside cannot
  race another connection (the print worker's, ``edge-agent load-snapshot`` beside a running
  agent); ``busy_timeout`` makes it wait for the other writer's short transaction.
* **Nested** (the connection is already in a transaction): a ``SAVEPOINT``, released at the
  end. Its writes become durable only with the outermost COMMIT.
* **Any exception, BaseException included** (KeyboardInterrupt, SystemExit, GeneratorExit): the
  block's writes are rolled back (to its savepoint when nested, whole when outermost), then the
  exception goes on. A failing COMMIT or RELEASE is rolled back the same way, so the connection
  is never left inside a transaction that a later, unrelated block would commit.

Why nested blocks are savepoints (rather than refused, or joined bare): group commit
(``CodeCache.group``) runs many tills' operations inside one transaction, one savepoint each,
and every operation writes through this same helper; operations also call each other (a till's
throttle flag is written inside a commit). Refusing to nest would make every caller ask "am I
already inside one?"; joining bare would let a failure that its caller catches leave half of
the inner block's writes in the outer transaction. A savepoint gives the inner block the same
all-or-nothing as the outer one without its knowing where it runs, for two statements and no
fsync. Savepoints share one name: SQLite's ROLLBACK TO and RELEASE act on the newest savepoint
of that name, which is always this block's own.

A transaction lost underneath: SQLite ends a transaction by itself on some errors (SQLITE_FULL,
an I/O error), and a bug may ROLLBACK by hand. A nested block that then said SAVEPOINT would
open a new transaction that its RELEASE commits on its own: durable, outside its caller's
all-or-nothing, and reported to nobody. So the helper counts the levels it has open on each
connection, and a block that finds its outer transaction gone raises ``TransactionLostError``
(a ``CacheError``) instead of writing: on entry, and on a clean exit, where COMMIT or RELEASE
would otherwise be said to nothing.

Like a connection, one connection's transactions belong to one thread at a time; the print
worker's connection and the DB thread's are independent.
"""

from __future__ import annotations

import sqlite3
from types import TracebackType

from edge_agent.errors import TransactionLostError

_SAVEPOINT = "nested_tx"
# id(conn) -> how many blocks of this helper are open on it. Connections take no weak
# references, so the entry is removed when the outermost block ends (it always does: __exit__
# runs on every way out of a ``with``), and a recycled id never sees a stale count.
_levels: dict[int, int] = {}


class Transaction:
    """One block of ``transaction(conn)``; see the module docstring. Not reusable."""

    __slots__ = ("_conn", "_key", "_nested")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._key = id(conn)
        self._nested = False

    def __enter__(self) -> sqlite3.Connection:
        conn = self._conn
        depth = _levels.get(self._key, 0)
        if conn.in_transaction:
            # Inside ours, or inside one opened by hand (tests): a savepoint either way.
            conn.execute(f"SAVEPOINT {_SAVEPOINT}")
            self._nested = True
        elif depth:
            raise TransactionLostError("the enclosing transaction ended early: nothing written")
        else:
            conn.execute("BEGIN IMMEDIATE")
        _levels[self._key] = depth + 1
        return conn

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        depth = _levels.pop(self._key) - 1
        if depth:
            _levels[self._key] = depth
        conn = self._conn
        if kind is not None:
            self._undo()
            return  # the block's exception goes on
        if not conn.in_transaction:
            raise TransactionLostError("the transaction ended early: none of its writes happened")
        try:
            conn.execute(f"RELEASE {_SAVEPOINT}" if self._nested else "COMMIT")
        except BaseException:
            self._undo()
            raise

    def _undo(self) -> None:
        conn = self._conn
        if not conn.in_transaction:  # SQLite has already rolled it all back
            return
        if self._nested:
            # ROLLBACK TO keeps the savepoint open; RELEASE then drops it (writing nothing).
            conn.execute(f"ROLLBACK TO {_SAVEPOINT}")
            conn.execute(f"RELEASE {_SAVEPOINT}")
        else:
            conn.execute("ROLLBACK")


def transaction(conn: sqlite3.Connection) -> Transaction:
    """``with transaction(conn) as conn:``: all-or-nothing; BEGIN IMMEDIATE when outermost, a
    savepoint of the caller's transaction when nested (see the module docstring)."""
    return Transaction(conn)
