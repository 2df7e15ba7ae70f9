"""The points service on a real cache file: earn, burn, returns, void, idempotency, the offline
bound, marks, balanced events, and all-or-nothing booking."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from cloud_sync.contract.points_balance import encode_marks
from edge_agent.errors import IdempotencyConflictError
from edge_agent.points.balances import BadMarksError
from tests.cache.factories import NOW
from tests.till_points import factories as f

NO_MARKS = '{"schema_version":1,"boxes":[]}'


def marks(seq: int) -> str:
    return encode_marks({f.BOX: seq})


def test_earn_is_5x_on_band_a_and_nothing_on_band_c(tmp_path: Path) -> None:
    cache = f.open_cache(tmp_path / "c.db")
    out = f.service(cache).checkout(f.sale())
    assert out.ok and out.earned == 100 and out.burned == 0
    assert [(x.sku, x.band, x.points) for x in out.lines] == [("A-1", "A", 100)]
    [(_, details, event)] = f.posted(cache)
    assert event.member_net() == 100 and details["lines"][0]["band"] == "A"


def test_burn_on_band_c_at_1_2x(tmp_path: Path) -> None:
    cache = f.open_cache(tmp_path / "c.db")
    f.hq_says(cache, "M1", 1000, NO_MARKS)
    out = f.service(cache).checkout(f.sale(burn=250))
    assert out.ok and out.burned == 250 and out.discount == 300  # 2.50 of points pay 3.00
    assert out.balance is not None and out.balance.known == 1000 + 100 - 250


def test_partial_returns_add_up_to_the_whole(tmp_path: Path) -> None:
    cache = f.open_cache(tmp_path / "c.db")
    f.hq_says(cache, "M1", 1000, NO_MARKS)
    svc = f.service(cache)
    svc.checkout(f.sale(burn=250))
    first = svc.return_lines(f.give_back("R1", "T-1", (1, 1), (0, 1)))
    second = svc.return_lines(f.give_back("R2", "T-1", (1, 2), (0, 1)))
    assert first.given_back + second.given_back == 250
    assert first.taken_back + second.taken_back == 100
    refused = svc.return_lines(f.give_back("R3", "T-1", (0, 1)))
    assert not refused.ok and refused.reason == "more_than_sold"
    assert refused.details == {"line": 0, "quantity": 1, "sold": 2, "already_returned": 2}
    assert svc.balance("M1").known == 1000  # everything reversed


def test_void_reverses_what_returns_left_once(tmp_path: Path) -> None:
    cache = f.open_cache(tmp_path / "c.db")
    f.hq_says(cache, "M1", 1000, NO_MARKS)
    svc = f.service(cache)
    svc.checkout(f.sale(burn=250))
    svc.return_lines(f.give_back("R1", "T-1", (1, 1)))
    void = svc.void(till_id="till-1", transaction_id="T-1", cashier_id="c", now=NOW)
    assert (void.taken_back, void.given_back) == (100, 250 - 83)
    again = svc.void(till_id="till-1", transaction_id="T-1", cashier_id="c", now=NOW)
    assert again.replayed and again.event_id == void.event_id
    late = svc.return_lines(f.give_back("R2", "T-1", (0, 1)))
    assert late.reason == "sale_voided"
    assert svc.balance("M1").known == 1000


def test_retry_is_replayed_and_another_request_is_a_conflict(tmp_path: Path) -> None:
    cache = f.open_cache(tmp_path / "c.db")
    svc = f.service(cache)
    first = svc.checkout(f.sale())
    events = f.count(cache, "events")
    again = svc.checkout(f.sale())
    assert again.replayed and again.event_ids == first.event_ids
    assert f.count(cache, "events") == events
    with pytest.raises(IdempotencyConflictError):
        svc.checkout(f.sale(member="M2"))


def test_offline_bound_refuses_beyond_known_balance_and_counts_the_allowance(
    tmp_path: Path,
) -> None:
    cache = f.open_cache(tmp_path / "c.db")
    f.hq_says(cache, "M1", 100, NO_MARKS)
    out = f.service(cache).checkout(f.sale(burn=200))
    assert not out.ok and out.reason == "insufficient_balance"
    assert out.details["available"] == 100 and f.count(cache, "points_postings") == 0
    loose = f.service(cache, offline_allowance_points=50)
    out = loose.checkout(f.sale(burn=200))
    assert out.reason == "offline_allowance_exceeded" and out.details["available"] == 150
    assert loose.checkout(f.sale(burn=150)).ok


def test_unknown_member_is_refused(tmp_path: Path) -> None:
    cache = f.open_cache(tmp_path / "c.db")
    out = f.service(cache).checkout(f.sale(member="M-nobody"))
    assert not out.ok and out.reason == "unknown_member"


def test_own_postings_count_only_after_the_mark(tmp_path: Path) -> None:
    cache = f.open_cache(tmp_path / "c.db")
    svc = f.service(cache)
    svc.checkout(f.sale("T-1"))
    svc.checkout(f.sale("T-2"))
    seqs = [seq for seq, _, _ in f.posted(cache)]
    f.hq_says(cache, "M1", 100, marks(seqs[0]))  # HQ has T-1, not yet T-2
    view = svc.balance("M1")
    assert (view.synced_balance, view.unsynced, view.known) == (100, 100, 200)
    f.hq_says(cache, "M1", 200, marks(seqs[1]))
    assert svc.balance("M1").unsynced == 0 and svc.balance("M1").known == 200
    with pytest.raises(BadMarksError):
        f.hq_says(cache, "M1", 5, "not marks")


def test_every_event_balances(tmp_path: Path) -> None:
    cache = f.open_cache(tmp_path / "c.db")
    f.hq_says(cache, "M1", 1000, NO_MARKS)
    svc = f.service(cache)
    svc.checkout(f.sale(burn=250))
    svc.return_lines(f.give_back("R1", "T-1", (1, 1), (0, 1)))
    svc.void(till_id="till-1", transaction_id="T-1", cashier_id="c", now=NOW)
    events = f.posted(cache)
    assert len(events) == 4
    for _, _, event in events:
        assert sum(p.signed for p in event.postings) == 0


def test_a_failing_outbox_insert_leaves_nothing(tmp_path: Path) -> None:
    cache = f.open_cache(tmp_path / "c.db")
    cache.conn.execute(
        "CREATE TRIGGER boom BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'disk'); END"
    )
    with pytest.raises(sqlite3.IntegrityError):
        f.service(cache).checkout(f.sale())
    for table in ("points_sales", "points_postings", "events", "outbox"):
        assert f.count(cache, table) == 0, table
