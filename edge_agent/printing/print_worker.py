"""The print worker: drains the durable print queue onto the printer, on its own thread.

Printer I/O blocks (connects, status reads, a slow serial line), so it never runs on the agent's
asyncio loop. The worker owns a thread and its own SQLite connection to the cache file (WAL lets
it write beside the API's connection); each queue step is a short BEGIN IMMEDIATE transaction
and nothing is held open while the printer is talked to. The asyncio side calls ``wake()`` after
committing a new job (thread-safe, never blocks) and reads ``print_queue.transaction_status`` on
its own connection to tell the POS "printed" or "print pending".

One cycle (``run_once``): claim the oldest due job -> render it (``Layout.render``: the exact
bytes) -> ``printer.print_job`` -> mark printed, or mark failed with the ``DeviceError``'s reason
(retried after a capped, doubling delay; as a REPRINT if part of it may be on paper). A
``DeviceError`` is an expected failure; anything else is a bug and ends the thread (the job's
lease then runs out and it is printed again, as a reprint, by the next worker). Under the agent's
supervisor (``edge_agent.runtime.print_task``) an ended thread is restarted with backoff.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from edge_agent.printing import print_queue
from edge_agent.printing.document import CouponDocument
from edge_agent.printing.layout import LayoutError
from edge_agent.printing.print_queue import RetryPolicy
from edge_agent.printing.printer_port import DeviceError, JobReport, ReceiptPrinter

log = logging.getLogger(__name__)
Renderer = Callable[[CouponDocument], bytes]


@dataclass(frozen=True, slots=True, kw_only=True)
class SendTiming:
    render_s: float
    send_s: float
    report: JobReport

    @property
    def total_s(self) -> float:
        return self.render_s + self.send_s


def render_and_send(
    render: Renderer, printer: ReceiptPrinter, document: CouponDocument
) -> SendTiming:
    """Render one coupon and send it (status, bytes, status). Raises ``LayoutError`` or
    ``DeviceError``. The issuing benchmark times this step with it."""
    started = time.perf_counter()
    data = render(document)
    rendered = time.perf_counter()
    report = printer.print_job(data)
    return SendTiming(
        render_s=rendered - started, send_s=time.perf_counter() - rendered, report=report
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class JobOutcome:
    job_id: int
    transaction_id: str
    code: str
    printed: bool
    reprint: bool
    error: str | None = None  # DeviceError.reason, or "layout"
    message: str | None = None
    next_attempt_at: datetime | None = None
    paper_near_end: bool = False


class PrintWorker:
    """Prints queued coupons. Drive it with ``start()``/``stop()``, or call ``run_once()`` from a
    single thread (tests, the CLI); never both."""

    def __init__(
        self,
        *,
        connect: Callable[[], sqlite3.Connection],
        printer: ReceiptPrinter,
        render: Renderer,
        clock: Callable[[], datetime],
        policy: RetryPolicy,
        idle_s: float = 5.0,
    ) -> None:
        self._connect = connect
        self._conn: sqlite3.Connection | None = None
        self.printer = printer
        self.render = render
        self.clock = clock
        self.policy = policy
        self.idle_s = idle_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_exit: Callable[[], None] | None = None
        self.failure: BaseException | None = None  # the bug that ended the thread, if any

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    # -- one step -----------------------------------------------------------------------------

    def recover(self) -> int:
        """Jobs cut off by a crash become due now, as reprints. Call once at start."""
        count = print_queue.recover_interrupted(self.conn, now=self.clock())
        if count:
            log.warning("%d print job(s) were interrupted; printing them again as reprints", count)
        return count

    def run_once(self) -> JobOutcome | None:
        """Print the oldest due job, if any, and record the result."""
        job = print_queue.claim(self.conn, now=self.clock(), policy=self.policy)
        if job is None:
            return None
        base = JobOutcome(
            job_id=job.id,
            transaction_id=job.transaction_id,
            code=job.code,
            printed=False,
            reprint=job.document.reprint,
        )
        try:
            timing = render_and_send(self.render, self.printer, job.document)
        except DeviceError as exc:
            return self._failed(base, exc.reason, str(exc), exc.may_have_printed)
        except LayoutError as exc:
            return self._failed(base, "layout", str(exc), False)
        print_queue.mark_printed(self.conn, job.id, now=self.clock())
        if timing.report.paper_near_end:
            log.warning("printer %s: paper roll near its end", self.printer.description)
        return replace(base, printed=True, paper_near_end=timing.report.paper_near_end)

    def _failed(self, base: JobOutcome, reason: str, message: str, partial: bool) -> JobOutcome:
        due = print_queue.mark_failed(
            self.conn,
            base.job_id,
            now=self.clock(),
            error=f"{reason}: {message}",
            may_have_printed=partial,
            policy=self.policy,
        )
        log.warning("print job %s not printed (%s); retry at %s", base.job_id, message, due)
        return replace(base, error=reason, message=message, next_attempt_at=due)

    def run_due(self, *, limit: int = 1000) -> list[JobOutcome]:
        """Run jobs until none is due (or ``limit``); each failure is rescheduled, not retried
        within this call."""
        outcomes: list[JobOutcome] = []
        while len(outcomes) < limit:
            outcome = self.run_once()
            if outcome is None:
                break
            outcomes.append(outcome)
        return outcomes

    # -- the thread ---------------------------------------------------------------------------

    def start(self, *, on_exit: Callable[[], None] | None = None) -> None:
        """Start the thread; ``on_exit`` is called on it as it ends, however it ends (the
        supervisor's print task waits on that instead of polling ``alive``)."""
        if self._thread is not None:
            raise RuntimeError("print worker already started")
        self._stop.clear()
        self.failure = None
        self._on_exit = on_exit
        self._thread = threading.Thread(target=self._main, name="print-worker", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """A job was committed: look now instead of at the next timer. Never blocks."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _main(self) -> None:
        try:
            self.recover()
            while not self._stop.is_set():
                try:
                    outcome = self.run_once()
                except sqlite3.OperationalError as exc:  # e.g. locked beyond busy_timeout
                    log.warning("print queue busy (%s); trying again shortly", exc)
                    outcome = None
                if outcome is not None:
                    continue
                self._wake.wait(self._idle_wait())
                self._wake.clear()
        except BaseException as exc:
            # Kept for whoever supervises the thread (the runtime's print task raises it on the
            # loop and restarts the worker); not re-raised, which would only print it twice.
            self.failure = exc
            log.exception("print worker stopped by an unexpected error")
        finally:
            if self._on_exit is not None:
                self._on_exit()

    def _idle_wait(self) -> float:
        due = print_queue.next_due(self.conn)
        if due is None:
            return self.idle_s
        return min(self.idle_s, max(0.01, (due - self.clock()).total_seconds()))
