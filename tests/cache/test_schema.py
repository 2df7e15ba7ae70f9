"""Migrations as code: fresh files, old files upgrading in place, newer files refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud_sync.contract.event_envelope import GENESIS_HASH, event_hash
from edge_agent.cache import schema
from edge_agent.cache.code_cache import CodeCache
from edge_agent.errors import CacheError, SchemaTooNewError, StoreMismatchError
from tests.cache.factories import NOW, STORE, A, open_cache


def test_fresh_file_gets_every_migration_and_the_pragmas(tmp_path: Path) -> None:
    cache = CodeCache.open(tmp_path / "c.db", store_id=STORE)
    conn = cache.conn
    assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    assert conn.execute("PRAGMA cache_size").fetchone()[0] == -16_384
    assert len(cache.box_id) == 32
    cache.close()


def test_v1_file_upgrades_in_place_and_keeps_its_codes(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = schema.connect(path, cache_kib=1024, busy_timeout_ms=100)
    assert schema.migrate(db, upto=1) == 0
    db.conn.execute(
        "INSERT INTO codes VALUES (?, 'C1', 'M1', 'active', 'app', 'A', NULL, NULL, NULL)", (A,)
    )
    box_id = db.conn.execute("SELECT value FROM meta WHERE key = 'box_id'").fetchone()[0]
    assert "redemptions" not in db.table_names()
    db.close()

    cache = CodeCache.open(path, store_id=STORE)
    assert cache.conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    assert {"redemptions", "outbox", "events", "requests"} <= set(cache.db.table_names())
    assert cache.conn.execute("SELECT count(*) FROM codes").fetchone()[0] == 1
    assert cache.box_id == box_id  # the box keeps its identity across upgrades
    cache.close()


def test_v6_file_keys_its_sales_by_till_on_upgrade(tmp_path: Path) -> None:
    """v7 rebuilds the keyed tables; each old row gets the till its own records name."""
    path = tmp_path / "v6.db"
    db = schema.connect(path, cache_kib=1024, busy_timeout_ms=100)
    schema.migrate(db, upto=6)
    for sql in (
        "INSERT INTO reservations VALUES ('H1', 'T-2', 'S1', 'till-2', 'k', 'M1', 1, 9)",
        "INSERT INTO redemptions VALUES (7, 'R1', 'T-1', 'C1', 'M1', 'S1', 'till-1', 'k', "
        "'app', 'A', 500, 100, 0, 5)",
        "INSERT INTO reversals VALUES (7, 'RET-1', 100, 6, 'desk', 'k')",
        "INSERT INTO requests VALUES ('T-1', 'R1', 'commit', '{}', 5)",
        "INSERT INTO requests VALUES ('T-2', 'H1', 'reserve', '{}', 1)",
        "INSERT INTO requests VALUES ('T-1', 'R1', 'reverse:RET-1', '{}', 6)",
        "INSERT INTO requests VALUES ('T-3', 'X1', 'void', '{}', 2)",
        "INSERT INTO coupon_issues VALUES ('T-1', 0, 'M1', 'C1', 'A', 'Q1', 5, 99, '{}')",
        "INSERT INTO print_jobs (code, transaction_id, document, state, next_attempt_us, "
        "created_us, updated_us) VALUES ('Q1', 'T-1', '{}', 'pending', 5, 5, 5)",
    ):
        db.conn.execute(sql)
    db.close()

    cache = CodeCache.open(path, store_id=STORE)
    conn = cache.conn
    assert conn.execute("SELECT till_id, transaction_id FROM reservations").fetchall() == [
        ("till-2", "T-2")
    ]
    assert conn.execute("SELECT id, till_id, amount FROM redemptions").fetchall() == [
        (7, "till-1", 500)
    ]
    assert conn.execute("SELECT till_id, return_id FROM reversals").fetchall() == [
        ("desk", "RET-1")
    ]
    assert sorted(
        conn.execute("SELECT till_id, transaction_id, code, operation FROM requests")
    ) == [
        ("", "T-3", "X1", "void"),  # nothing places it: the empty till, which no till has
        ("desk", "RET-1", "R1", "reverse"),  # keyed by the returning till's return id
        ("till-1", "T-1", "R1", "commit"),
        ("till-2", "T-2", "H1", "reserve"),
    ]
    assert conn.execute("SELECT till_id, code FROM coupon_issues").fetchall() == [("", "Q1")]
    assert conn.execute("SELECT till_id, code FROM print_jobs").fetchall() == [("", "Q1")]
    cache.close()


def test_newer_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    CodeCache.open(path, store_id=STORE).close()
    db = schema.connect(path, cache_kib=1024, busy_timeout_ms=100)
    db.conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(SchemaTooNewError) as err:
        CodeCache.open(path, store_id=STORE)
    assert err.value.found == schema.SCHEMA_VERSION + 1
    db = schema.connect(path, cache_kib=1024, busy_timeout_ms=100)
    assert db.conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION + 1
    db.close()


def test_another_stores_file_is_refused(tmp_path: Path) -> None:
    open_cache(tmp_path / "c.db").close()
    with pytest.raises(StoreMismatchError):
        CodeCache.open(tmp_path / "c.db", store_id="S2")


def test_garbage_file_is_a_cache_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CacheError):
        CodeCache.open(path, store_id=STORE)


def test_reopen_keeps_state_and_synced_at(tmp_path: Path) -> None:
    cache = open_cache(tmp_path / "c.db")
    synced = cache.synced_at()
    cache.close()
    again = CodeCache.open(tmp_path / "c.db", store_id=STORE)
    assert again.synced_at() == synced
    facts = again.lookup(A, "M1", NOW)
    assert facts is not None
    assert facts.record.member_id == "M1"
    again.close()


def test_v8_file_starts_its_chain_on_its_last_event(tmp_path: Path) -> None:
    """v9: the first chained event links to the last stored (version 1) event's bytes."""
    path = tmp_path / "v8.db"
    db = schema.connect(path, cache_kib=1024, busy_timeout_ms=100)
    schema.migrate(db, upto=8)
    bodies = ['{"seq":1,"v":"one"}', '{"seq":2,"v":"two"}']  # only the bytes matter here
    for seq, body in enumerate(bodies, start=1):
        db.conn.execute(
            "INSERT INTO events VALUES (?, ?, 'code.linked', NULL, 0, ?)", (seq, f"e{seq}", body)
        )
    db.conn.execute("UPDATE meta SET value = 3 WHERE key = 'next_seq'")
    db.close()

    cache = CodeCache.open(path, store_id=STORE)
    head = cache.conn.execute("SELECT value FROM meta WHERE key = 'chain_head'").fetchone()[0]
    assert head == event_hash(bodies[-1])
    cache.close()


def test_a_fresh_file_starts_its_chain_at_genesis(tmp_path: Path) -> None:
    cache = CodeCache.open(tmp_path / "c.db", store_id=STORE)
    head = cache.conn.execute("SELECT value FROM meta WHERE key = 'chain_head'").fetchone()[0]
    assert head == GENESIS_HASH
    cache.close()
