"""What HQ tells the box of members' points, on a real cache file: ``member.points`` deltas
(built and read with the wire contract) and a snapshot's ``points_balances`` table, seen
through ``PointsService.balance``: HQ's balance plus this box's own postings after its mark."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_sync.contract import delta as wire
from cloud_sync.contract.decode_errors import WrongTypeError
from cloud_sync.contract.delta import Change, Delta, Op
from cloud_sync.contract.message_codec import MessageError
from cloud_sync.contract.points_balance import encode_marks
from cloud_sync.contract.snapshot_format import ddl_script
from edge_agent.cache.code_cache import CodeCache
from edge_agent.domain.promotion import Member
from edge_agent.errors import SnapshotError
from edge_agent.follow import delta_apply
from edge_agent.follow.delta_apply import DeltaRefusedError, Position, Refusal
from edge_agent.points.service import PointsService
from tests.cache.factories import NOW, STORE, write_snapshot
from tests.till_points import factories as f

STREAM = "7" * 32
OTHER_BOX = "box-999"


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[CodeCache]:
    c = f.open_cache(tmp_path / "c.db")
    with c.transaction() as conn:
        delta_apply.follow(conn, stream=STREAM, watermark=0)
    yield c
    c.close()


def points(member: str, balance: int, marks: str) -> Change:
    return Change(
        op=Op.MEMBER_POINTS,
        fields={"member_id": member, "programme": "main", "balance": balance, "marks": marks},
    )


def apply(cache: CodeCache, *changes: Change) -> delta_apply.Applied:
    """The next delta of the stream, as HQ sends it: encoded, then decoded as the box reads it."""
    seq = delta_apply.position(cache.conn).watermark + 1
    sent = Delta(store_id=STORE, stream=STREAM, seq=seq, issued_at=NOW, changes=changes)
    return delta_apply.apply(cache, wire.decode(wire.encode(sent)))


def own_seqs(cache: CodeCache) -> list[int]:
    return [seq for seq, _, _ in f.posted(cache)]


def held(cache: CodeCache) -> list[tuple[object, ...]]:
    return cache.conn.execute("SELECT * FROM points_balances ORDER BY member_id").fetchall()


def view(svc: PointsService, member: str = "M1") -> tuple[int, int, int, int]:
    v = svc.balance(member)
    return v.synced_balance, v.synced_through_seq, v.unsynced, v.known


def test_hqs_balance_counts_own_postings_after_its_mark_only(cache: CodeCache) -> None:
    svc = f.service(cache)
    svc.checkout(f.sale("T-1"))  # +100 each
    svc.checkout(f.sale("T-2"))
    first, second = own_seqs(cache)
    # HQ has applied T-1 (and another box's postings) but not T-2 yet.
    done = apply(cache, points("M1", 700, encode_marks({f.BOX: first, OTHER_BOX: 40})))
    assert done.applied == 1 and done.position == Position(stream=STREAM, watermark=1)
    assert view(svc) == (700, first, 100, 800)
    # HQ's next word includes T-2: nothing of the box's is counted twice.
    apply(cache, points("M1", 800, encode_marks({f.BOX: second, OTHER_BOX: 41})))
    assert view(svc) == (800, second, 0, 800)
    # A posting after the mark is the box's own again, on top of HQ's balance.
    svc.checkout(f.sale("T-3", burn=250))
    assert view(svc) == (800, second, 100 - 250, 650)


def test_marks_older_or_newer_than_the_boxs_postings(cache: CodeCache) -> None:
    svc = f.service(cache)
    svc.checkout(f.sale("T-1"))
    svc.checkout(f.sale("T-2"))
    (_, last) = own_seqs(cache)
    # Older: HQ's balance includes none of this box's postings (no mark, or one before them).
    apply(cache, points("M1", 50, encode_marks({OTHER_BOX: 3})))
    assert view(svc) == (50, 0, 200, 250)
    # Newer than every posting (seqs count all the box's events, not only points ones).
    apply(cache, points("M1", 250, encode_marks({f.BOX: last + 10})))
    assert view(svc) == (250, last + 10, 0, 250)
    # HQ may be behind what it said before (a later delta is its whole word): taken as said.
    apply(cache, points("M1", 150, encode_marks({f.BOX: last - 1})))
    assert view(svc) == (150, last - 1, 100, 250)


def test_a_negative_balance_from_hq_bounds_the_burn(cache: CodeCache) -> None:
    svc = f.service(cache)
    apply(cache, points("M1", -40, encode_marks({})))
    assert view(svc) == (-40, 0, 0, -40) and svc.balance("M1").available == 0
    out = svc.checkout(f.sale(burn=1))
    assert not out.ok and out.reason == "insufficient_balance"


@pytest.mark.parametrize(
    "marks",
    [
        "not json",
        '{"schema_version":2,"boxes":[]}',
        '{"schema_version":1}',
        '{"schema_version":1,"boxes":[{"box_id":"box-001","seq":0}]}',
        '{"schema_version":1,"boxes":[{"box_id":"box-001","seq":"3"}]}',
        '{"schema_version":1,"boxes":[{"box_id":"a/b","seq":3}]}',
        '{"schema_version":1,"boxes":[{"box_id":"box-001","seq":3,"at":1}]}',
        '{"schema_version":1,"boxes":[{"box_id":"x","seq":1},{"box_id":"x","seq":2}]}',
    ],
)
def test_marks_that_do_not_decode_refuse_the_whole_delta(cache: CodeCache, marks: str) -> None:
    svc = f.service(cache)
    apply(cache, points("M1", 500, encode_marks({f.BOX: 1})))
    before, at = held(cache), delta_apply.position(cache.conn)
    with pytest.raises(DeltaRefusedError) as refused:
        apply(
            cache,
            Change(
                op=Op.MEMBER_CHANGED,
                fields={
                    "member_id": "M1",
                    "segment": "x",
                    "tier": "gold",
                    "proximity_consent": False,
                },
            ),
            points("M2", 5, encode_marks({})),
            points("M1", 900, marks),
        )
    assert refused.value.reason is Refusal.BAD_POINTS and "M1" in refused.value.detail
    assert held(cache) == before and delta_apply.position(cache.conn) == at
    member = cache.member("M1")  # nothing of the delta, the change before it neither
    assert member is not None and member.tier == "standard"
    assert view(svc)[0] == 500


@pytest.mark.parametrize("balance", ["500", True, 1.5, None, 2**63])
def test_a_balance_that_is_no_signed_integer_never_reaches_the_cache(balance: object) -> None:
    text = wire.encode(
        Delta(
            store_id=STORE,
            stream=STREAM,
            seq=1,
            issued_at=NOW,
            changes=(points("M1", 0, encode_marks({})),),
        )
    ).replace('"balance":0', f'"balance":{json.dumps(balance)}')
    with pytest.raises(MessageError) as refused:
        wire.decode(text)
    assert refused.value.field == "changes[0].balance"
    if balance != 2**63:
        assert isinstance(refused.value, WrongTypeError)


def snapshot(path: Path, rows: list[tuple[object, ...]] | None) -> Path:
    """A fleet snapshot with both members, carrying ``rows`` of points_balances (None: an HQ
    from before points balances, without the table)."""
    write_snapshot(
        path,
        members=[Member(member_id="M1", tier="standard"), Member(member_id="M2", tier="gold")],
    )
    if rows is not None:
        with sqlite3.connect(path) as snap:
            snap.executescript(ddl_script(["points_balances"]))
            snap.executemany("INSERT INTO points_balances VALUES (?, ?, ?, ?)", rows)
    return path


def test_a_snapshots_balances_replace_the_boxs_and_own_postings_count_after_the_mark(
    cache: CodeCache, tmp_path: Path
) -> None:
    svc = f.service(cache)
    svc.checkout(f.sale("T-1"))
    svc.checkout(f.sale("T-2"))
    first, _ = own_seqs(cache)
    apply(cache, points("M2", 999, encode_marks({})))  # not in the snapshot: HQ's is now 0
    cache.load_snapshot(
        snapshot(tmp_path / "s.db", [("M1", "main", 300, encode_marks({f.BOX: first}))])
    )
    assert view(svc) == (300, first, 100, 400)
    assert view(svc, "M2") == (0, 0, 0, 0)
    assert [r[0] for r in held(cache)] == ["M1"]


def test_a_snapshot_without_the_table_leaves_the_balances(cache: CodeCache, tmp_path: Path) -> None:
    svc = f.service(cache)
    svc.checkout(f.sale("T-1"))
    apply(cache, points("M1", 300, encode_marks({OTHER_BOX: 2})))
    before = held(cache)
    info = cache.load_snapshot(snapshot(tmp_path / "old-hq.db", None))
    assert info is not None
    assert held(cache) == before and view(svc) == (300, 0, 100, 400)


@pytest.mark.parametrize(
    "row",
    [
        ("M1", "main", 300, "not marks"),
        ("M1", "main", "300", encode_marks({})),
        ("M1", "main", 300.5, encode_marks({})),
        ("M1", "main", 300, None),
    ],
)
def test_a_snapshot_with_a_bad_balance_row_is_refused_and_changes_nothing(
    cache: CodeCache, tmp_path: Path, row: tuple[object, ...]
) -> None:
    svc = f.service(cache)
    apply(cache, points("M1", 300, encode_marks({})))
    before, members = held(cache), cache.conn.execute("SELECT * FROM members").fetchall()
    path = snapshot(tmp_path / "bad.db", [("M2", "main", 5, encode_marks({}))])
    with sqlite3.connect(path) as snap:  # untyped columns keep what is put in them
        snap.execute("DROP TABLE points_balances")
        snap.execute(
            "CREATE TABLE points_balances (member_id TEXT, programme TEXT, balance, marks, "
            "PRIMARY KEY (member_id, programme))"
        )
        snap.execute("INSERT INTO points_balances VALUES (?, ?, ?, ?)", row)
    with pytest.raises(SnapshotError, match="points"):
        cache.load_snapshot(path)
    assert held(cache) == before and view(svc)[0] == 300
    assert cache.conn.execute("SELECT * FROM members").fetchall() == members


def test_a_snapshot_with_other_points_columns_is_refused(cache: CodeCache, tmp_path: Path) -> None:
    apply(cache, points("M1", 300, encode_marks({})))
    before = held(cache)
    path = snapshot(tmp_path / "cols.db", None)
    with sqlite3.connect(path) as snap:
        snap.execute("CREATE TABLE points_balances (member_id TEXT, balance INTEGER)")
    with pytest.raises(SnapshotError, match="columns"):
        cache.load_snapshot(path)
    assert held(cache) == before
