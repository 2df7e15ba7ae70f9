"""Group commit in the DB thread: operations waiting together share one transaction and fsync,
yet each stays all-or-nothing, isolated as if run one after another, and is answered only once
the COMMIT that made it durable has returned. (The kill -9 test of
``tests/redemption/test_crash.py`` runs eight tills through it too.)"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.errors import CacheError, IdempotencyConflictError
from edge_agent.redemption.outcomes import CommitOutcome
from edge_agent.redemption.service import RedemptionService
from edge_agent.runtime.db_thread import DbThread
from edge_agent.services import StoreServices
from tests.cache.factories import BASKET, FMT, A, B, G, open_cache, req


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "cache.db"
    open_cache(path).close()
    return path


@pytest.fixture
def db(path: Path) -> Iterator[DbThread]:
    def open_services() -> StoreServices:
        cache = open_cache(path)
        return StoreServices(
            cache=cache, redemption=RedemptionService(cache, fmt=FMT), issuing_service=None
        )

    db = DbThread(open_services)
    yield db
    db.close()


def commit(code: str, *, txn: str, till: str = "till-1", member: str | None = None) -> Any:
    return lambda s: s.redemption.commit(req(code, txn=txn, till=till, member=member))


def in_one_batch(db: DbThread, jobs: list[Callable[[StoreServices], Any]]) -> list[Any]:
    """Queue ``jobs`` while the thread is held busy, so they are drained as one batch."""

    async def scenario() -> list[Any]:
        gate = threading.Event()
        blocker = asyncio.ensure_future(db.run(lambda _: gate.wait(5)))
        await asyncio.sleep(0.05)  # the thread is now inside the blocker
        tasks = [asyncio.ensure_future(db.run(job, group=True)) for job in jobs]
        await asyncio.sleep(0)  # every task has queued its job
        gate.set()
        await blocker
        return list(await asyncio.gather(*tasks, return_exceptions=True))

    return asyncio.run(scenario())


def redeemed(path: Path) -> set[tuple[str, str, str]]:
    """What a fresh connection sees: only what was committed."""
    with sqlite3.connect(path) as conn:
        return set(conn.execute("SELECT code, till_id, transaction_id FROM redemptions"))


def test_a_failing_operation_rolls_back_alone(db: DbThread, path: Path) -> None:
    def commit_then_fail(s: StoreServices) -> None:
        s.redemption.commit(req(G, txn="T-2", member=None))  # written, then undone
        raise RuntimeError("the till's operation failed half way")

    a, failed, b = in_one_batch(
        db,
        [
            commit(A, txn="T-1", member="M1"),
            commit_then_fail,
            commit(B, txn="T-3", till="till-2", member="M2"),
        ],
    )
    assert (db.batches, db.batched) == (1, 3)
    assert isinstance(failed, RuntimeError)
    assert a[0].redemption is not None and b[0].redemption is not None
    assert redeemed(path) == {(A, "till-1", "T-1"), (B, "till-2", "T-3")}
    with sqlite3.connect(path) as conn:
        seqs = [s for (s,) in conn.execute("SELECT seq FROM events ORDER BY seq")]
        assert seqs == list(range(1, len(seqs) + 1)), "the failed operation left a gap"
        assert conn.execute("SELECT count(*) FROM requests WHERE code = ?", (G,)).fetchone() == (0,)


def test_operations_in_a_batch_see_each_other_as_if_serial(db: DbThread, path: Path) -> None:
    # Two tills take the same single-use code in one batch: the first wins, the second is
    # refused; a retry of the first in the same batch is a replay; a reused key is a 409.
    first, second, retry, conflict = in_one_batch(
        db,
        [
            commit(A, txn="T-1", member="M1"),
            commit(A, txn="T-9", till="till-2", member="M1"),
            commit(A, txn="T-1", member="M1"),
            lambda s: s.redemption.commit(req(A, B, txn="T-1", member="M1")),
        ],
    )
    assert isinstance(first[0], CommitOutcome) and first[0].redemption is not None
    assert second[0].redemption is None and not second[0].decision.ok
    assert retry[0].replayed and retry[0].redemption == first[0].redemption
    assert isinstance(conflict, IdempotencyConflictError)
    assert redeemed(path) == {(A, "till-1", "T-1")}


def test_answers_wait_for_the_commit(db: DbThread, path: Path) -> None:
    # The batch's second operation stalls until the test has looked: if the first were
    # answered before the COMMIT, its answer would arrive first and its redemption would not
    # be visible to another connection yet.
    looked = threading.Event()
    seen_at_answer: list[set[tuple[str, str, str]]] = []

    async def scenario() -> None:
        gate = threading.Event()
        blocker = asyncio.ensure_future(db.run(lambda _: gate.wait(5)))
        await asyncio.sleep(0.05)
        first = asyncio.ensure_future(db.run(commit(A, txn="T-1", member="M1"), group=True))
        stall = asyncio.ensure_future(
            db.run(lambda s: (looked.wait(0.5), commit(B, txn="T-2", member="M2")(s)), group=True)
        )
        await asyncio.sleep(0)
        gate.set()
        await blocker
        await first
        seen_at_answer.append(redeemed(path))
        looked.set()
        await stall

    asyncio.run(scenario())
    assert db.batches == 1
    assert seen_at_answer == [{(A, "till-1", "T-1"), (B, "till-1", "T-2")}]


def test_a_failed_commit_fails_the_whole_batch(db: DbThread, path: Path) -> None:
    # A batch whose COMMIT cannot happen: every operation is answered with the failure, none
    # of them is in the file.
    def break_the_commit(s: StoreServices) -> None:
        s.cache.conn.execute("ROLLBACK")  # nothing of the batch survives this

    results = in_one_batch(
        db,
        [commit(A, txn="T-1", member="M1"), break_the_commit, commit(B, txn="T-2", member="M2")],
    )
    assert all(isinstance(r, CacheError) for r in results), results
    assert redeemed(path) == set()
    # The thread keeps serving.
    (done,) = db.call(commit(A, txn="T-1", member="M1"), group=True)
    assert done.redemption is not None and redeemed(path) == {(A, "till-1", "T-1")}


def test_a_lone_write_and_ungrouped_work_run_as_before(db: DbThread, path: Path) -> None:
    (done,) = db.call(commit(A, txn="T-1", member="M1"), group=True)
    assert done.redemption is not None
    assert db.batches == 0  # alone: its own transaction
    assert db.call(lambda s: s.cache.conn.in_transaction) is False
    with pytest.raises(ZeroDivisionError):
        db.call(lambda _: 1 / 0)
    assert BASKET.lines  # the factories' basket is what the requests carry


def test_a_closed_thread_refuses_work(path: Path) -> None:
    def open_services() -> StoreServices:
        cache = open_cache(path)
        return StoreServices(
            cache=cache, redemption=RedemptionService(cache, fmt=FMT), issuing_service=None
        )

    db = DbThread(open_services)
    db.close()
    with pytest.raises(RuntimeError, match="closed"):
        db.call(lambda _: None)
