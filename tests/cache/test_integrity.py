"""A damaged cache at start: set aside byte for byte, its unsent events rescued and accepted by
HQ's real ingest exactly once, a fresh cache that asks HQ for a snapshot; a sound one untouched.
"""

from __future__ import annotations

import logging
import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest

from cloud_sync.contract.follow_position import FollowPosition
from cloud_sync.hq.fanout import delta_log
from edge_agent.cache import integrity
from edge_agent.cache.code_cache import CodeCache
from edge_agent.domain.promotion import Member
from edge_agent.errors import CacheError, StoreMismatchError
from edge_agent.follow.stream_position import position
from edge_agent.redemption.service import RedemptionService
from edge_agent.sync import outbox_access
from tests.cache.damage import BOX, Hq, build, digest, events_of, leaf_pages, smash
from tests.cache.factories import FMT, NOW, STORE, A, G, open_cache, promotion, records, req

ACKED = 50  # what the box heard; HQ holds 1..100 (build's second ack is lost)


@pytest.fixture
def hq(tmp_path: Path) -> Hq:
    return Hq.at(tmp_path)


@pytest.fixture
def cache_path(tmp_path: Path, hq: Hq) -> Path:
    path = tmp_path / "data" / "cache.db"
    path.parent.mkdir()
    build(path, hq)
    return path


def _start(path: Path, *, box_id: str | None = BOX) -> integrity.Recovered | None:
    return integrity.check_at_start(path, store_id=STORE, box_id=box_id, now=NOW)


def _unclean(path: Path) -> None:
    integrity.marker(path).touch()  # the last run never reached its end


