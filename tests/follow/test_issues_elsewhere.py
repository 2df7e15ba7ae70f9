"""Receipt coupon issues of the fleet's other boxes, on a real cache file: from HQ's deltas
(applied once, a duplicate harmless, this box's own skipped unless its cache lost them) and
from a snapshot cut at the stream position; the frequency cap here counts them."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from cloud_sync.contract.delta import Change, Delta, Op, Place
from cloud_sync.hq.central_store import CentralStore
from cloud_sync.hq.snapshot import FollowPoint, write_snapshot
from edge_agent.cache.code_cache import CodeCache
from edge_agent.cache.timestamps import to_us
from edge_agent.domain.offer_policy import NoCouponReason
from edge_agent.domain.promotion import Member
from edge_agent.errors import SnapshotError
from edge_agent.follow import delta_apply
from tests.hq.conftest import FMT as HQ_FMT
from tests.hq.conftest import campaign
from tests.issuing.factories import (
    NOW,
    STORE,
    checkout,
    count,
    member_id,
    open_cache,
    policy,
    service,
)

STREAM = "6" * 32
LOYAL = member_id("loyal", held_out=False)
MEMBERS = (Member(member_id=LOYAL, segment="loyal"),)
THEN = NOW - timedelta(days=3)


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[CodeCache]:
    c = open_cache(tmp_path / "cache.db", members=MEMBERS)
    with c.transaction() as conn:
        delta_apply.follow(conn, stream=STREAM, watermark=4)
    yield c
    c.close()


def issued(*, box: str = "box-s2", till: str = "till-1", txn: str = "T-9") -> Change:
    return Change(
        op=Op.MEMBER_ISSUED_ELSEWHERE,
        fields={"member_id": LOYAL, "store_id": "S2", "box_id": box, "till_id": till,
                "transaction_id": txn, "at": THEN},
    )  # fmt: skip


def delta(*changes: Change, seq: int = 5) -> Delta:
    return Delta(store_id=STORE, stream=STREAM, seq=seq, issued_at=NOW, changes=changes)


def test_an_issue_at_another_store_is_applied_once_and_caps_the_member_here(
    cache: CodeCache,
) -> None:
    first = delta(issued())
    done = delta_apply.apply(cache, first)
    assert (done.place, done.applied, done.skipped) == (Place.NEXT, 1, 0)
    assert delta_apply.apply(cache, first).place is Place.DUPLICATE  # a redelivery
    # The same fact again in a later delta (HQ's step re-done after a crash): still one row.
    assert delta_apply.apply(cache, delta(issued(), seq=6)).applied == 1
    assert count(cache, "issues_elsewhere") == 1
    svc = service(cache)
    assert svc.recent_issues(LOYAL, NOW) == (THEN,)
    capped = svc.issue(checkout("T-1", member=LOYAL))
    assert capped.reason is NoCouponReason.FREQUENCY_CAPPED
    assert capped.retry_after == THEN + timedelta(days=30)
    # Two tills of that box may number a sale alike: two sales, two issues.
    delta_apply.apply(cache, delta(issued(till="till-2"), seq=7))
    assert count(cache, "issues_elsewhere") == 2


def test_this_boxs_own_issue_seen_from_hq_is_counted_once(cache: CodeCache) -> None:
    svc = service(cache, pol=policy(max_per_member=5))  # the count is what is checked
    outcome = svc.issue(checkout("T-1", member=LOYAL, till="till-3"))
    assert outcome.issued
    own = issued(box=cache.box_id, till="till-3", txn="T-1")
    done = delta_apply.apply(cache, delta(own))
    assert (done.applied, done.skipped) == (0, 1)
    assert count(cache, "issues_elsewhere") == 0
    assert svc.recent_issues(LOYAL, NOW) == (NOW,)
    # A sale of this box it holds no row of (its cache was lost since): HQ's word is taken.
    lost = issued(box=cache.box_id, till="till-3", txn="T-0")
    assert delta_apply.apply(cache, delta(lost, seq=6)).applied == 1
    assert svc.recent_issues(LOYAL, NOW) == (NOW, THEN)


def point(*issues: tuple[object, ...]) -> FollowPoint:
    return FollowPoint(stream=STREAM, seq=41, uses=(), campaign_uses=(), issues=issues)


@pytest.fixture
def central(tmp_path: Path) -> Iterator[CentralStore]:
    with CentralStore.create(tmp_path / "hq.db", fmt=HQ_FMT) as store:
        store.create_campaign(campaign("SPRING"), now=NOW)
        yield store


def test_a_snapshot_carries_the_fleets_recent_issues_into_a_new_cache(
    cache: CodeCache, central: CentralStore, tmp_path: Path
) -> None:
    svc = service(cache)
    assert svc.issue(checkout("T-1", member=LOYAL, till="till-3")).issued
    then = to_us(THEN)
    path = tmp_path / "s1.snapshot.db"
    write_snapshot(
        central,
        path,
        STORE,
        now=NOW,
        follow=point(
            ("box-s2", "till-1", "T-9", LOYAL, then),  # another store's
            (cache.box_id, "till-3", "T-1", LOYAL, to_us(NOW)),  # its own, held here
            (cache.box_id, "till-3", "T-0", LOYAL, then - 1),  # its own, lost here
        ),
    )
    cache.load_snapshot(path)
    rows = cache.conn.execute(
        "SELECT box_id, transaction_id FROM issues_elsewhere ORDER BY transaction_id"
    ).fetchall()
    assert rows == [(cache.box_id, "T-0"), ("box-s2", "T-9")]
    assert svc.recent_issues(LOYAL, NOW) == (NOW, THEN, THEN - timedelta(microseconds=1))
    cache.load_snapshot(path)  # loaded again: the same rows
    assert count(cache, "issues_elsewhere") == 2


def test_a_snapshot_without_issues_leaves_them_and_a_malformed_one_is_refused(
    cache: CodeCache, central: CentralStore, tmp_path: Path
) -> None:
    delta_apply.apply(cache, delta(issued()))
    older = tmp_path / "older-hq.snapshot.db"  # from an HQ before issues were carried
    write_snapshot(central, older, STORE, now=NOW, follow=point())
    with sqlite3.connect(older) as snap:
        snap.execute("DROP TABLE issues_elsewhere")
    cache.load_snapshot(older)
    assert count(cache, "issues_elsewhere") == 1
    bad = tmp_path / "bad.snapshot.db"
    write_snapshot(central, bad, STORE, now=NOW, follow=point(("b", "t", "x", LOYAL, "soon")))
    with pytest.raises(SnapshotError, match="malformed"):
        cache.load_snapshot(bad)


def test_times_round_trip_exactly(cache: CodeCache) -> None:
    at = datetime(2025, 2, 26, 12, 0, 30, 123_456, tzinfo=THEN.tzinfo)
    change = Change(op=Op.MEMBER_ISSUED_ELSEWHERE, fields={**issued().fields, "at": at})
    delta_apply.apply(cache, delta(change))
    assert service(cache).recent_issues(LOYAL, NOW) == (at,)
