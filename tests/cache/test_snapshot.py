"""Snapshot loading: atomic replacement, mutable state kept, malformed snapshots refused whole."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_agent.cache import snapshot_load
from edge_agent.cache.code_cache import CodeCache
from edge_agent.domain.promotion import Member
from edge_agent.errors import SnapshotError
from edge_agent.redemption.service import RedemptionService
from tests.cache.factories import (
    FMT,
    NOW,
    A,
    B,
    code,
    code_row,
    generic_promotion,
    open_cache,
    promotion,
    req,
    write_snapshot,
)

C = code("NEWC0D".replace("0", "8"))


def good_snapshot(path: Path, **changes: object) -> Path:
    args: dict[str, object] = {
        "campaigns": [promotion(name="Spring v2"), generic_promotion()],
        "members": [Member(member_id="M1", segment="at_risk"), Member(member_id="M3")],
        "codes": [code_row(A), code_row(C, member_id="M3")],
    }
    args.update(changes)
    return write_snapshot(path, **args)  # type: ignore[arg-type]


def snapshot_of_cache(cache: CodeCache) -> list[tuple[object, ...]]:
    return [
        *cache.conn.execute("SELECT * FROM codes ORDER BY code"),
        *cache.conn.execute("SELECT * FROM campaigns ORDER BY campaign_id"),
        *cache.conn.execute("SELECT * FROM members ORDER BY member_id"),
        *cache.conn.execute("SELECT * FROM meta WHERE key = 'synced_at'"),
    ]


def test_load_replaces_hq_data_and_keeps_redemption_state(tmp_path: Path) -> None:
    cache = open_cache(tmp_path / "c.db")
    service = RedemptionService(cache, fmt=FMT)
    assert service.commit(req(A))[0].redemption is not None
    assert cache.promotion("C1") is not None  # now cached in memory

    info = cache.load_snapshot(good_snapshot(tmp_path / "snap.db"))

    assert info.codes == 2
    assert info.campaigns == 2
    assert info.members == 2
    assert info.created_at == datetime(2025, 3, 1, 11, 0, tzinfo=UTC)
    assert cache.synced_at() == info.created_at
    assert cache.lookup(B, "M2", NOW) is None  # gone from HQ's data
    facts = cache.lookup(A, "M1", NOW)
    assert facts is not None
    assert facts.promotion.name == "Spring v2"  # the in-memory promotion was invalidated
    assert facts.member is not None and facts.member.segment == "at_risk"
    assert facts.usage.code_uses == 1  # the redemption survived the reload
    assert facts.usage.last_redemption is not None
    assert service.commit(req(A, txn="T-9"))[0].redemption is None  # still used
    assert [p.seq for p in cache.pending_outbox()] == [1]
    cache.close()


def test_chunked_copy_gives_the_same_cache(tmp_path: Path) -> None:
    rows = [code_row(code(f"{i:06d}".translate(str.maketrans("01", "ZY")))) for i in range(25)]
    snap = good_snapshot(tmp_path / "snap.db", codes=rows)
    one = open_cache(tmp_path / "one.db")
    many = open_cache(tmp_path / "many.db")
    one.load_snapshot(snap)
    snapshot_load.load_snapshot(many.conn, snap, store_id=many.store_id, chunk=4)
    assert snapshot_of_cache(one) == snapshot_of_cache(many)
    assert len(list(many.conn.execute("SELECT code FROM codes"))) == 25
    one.close()
    many.close()


def test_leftovers_of_an_interrupted_load_are_dropped(tmp_path: Path) -> None:
    cache = open_cache(tmp_path / "c.db")
    cache.conn.execute("CREATE TABLE codes_next (junk TEXT)")
    cache.load_snapshot(good_snapshot(tmp_path / "snap.db"))
    assert "codes_next" not in cache.db.table_names()
    cache.close()


def _exec(sql: str, *params: object) -> Callable[[Path], None]:
    def mutate(path: Path) -> None:
        conn = sqlite3.connect(path)
        conn.execute(sql, params)
        conn.commit()
        conn.close()

    return mutate


def _garbage(path: Path) -> None:
    path.write_bytes(b"garbage" * 1000)


MALFORMED: dict[str, Callable[[Path], None]] = {
    "missing_table": _exec("DROP TABLE members"),
    "extra_column": _exec("ALTER TABLE codes ADD COLUMN extra TEXT"),
    "format_version": _exec("UPDATE snapshot_meta SET value = '3' WHERE key = 'format_version'"),
    "naive_created_at": _exec(
        "UPDATE snapshot_meta SET value = '2025-03-01T11:00:00' WHERE key = 'created_at'"
    ),
    "bad_created_at": _exec(
        "UPDATE snapshot_meta SET value = 'yesterday' WHERE key = 'created_at'"
    ),
    "bad_namespace": _exec("UPDATE snapshot_meta SET value = '0O' WHERE key = 'namespace'"),
    "other_store": _exec("UPDATE snapshot_meta SET value = 'S9' WHERE key = 'store_id'"),
    "campaign_json": _exec("UPDATE campaigns SET body = '{not json' WHERE campaign_id = 'C1'"),
    "campaign_schema": _exec("UPDATE campaigns SET body = '{\"x\": 1}' WHERE campaign_id = 'C1'"),
    "campaign_id_mismatch": _exec(
        "UPDATE campaigns SET campaign_id = 'C9' WHERE campaign_id = 'C1'"
    ),
    "code_status": _exec("UPDATE codes SET status = 'maybe'"),
    "code_unknown_campaign": _exec("UPDATE codes SET campaign_id = 'NOPE'"),
    "code_text_time": _exec("UPDATE codes SET expires_at = 'soon'"),
    "member_consent": _exec("UPDATE members SET proximity_consent = 7"),
    "not_sqlite": _garbage,
    "missing_file": lambda p: p.unlink(),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_snapshot_is_refused_and_the_cache_untouched(tmp_path: Path, name: str) -> None:
    cache = open_cache(tmp_path / "c.db")
    before = snapshot_of_cache(cache)
    snap = good_snapshot(tmp_path / "snap.db")
    MALFORMED[name](snap)
    with pytest.raises(SnapshotError):
        cache.load_snapshot(snap)
    assert snapshot_of_cache(cache) == before
    assert not [t for t in cache.db.table_names() if t.endswith("_next")]
    attached = [row[1] for row in cache.conn.execute("PRAGMA database_list")]
    assert "snap" not in attached  # detached (the migrations may have opened "temp")
    cache.close()
