"""The one transaction helper on each side of the wire (the box's and HQ's), on real files.

Both promise the same: BEGIN IMMEDIATE ... COMMIT when outermost, a savepoint when nested, and
a rollback on any exception, BaseException included, even one raised by COMMIT itself. The
box's helper also refuses to write in the name of a transaction SQLite (or a bug) ended early.
A scan of the source checks that no other module says BEGIN, COMMIT or ROLLBACK.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
import sqlite_utils

from cloud_sync.hq import hq_schema
from edge_agent.cache import schema
from edge_agent.cache.code_cache import CodeCache
from edge_agent.cache.transaction import transaction
from edge_agent.errors import TransactionLostError
from tests.cache.factories import STORE

Helper = Callable[[sqlite3.Connection], AbstractContextManager[object]]
HELPERS: dict[str, Helper] = {"box": transaction, "hq": hq_schema.transaction}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=sorted(HELPERS))
def helper(request: pytest.FixtureRequest) -> Helper:
    return HELPERS[request.param]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "t.db"


@pytest.fixture
def conn(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (v INTEGER PRIMARY KEY)")
    yield conn
    conn.close()


def rows(path: Path) -> list[int]:
    """What another connection sees: only what is committed."""
    with sqlite3.connect(path) as other:
        return [v for (v,) in other.execute("SELECT v FROM t ORDER BY v")]


def put(conn: sqlite3.Connection, *values: int) -> None:
    conn.executemany("INSERT INTO t VALUES (?)", [(v,) for v in values])


def test_a_block_commits_and_takes_the_write_lock_first(
    helper: Helper, conn: sqlite3.Connection, path: Path
) -> None:
    with helper(conn):
        put(conn, 1)
        # IMMEDIATE: another writer is locked out before anything was read or written here.
        with sqlite3.connect(path, timeout=0) as other, pytest.raises(sqlite3.OperationalError):
            other.execute("BEGIN IMMEDIATE")
        assert rows(path) == []
    assert rows(path) == [1]
    assert not conn.in_transaction


@pytest.mark.parametrize("failure", [ValueError, KeyboardInterrupt, SystemExit])
def test_any_exception_rolls_the_block_back(
    helper: Helper, conn: sqlite3.Connection, path: Path, failure: type[BaseException]
) -> None:
    with pytest.raises(failure), helper(conn):
        put(conn, 1, 2)
        raise failure
    assert rows(path) == []
    assert not conn.in_transaction
    with helper(conn):  # and the connection writes on as before
        put(conn, 3)
    assert rows(path) == [3]


@pytest.mark.parametrize("failure", [ValueError, KeyboardInterrupt])
def test_a_nested_block_is_a_savepoint_rolled_back_alone(
    helper: Helper, conn: sqlite3.Connection, path: Path, failure: type[BaseException]
) -> None:
    with helper(conn):
        put(conn, 1)
        with pytest.raises(failure), helper(conn):
            put(conn, 2)
            raise failure
        with helper(conn):
            put(conn, 3)
            with helper(conn):  # deeper still: each level is its own savepoint
                put(conn, 4)
        assert rows(path) == []  # nested blocks are durable only with the outer COMMIT
    assert rows(path) == [1, 3, 4]


def test_an_exception_through_every_level_rolls_back_everything(
    helper: Helper, conn: sqlite3.Connection, path: Path
) -> None:
    with pytest.raises(KeyboardInterrupt), helper(conn):
        put(conn, 1)
        with helper(conn):
            put(conn, 2)
            raise KeyboardInterrupt
    assert rows(path) == []
    assert not conn.in_transaction


def test_a_failing_commit_is_rolled_back_not_left_open(
    helper: Helper, conn: sqlite3.Connection, path: Path
) -> None:
    # A deferred foreign key is checked at COMMIT, which then fails and leaves the
    # transaction open: the helper must roll it back so no later block commits it.
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("CREATE TABLE child (p INTEGER REFERENCES t (v) DEFERRABLE INITIALLY DEFERRED)")
    with pytest.raises(sqlite3.IntegrityError), helper(conn):
        put(conn, 1)
        conn.execute("INSERT INTO child VALUES (99)")
    assert not conn.in_transaction
    assert rows(path) == []


def test_box_refuses_to_write_for_a_transaction_that_ended_early(
    conn: sqlite3.Connection, path: Path
) -> None:
    # A ROLLBACK by hand stands for SQLite ending the transaction itself (SQLITE_FULL, I/O).
    with pytest.raises(TransactionLostError), transaction(conn):
        put(conn, 1)
        conn.execute("ROLLBACK")
        with transaction(conn):  # would otherwise BEGIN anew and commit on its own
            put(conn, 2)
    assert rows(path) == []
    with pytest.raises(TransactionLostError), transaction(conn):  # a clean exit, too
        put(conn, 3)
        conn.execute("ROLLBACK")
    assert rows(path) == []
    with transaction(conn):  # nothing stale is left behind for the connection
        put(conn, 4)
    assert rows(path) == [4]


def test_box_joins_a_transaction_opened_by_hand_as_a_savepoint(
    conn: sqlite3.Connection, path: Path
) -> None:
    conn.execute("BEGIN IMMEDIATE")
    with pytest.raises(ValueError), transaction(conn):
        put(conn, 1)
        raise ValueError
    with transaction(conn):
        put(conn, 2)
    conn.execute("COMMIT")
    assert rows(path) == [2]


def test_cache_transactions_are_savepoints_inside_a_group(tmp_path: Path) -> None:
    cache = CodeCache.open(tmp_path / "c.db", store_id=STORE)
    meta = "INSERT OR REPLACE INTO meta (key, value) VALUES (?, 'x')"
    with cache.group() as operation:
        with operation(), cache.transaction() as conn:
            conn.execute(meta, ("kept",))
        with pytest.raises(KeyboardInterrupt), operation(), cache.transaction() as conn:
            conn.execute(meta, ("dropped",))
            raise KeyboardInterrupt
        with pytest.raises(RuntimeError):  # a group is always outermost
            cache.group().__enter__()
    keys = {k for (k,) in cache.conn.execute("SELECT key FROM meta")}
    assert "kept" in keys and "dropped" not in keys
    cache.close()


def test_an_interrupted_migration_resumes_where_it_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.db"
    db = schema.connect(path, cache_kib=1024, busy_timeout_ms=100)

    steps = list(schema.MIGRATIONS)

    def interrupted(db: sqlite_utils.Database) -> None:
        steps[1](db)
        raise KeyboardInterrupt  # after its DDL ran: none of it may stay

    monkeypatch.setattr(schema, "MIGRATIONS", (steps[0], interrupted, *steps[2:]))
    with pytest.raises(KeyboardInterrupt):
        schema.migrate(db)
    assert db.conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert "redemptions" not in db.table_names()
    monkeypatch.undo()
    assert schema.migrate(db) == 1
    assert db.conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    db.close()


# Statements that open or end a transaction; only the two helpers may say them.
_TX_SQL = re.compile(r"""execute\(\s*f?["'](BEGIN|COMMIT|ROLLBACK|END|SAVEPOINT|RELEASE)\b""")
_HELPERS = {Path("edge_agent/cache/transaction.py"), Path("cloud_sync/hq/hq_schema.py")}


def test_no_module_but_the_helpers_opens_or_ends_a_transaction() -> None:
    found = [
        f"{rel}:{n}"
        for package in ("edge_agent", "cloud_sync", "hardware", "demo")
        for source in sorted((ROOT / package).rglob("*.py"))
        if (rel := source.relative_to(ROOT)) not in _HELPERS
        for n, line in enumerate(source.read_text().splitlines(), start=1)
        if _TX_SQL.search(line)
    ]
    assert found == []
    # The scan would see them: the helpers themselves match.
    assert all(_TX_SQL.search((ROOT / h).read_text()) for h in _HELPERS)
