"""The print worker end to end: a real cache file, its own SQLite connection, the python-escpos
driver and a TCP printer on loopback. Printer down, paper out, drops mid-job, restarts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from config.printer import PrinterConfig
from edge_agent.cache.code_cache import CodeCache
from edge_agent.printing import print_queue as pq
from edge_agent.printing.document import sample_document
from edge_agent.printing.layout import Layout
from edge_agent.printing.print_worker import PrintWorker, render_and_send
from hardware.printer.tcp_sink import PrinterSink
from tests.printer.conftest import EscposHarness
from tests.printer.escpos_decode import qr_texts

CFG = PrinterConfig(profile="POS-5890", paper_width_mm=58)  # raster QR: the harder path
LAYOUT = Layout(CFG)
POLICY = pq.RetryPolicy(
    base=timedelta(seconds=2), cap=timedelta(seconds=8), give_up_after=timedelta(minutes=15)
)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[CodeCache]:
    c = CodeCache.open(tmp_path / "cache.db", store_id="S1")
    yield c
    c.close()


def _worker(
    cache: CodeCache, sink: PrinterSink, clock: Clock, *, idle_s: float = 0.05
) -> PrintWorker:
    return PrintWorker(
        connect=lambda: pq.connect(cache.path),
        printer=EscposHarness(sink, profile="POS-5890").printer,
        render=LAYOUT.render,
        clock=clock,
        policy=POLICY,
        idle_s=idle_s,
    )


def _issue(cache: CodeCache, txn: str, now: datetime) -> int:
    doc = sample_document()
    # The issuing path: the coupon's issue and its print job in one transaction.
    with cache.transaction() as conn:
        return pq.enqueue(
            conn, code=f"C-{txn}", till_id="till-1", transaction_id=txn, document=doc, now=now
        )


def _printed(sink: PrinterSink) -> list[bytes]:
    return EscposHarness(sink).printed()


def test_printer_down_at_issue_time_prints_once_it_is_back(
    cache: CodeCache, sink: PrinterSink
) -> None:
    clock = Clock()
    sink.down()
    _issue(cache, "T1", clock.now)
    worker = _worker(cache, sink, clock)
    outcome = worker.run_once()
    assert outcome is not None and not outcome.printed and outcome.error == "not_found"
    st = pq.transaction_status(cache.conn, till_id="till-1", transaction_id="T1")
    assert st is not None and st.status is pq.PrintStatus.PENDING
    assert st.last_error is not None and st.last_error.startswith("not_found")
    sink.up()
    assert worker.run_once() is None  # not due yet: backing off
    clock.advance(2)
    outcome = worker.run_once()
    assert outcome is not None and outcome.printed and not outcome.reprint
    st = pq.transaction_status(cache.conn, till_id="till-1", transaction_id="T1")
    assert st is not None and st.status is pq.PrintStatus.PRINTED
    (printed,) = _printed(sink)
    assert qr_texts(printed) == [sample_document().qr_payload]
    assert b"REPRINT" not in printed
    worker.stop()


def test_paper_out_leaves_the_job_pending_with_the_reason(
    cache: CodeCache, sink: PrinterSink
) -> None:
    clock = Clock()
    sink.state.paper_out = True
    _issue(cache, "T1", clock.now)
    worker = _worker(cache, sink, clock)
    outcome = worker.run_once()
    assert outcome is not None and outcome.error == "paper_out"
    st = pq.transaction_status(cache.conn, till_id="till-1", transaction_id="T1")
    assert st is not None and st.status is pq.PrintStatus.PENDING
    assert st.last_error is not None and st.last_error.startswith("paper_out")
    sink.state.paper_out = False
    clock.advance(2)
    outcome = worker.run_once()
    assert outcome is not None and outcome.printed and not outcome.reprint  # nothing came out
    worker.stop()


def test_disconnect_mid_job_is_retried_and_printed_as_reprint(
    cache: CodeCache, sink: PrinterSink
) -> None:
    clock = Clock()
    _issue(cache, "T1", clock.now)
    sink.state.drop_after = 4000
    worker = _worker(cache, sink, clock)
    outcome = worker.run_once()
    assert outcome is not None and outcome.error == "connection_lost"
    assert len(sink.state.dropped) == 1
    sink.state.drop_after = None
    clock.advance(2)
    outcome = worker.run_once()
    assert outcome is not None and outcome.printed and outcome.reprint
    (printed,) = _printed(sink)
    assert b"REPRINT" in printed
    assert qr_texts(printed) == [sample_document().qr_payload]
    worker.stop()


def test_agent_restart_with_jobs_in_the_queue(cache: CodeCache, sink: PrinterSink) -> None:
    now = datetime.now(UTC)
    for txn in ("T1", "T2", "T3"):
        _issue(cache, txn, now)
    # The first agent claims T1 and dies before printing it (no confirmation, connection gone).
    dead = pq.connect(cache.path)
    assert pq.claim(dead, now=now, policy=POLICY) is not None
    dead.close()
    # A new agent: a new worker on a new connection, on its own thread, real time.
    worker = _worker(cache, sink, lambda: datetime.now(UTC))
    worker.start()
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and pq.open_jobs(cache.conn):
            time.sleep(0.01)
    finally:
        worker.stop()
    assert worker.failure is None
    assert pq.open_jobs(cache.conn) == []
    printed = _printed(sink)
    assert len(printed) == 3
    assert [b"REPRINT" in p for p in printed] == [True, False, False]  # T1 was cut off
    for txn in ("T1", "T2", "T3"):
        st = pq.transaction_status(cache.conn, till_id="till-1", transaction_id=txn)
        assert st is not None and st.status is pq.PrintStatus.PRINTED


def test_threaded_worker_prints_a_job_committed_by_another_connection(
    cache: CodeCache, sink: PrinterSink
) -> None:
    # A long idle: only wake() makes it look promptly.
    worker = _worker(cache, sink, lambda: datetime.now(UTC), idle_s=5.0)
    worker.start()
    try:
        time.sleep(0.05)
        _issue(cache, "T7", datetime.now(UTC))
        started = time.monotonic()
        worker.wake()
        while time.monotonic() - started < 3:
            st = pq.transaction_status(cache.conn, till_id="till-1", transaction_id="T7")
            if st is not None and st.status is pq.PrintStatus.PRINTED:
                break
            time.sleep(0.005)
        assert time.monotonic() - started < 1.0
    finally:
        worker.stop()
    assert not worker.alive


def test_render_and_send_times_one_coupon(sink: PrinterSink) -> None:
    timing = render_and_send(LAYOUT.render, EscposHarness(sink).printer, sample_document())
    assert timing.render_s > 0 and timing.send_s > 0
    assert timing.report.bytes_sent > 1000
