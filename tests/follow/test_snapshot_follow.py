"""A snapshot HQ cuts at a store's delta stream position: the box that loads it follows the
stream from there, with the fleet's use of codes and campaigns at that point."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from cloud_sync.hq.central_store import CentralStore
from cloud_sync.hq.errors import InputError
from cloud_sync.hq.snapshot import FollowPoint, write_snapshot
from edge_agent.cache.code_cache import CodeCache
from edge_agent.errors import SnapshotError
from edge_agent.follow import delta_apply
from edge_agent.follow.delta_apply import Position
from tests.hq.conftest import FMT, NOW, campaign

STREAM = "a" * 32


@pytest.fixture
def central(tmp_path: Path) -> CentralStore:
    store = CentralStore.create(tmp_path / "hq.db", fmt=FMT)
    store.create_campaign(campaign("SPRING"), now=NOW)
    store.create_generic("SPRING", "HOLIMAN100", now=NOW)
    return store


def point(seq: int = 41) -> FollowPoint:
    return FollowPoint(
        stream=STREAM,
        seq=seq,
        uses=[
            ("HOLIMAN100", "box-s2", "S2", "till-9", "T-9", 1_740_000_000_000_000, 3),
            ("HOLIMAN100", "box-mine", "S1", "till-1", "T-1", 1_740_000_000_000_000, 2),
        ],
        campaign_uses=[
            ("SPRING", "box-s2", "S2", 3, 1500),
            ("SPRING", "box-s1b", "S1", 2, 1000),
            ("SPRING", "box-mine", "S1", 2, 1000),
        ],
    )


def test_the_box_follows_from_where_the_snapshot_was_cut(
    central: CentralStore, tmp_path: Path
) -> None:
    path = tmp_path / "s1.db"
    write_snapshot(central, path, "S1", now=NOW, follow=point())
    cache = CodeCache.open(tmp_path / "cache.db", store_id="S1", box_id="box-mine")
    try:
        # The box holds its own record of the code and the campaign: HQ's copy of them is
        # left out, it counts its own.
        cache.conn.execute("INSERT INTO code_usage VALUES ('HOLIMAN100', 2, NULL)")
        cache.conn.execute("INSERT INTO campaign_usage VALUES ('SPRING', 2, 1000, 2)")
        cache.load_snapshot(path)
        assert delta_apply.position(cache.conn) == Position(stream=STREAM, watermark=41)
        uses = cache.conn.execute("SELECT box_id, uses FROM uses_elsewhere").fetchall()
        assert uses == [("box-s2", 3)]
        sums = cache.conn.execute("SELECT * FROM campaign_elsewhere").fetchall()
        assert sums == [("SPRING", 5, 2500, 2)]
        # A later snapshot without a position leaves the position and the totals alone.
        plain = tmp_path / "plain.db"
        write_snapshot(central, plain, "S1", now=NOW)
        cache.load_snapshot(plain)
        assert delta_apply.position(cache.conn) == Position(stream=STREAM, watermark=41)
        assert cache.conn.execute("SELECT count(*) FROM uses_elsewhere").fetchone() == (1,)
    finally:
        cache.close()


def test_a_lost_cache_takes_hqs_word_for_its_own_box_too(
    central: CentralStore, tmp_path: Path
) -> None:
    """A box whose cache was lost starts empty: what HQ knows it redeemed is all there is, so
    a single-use code it redeemed before the loss stays redeemed."""
    path = tmp_path / "s1.db"
    write_snapshot(central, path, "S1", now=NOW, follow=point())
    cache = CodeCache.open(tmp_path / "new.db", store_id="S1", box_id="box-mine")
    try:
        cache.load_snapshot(path)
        uses = cache.conn.execute("SELECT box_id, uses FROM uses_elsewhere ORDER BY box_id")
        assert uses.fetchall() == [("box-mine", 2), ("box-s2", 3)]
        sums = cache.conn.execute("SELECT * FROM campaign_elsewhere").fetchall()
        assert sums == [("SPRING", 7, 3500, 4)]
    finally:
        cache.close()


def test_a_fleet_snapshot_follows_no_stream(central: CentralStore, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="one store's"):
        write_snapshot(central, tmp_path / "all.db", "*", now=NOW, follow=point())


@pytest.mark.parametrize(
    ("stream", "seq", "why"),
    [
        (STREAM, None, "go together"),
        ("XYZ", "4", "malformed"),
        (STREAM, "-1", "malformed"),
    ],
)
def test_a_malformed_position_refuses_the_snapshot(
    central: CentralStore, tmp_path: Path, stream: str, seq: str | None, why: str
) -> None:
    path = tmp_path / "s1.db"
    write_snapshot(central, path, "S1", now=NOW, follow=point())
    with sqlite3.connect(path) as snap:
        snap.execute("UPDATE snapshot_meta SET value = ? WHERE key = 'delta_stream'", (stream,))
        if seq is None:
            snap.execute("DELETE FROM snapshot_meta WHERE key = 'delta_seq'")
        else:
            snap.execute("UPDATE snapshot_meta SET value = ? WHERE key = 'delta_seq'", (seq,))
    cache = CodeCache.open(tmp_path / "cache.db", store_id="S1", box_id="box-mine")
    try:
        with pytest.raises(SnapshotError, match=why):
            cache.load_snapshot(path)
        assert delta_apply.position(cache.conn) == Position(stream=None, watermark=0)
    finally:
        cache.close()