def _middle_leaf(pages: dict[int, list[int]], above: int) -> tuple[int, list[int]]:
    """A leaf page in the middle of the table whose rows are all unsent and above ``above``."""
    candidates = [(p, rows) for p, rows in pages.items() if rows and min(rows) > above]
    return candidates[len(candidates) // 2]


def _rescued_ids(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as conn:
        return [str(r[0]) for r in conn.execute("SELECT event_id FROM events ORDER BY seq")]


def test_a_page_lost_in_one_table_rescues_every_unsent_event_as_written(
    cache_path: Path, hq: Hq, caplog: pytest.LogCaptureFixture
) -> None:
    before = events_of(cache_path)
    page, rows = _middle_leaf(leaf_pages(cache_path, "events"), above=150)
    smash(cache_path, page)
    damaged, inode = digest(cache_path), cache_path.stat().st_ino
    _unclean(cache_path)

    with caplog.at_level(logging.WARNING):
        recovered = _start(cache_path)

    assert recovered is not None
    assert recovered.set_aside.name.startswith("cache.db.damaged-20250301T120000Z")
    assert digest(recovered.set_aside) == damaged
    assert recovered.set_aside.stat().st_ino == inode  # renamed, never copied or rewritten
    assert integrity.quick_check(recovered.set_aside) is not None
    assert "is damaged" in caplog.text and "set" in caplog.text
    # The outbox copy of the lost page's events was readable: nothing lost, nothing moved.
    plan = recovered.rescued
    assert (plan.lost, plan.resequenced) == ((), 0)
    unsent = [before[s] for s in sorted(before) if s > ACKED]
    assert _rescued_ids(cache_path) == unsent
    assert rows  # the smashed page held some of them

    fresh = CodeCache.open(cache_path, store_id=STORE, box_id=BOX)
    try:
        assert integrity.quick_check(cache_path) is None
        assert fresh.box_id == BOX
        at = position(fresh.conn)
        assert at.stream is None  # follows nothing: HQ's fan-out answers with a snapshot
        said = FollowPosition(store_id=STORE, box_id=BOX, stream=at.stream, watermark=at.watermark)
        answer = hq.store.run(lambda tx: delta_log.catch_up(tx, said, limit=10))
        assert answer.needs_snapshot == "the cache follows no delta stream"
        assert outbox_access.acked_through(fresh) == ACKED
        hq.drain(fresh)
        # A redemption after the resync continues the same chain and is stored too.
        fresh.put_campaign(promotion())
        fresh.put_codes(records())
        fresh.put_member(Member(member_id="M1", segment="loyal"))
        fresh.set_synced_at(NOW - timedelta(minutes=1))
        service = RedemptionService(fresh, fmt=FMT, hold=timedelta(minutes=5))
        (after,) = service.commit(req(A, txn="T-after"))
        assert after.redemption is not None, after.decision
        hq.drain(fresh)
    finally:
        fresh.close()
    stored = hq.event_ids()
    assert stored[: len(before)] == [before[s] for s in sorted(before)]
    assert len(stored) == len(before) + 1 == len(set(stored))  # each once
    assert hq.refused() == []


def test_a_row_lost_in_both_tables_is_lost_and_what_follows_is_sealed_again(
    cache_path: Path, hq: Hq, caplog: pytest.LogCaptureFixture
) -> None:
    before = events_of(cache_path)
    ev_page, ev_rows = _middle_leaf(leaf_pages(cache_path, "events"), above=150)
    out_pages = leaf_pages(cache_path, "outbox")
    out_page, out_rows = next((p, r) for p, r in out_pages.items() if set(r) & set(ev_rows))
    smash(cache_path, ev_page)
    smash(cache_path, out_page)
    damaged = digest(cache_path)
    _unclean(cache_path)

    with caplog.at_level(logging.WARNING):
        recovered = _start(cache_path)

    assert recovered is not None and digest(recovered.set_aside) == damaged
    gone = sorted(set(ev_rows) & set(out_rows))
    readable = [before[s] for s in sorted(before) if s > ACKED and s not in gone]
    assert _rescued_ids(cache_path) == readable
    lost = [s for a, b in recovered.rescued.lost for s in range(a, b + 1)]
    assert lost == gone
    assert recovered.rescued.resequenced == max(before) - gone[0] + 1 - len(gone)
    assert "could not be read and are lost" in caplog.text
    fresh = CodeCache.open(cache_path, store_id=STORE, box_id=BOX)
    try:
        hq.drain(fresh)
    finally:
        fresh.close()
    stored = hq.event_ids()
    assert sorted(stored) == sorted(v for s, v in before.items() if s not in gone)
    assert len(stored) == len(set(stored))
    assert hq.refused() == []


def test_a_file_sqlite_cannot_open_is_set_aside_without_the_marker(
    cache_path: Path, hq: Hq
) -> None:
    smash(cache_path, 1)  # the header and the schema: "file is not a database"
    damaged = digest(cache_path)
    recovered = _start(cache_path)
    assert recovered is not None and digest(recovered.set_aside) == damaged
    # Nothing of the file could be read, but config names the box: the stream goes on.
    assert recovered.rescued.box_id == BOX and recovered.rescued.events == ()
    assert integrity.quick_check(cache_path) is None


def test_a_torn_tail_is_set_aside_and_the_events_before_it_rescued(
    cache_path: Path, hq: Hq
) -> None:
    before = events_of(cache_path)
    page_size = 4096
    pages = cache_path.stat().st_size // page_size
    kept_pages = pages - 4  # the last pages written never made it to the card
    on_page = {**leaf_pages(cache_path, "events"), **leaf_pages(cache_path, "outbox")}
    with cache_path.open("r+b") as f:
        f.truncate(kept_pages * page_size)
    readable = {s for p, rows in on_page.items() if p <= kept_pages for s in rows}
    _unclean(cache_path)
    recovered = _start(cache_path, box_id=None)  # the box id comes from the file itself
    assert recovered is not None
    assert recovered.set_aside.stat().st_size == kept_pages * page_size
    assert recovered.rescued.box_id == BOX
    expected = [before[s] for s in sorted(before) if s > ACKED and s in readable]
    assert len(expected) < len(before) - ACKED  # the tail did hold unsent events
    assert _rescued_ids(cache_path) == expected
    assert recovered.rescued.resequenced == 0  # a lost tail leaves nothing to move
    fresh = CodeCache.open(cache_path, store_id=STORE)
    try:
        assert fresh.box_id == BOX
        hq.drain(fresh)
    finally:
        fresh.close()
    assert hq.event_ids() == [before[s] for s in sorted(before) if s <= 100 or s in readable]
    assert hq.refused() == []


def test_a_sound_cache_is_left_as_it_is(cache_path: Path) -> None:
    _unclean(cache_path)
    before = digest(cache_path)
    assert _start(cache_path) is None
    assert digest(cache_path) == before
    assert [p.name for p in cache_path.parent.iterdir() if "damaged" in p.name] == []


def test_a_cache_that_is_not_damaged_but_unusable_is_never_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    open_cache(path).close()
    with pytest.raises(StoreMismatchError):
        integrity.check_at_start(path, store_id="S2", box_id=None, now=NOW)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.db"]


def test_a_cache_sqlite_cannot_open_for_another_reason_is_never_set_aside(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cache.db"
    path.mkdir()  # "unable to open database file": the disk's or the installer's fault
    _unclean(path)
    with pytest.raises(CacheError):
        _start(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.db", "cache.db.running"]


def test_the_marker_is_removed_only_by_a_run_that_ends(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    with integrity.running(path):
        assert integrity.marker(path).exists()
    assert not integrity.marker(path).exists()
    with pytest.raises(RuntimeError), integrity.running(path):
        raise RuntimeError("a crash")
    assert integrity.marker(path).exists()


def test_events_still_in_the_wal_are_rescued_with_the_file(tmp_path: Path, hq: Hq) -> None:
    live = tmp_path / "live" / "cache.db"
    live.parent.mkdir()
    build(live, hq)
    page, _ = _middle_leaf(leaf_pages(live, "events"), above=150)
    writer = CodeCache.open(live, store_id=STORE, box_id=BOX)
    service = RedemptionService(writer, fmt=FMT, hold=timedelta(minutes=5))
    (late,) = service.commit(req(G, txn="T-late"))
    assert late.redemption is not None
    # The power cut: the card holds the file and its WAL as they are while the agent runs.
    cut = tmp_path / "data" / "cache.db"
    cut.parent.mkdir()
    for suffix in ("", "-wal"):
        Path(f"{cut}{suffix}").write_bytes(Path(f"{live}{suffix}").read_bytes())
    writer.close()
    assert Path(f"{cut}-wal").stat().st_size > 0
    smash(cut, page)
    wal = digest(Path(f"{cut}-wal"))
    _unclean(cut)
    recovered = _start(cut)
    assert recovered is not None
    assert digest(Path(f"{recovered.set_aside}-wal")) == wal  # set aside with its file
    rescued = _rescued_ids(cut)
    assert rescued[-1] == late.redemption.event_id  # only the WAL held it
    assert rescued[:-1] == [v for s, v in sorted(events_of(live).items()) if s > ACKED][:-1]
