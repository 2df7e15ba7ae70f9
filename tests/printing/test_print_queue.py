"""The durable print queue on a real cache file: transactions, retries, leases, reprints."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_agent.cache.code_cache import CodeCache
from edge_agent.errors import CacheError
from edge_agent.printing import print_queue as pq
from edge_agent.printing.document import sample_document

T0 = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
POLICY = pq.RetryPolicy(
    base=timedelta(seconds=2),
    cap=timedelta(seconds=10),
    give_up_after=timedelta(minutes=15),
    lease=timedelta(seconds=30),
)
DOC = sample_document()


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[CodeCache]:
    c = CodeCache.open(tmp_path / "cache.db", store_id="S1")
    yield c
    c.close()


def _enqueue(cache: CodeCache, txn: str = "T1", code: str = "SS22K7HQ2PM") -> int:
    with cache.transaction() as conn:
        return pq.enqueue(
            conn, code=code, till_id="till-1", transaction_id=txn, document=DOC, now=T0
        )


def test_enqueue_commits_or_rolls_back_with_the_callers_transaction(cache: CodeCache) -> None:
    with pytest.raises(RuntimeError), cache.transaction() as conn:
        pq.enqueue(conn, code="C1", till_id="till-1", transaction_id="T9", document=DOC, now=T0)
        raise RuntimeError("the issue failed after the job was queued")
    assert pq.transaction_status(cache.conn, till_id="till-1", transaction_id="T9") is None
    job = _enqueue(cache)
    st = pq.transaction_status(cache.conn, till_id="till-1", transaction_id="T1")
    assert st is not None and st.job_id == job
    assert st.status is pq.PrintStatus.PENDING
    assert st.qr_payload == DOC.qr_payload and st.display_code == DOC.display_code


def test_enqueue_is_idempotent_per_transaction_and_code(cache: CodeCache) -> None:
    assert _enqueue(cache) == _enqueue(cache)
    assert len(pq.open_jobs(cache.conn)) == 1
    assert _enqueue(cache, txn="T2") != _enqueue(cache)


def test_claim_print_confirm(cache: CodeCache) -> None:
    job_id = _enqueue(cache)
    job = pq.claim(cache.conn, now=T0, policy=POLICY)
    assert job is not None and job.id == job_id and job.attempts == 1
    assert job.document == DOC and not job.document.reprint
    assert pq.claim(cache.conn, now=T0, policy=POLICY) is None  # leased
    assert pq.mark_printed(cache.conn, job_id, now=T0 + timedelta(seconds=1))
    st = pq.transaction_status(cache.conn, till_id="till-1", transaction_id="T1")
    assert st is not None and st.status is pq.PrintStatus.PRINTED and st.ever_printed
    assert pq.open_jobs(cache.conn) == []
    assert not pq.mark_printed(cache.conn, job_id, now=T0)  # not ours any more


def test_failures_back_off_doubling_up_to_the_cap(cache: CodeCache) -> None:
    job_id = _enqueue(cache)
    now = T0
    delays = []
    for _ in range(5):
        job = pq.claim(cache.conn, now=now, policy=POLICY)
        assert job is not None
        due = pq.mark_failed(
            cache.conn,
            job_id,
            now=now,
            error="paper_out: out",
            may_have_printed=False,
            policy=POLICY,
        )
        assert due is not None
        delays.append((due - now).total_seconds())
        assert pq.claim(cache.conn, now=due - timedelta(microseconds=1), policy=POLICY) is None
        now = due
    assert delays == [2, 4, 8, 10, 10]
    st = pq.transaction_status(cache.conn, till_id="till-1", transaction_id="T1")
    assert st is not None and st.status is pq.PrintStatus.PENDING
    assert st.last_error == "paper_out: out" and st.attempts == 5
    job = pq.claim(cache.conn, now=now, policy=POLICY)
    assert job is not None and not job.document.reprint  # nothing came out: no REPRINT mark


def test_a_failure_after_bytes_were_sent_retries_as_reprint(cache: CodeCache) -> None:
    job_id = _enqueue(cache)
    pq.claim(cache.conn, now=T0, policy=POLICY)
    due = pq.mark_failed(
        cache.conn, job_id, now=T0, error="connection_lost", may_have_printed=True, policy=POLICY
    )
    assert due is not None
    job = pq.claim(cache.conn, now=due, policy=POLICY)
    assert job is not None and job.id == job_id and job.document.reprint


def test_expired_lease_is_claimed_again_as_reprint(cache: CodeCache) -> None:
    job_id = _enqueue(cache)
    assert pq.claim(cache.conn, now=T0, policy=POLICY) is not None
    # The worker died: nobody confirms. Before the lease ends nobody else may take it.
    assert pq.claim(cache.conn, now=T0 + timedelta(seconds=29), policy=POLICY) is None
    job = pq.claim(cache.conn, now=T0 + timedelta(seconds=30), policy=POLICY)
    assert job is not None and job.id == job_id and job.document.reprint and job.attempts == 2


def test_recover_interrupted_makes_claimed_jobs_due_now_as_reprints(cache: CodeCache) -> None:
    _enqueue(cache, txn="T1")
    _enqueue(cache, txn="T2")
    pq.claim(cache.conn, now=T0, policy=POLICY)
    assert pq.recover_interrupted(cache.conn, now=T0 + timedelta(seconds=1)) == 1
    first = pq.claim(cache.conn, now=T0 + timedelta(seconds=1), policy=POLICY)
    second = pq.claim(cache.conn, now=T0 + timedelta(seconds=1), policy=POLICY)
    assert first is not None and second is not None
    assert [first.transaction_id, first.document.reprint] == ["T1", True]
    assert [second.transaction_id, second.document.reprint] == ["T2", False]


def test_jobs_are_abandoned_after_the_deadline_but_the_coupon_remains(cache: CodeCache) -> None:
    _enqueue(cache)
    late = T0 + POLICY.give_up_after + timedelta(seconds=1)
    assert pq.claim(cache.conn, now=late, policy=POLICY) is None
    st = pq.transaction_status(cache.conn, till_id="till-1", transaction_id="T1")
    assert st is not None and st.status is pq.PrintStatus.ABANDONED and not st.ever_printed
    # Staff can still reprint it on demand.
    assert pq.reprint(cache.conn, till_id="till-1", transaction_id="T1", now=late) is not None
    job = pq.claim(cache.conn, now=late, policy=POLICY)
    assert job is not None and job.document.reprint


def test_reprint_is_a_new_job_linked_to_the_first(cache: CodeCache) -> None:
    first = _enqueue(cache)
    pq.claim(cache.conn, now=T0, policy=POLICY)
    pq.mark_printed(cache.conn, first, now=T0)
    assert pq.reprint(cache.conn, till_id="till-1", transaction_id="nope", now=T0) is None
    again = pq.reprint(
        cache.conn, till_id="till-1", transaction_id="T1", now=T0 + timedelta(minutes=1)
    )
    assert again is not None and again != first
    job = pq.get(cache.conn, again)
    assert job is not None and job.reprint_of == first and job.document.reprint
    st = pq.transaction_status(cache.conn, till_id="till-1", transaction_id="T1")
    assert st is not None and st.status is pq.PrintStatus.PENDING and st.ever_printed


def test_unreadable_document_is_set_aside_not_retried_forever(cache: CodeCache) -> None:
    job_id = _enqueue(cache)
    cache.conn.execute("UPDATE print_jobs SET document = '{}' WHERE id = ?", (job_id,))
    assert pq.claim(cache.conn, now=T0, policy=POLICY) is None
    job = cache.conn.execute("SELECT state, last_error FROM print_jobs").fetchone()
    assert job[0] == "abandoned" and "unreadable" in job[1]


def test_worker_connection_refuses_a_file_that_is_not_an_opened_cache(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "plain.db").close()
    with pytest.raises(CacheError):
        pq.connect(tmp_path / "plain.db")
