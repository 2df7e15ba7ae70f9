"""The one thread that owns the store's SQLite cache, and its group commit.

SQLite connections must not be shared across threads, and the asyncio loop must never block on
disk I/O (an fsync on an SD card can take 100 ms). So the cache and the redemption service live
on a single worker thread, and the loop hands it closures. One thread also serialises every
write, which is what the reserve/commit logic assumes.

Group commit
------------
A durable write's cost is its fsync (2-10 ms on an SD card), not its statements. Writes submitted
with ``group=True`` (each one a whole operation that writes only through
``CodeCache.transaction``) are batched: when the thread picks one up it also takes every other
grouped write already waiting (up to ``max_batch``) and runs them, in arrival order, inside ONE
``BEGIN IMMEDIATE`` transaction, each inside its own SAVEPOINT (``CodeCache.group``). An
operation that raises is rolled back to its savepoint alone and answered with its exception; its
neighbours keep their writes. Nobody is answered before the COMMIT that made the batch durable
has returned: acknowledged still means durable. If that COMMIT fails, every operation of the
batch is answered with the failure (none of them happened). The operations see each other's
writes in arrival order, exactly as if they had run one after another, so the result is that of
serial execution. A lone grouped write runs as an ordinary transaction; ungrouped work (reads,
housekeeping, checkpoints, receipts) runs alone, between batches, in arrival order.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from edge_agent.services import StoreServices

T = TypeVar("T")
log = logging.getLogger(__name__)
# Enough to share one fsync among every till of a large store; bounded so one batch cannot
# hold the write lock (and the answers) for long.
MAX_BATCH = 64


@dataclasses.dataclass(slots=True)
class _Job:
    fn: Callable[[StoreServices], Any]
    group: bool
    answer: Callable[[Any, BaseException | None], None]


class DbThread:
    def __init__(
        self, open_services: Callable[[], StoreServices], *, max_batch: int = MAX_BATCH
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._max_batch = max_batch
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        opened: concurrent.futures.Future[StoreServices] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._main, args=(open_services, opened), name="sqlite", daemon=True
        )
        self._closed = False
        self.batches = 0  # grouped transactions committed (for benches and tests)
        self.batched = 0  # operations answered from them
        self._write_listeners: list[Callable[[], None]] = []
        self._thread.start()
        try:
            self._service = opened.result()
        except BaseException:
            self._thread.join()
            raise

    async def run(self, fn: Callable[[StoreServices], T], *, group: bool = False) -> T:
        """Run ``fn`` on the thread; ``group``: it is a whole write operation that may share
        its transaction and fsync with other waiting ones (see the module docstring)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def settle(result: Any, exc: BaseException | None) -> None:
            if future.cancelled():
                return
            if exc is not None:
                future.set_exception(exc)
            else:
                future.set_result(result)

        def answer(result: Any, exc: BaseException | None) -> None:
            # A caller whose loop has closed meanwhile (shutdown) is past caring; the thread
            # must not die of it, the next job is someone else's.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, result, exc)

        self._submit(_Job(fn, group, answer))
        return await future

    def call(self, fn: Callable[[StoreServices], T], *, group: bool = False) -> T:
        """Blocking variant for code outside the loop (CLI, tests, benches, shutdown)."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def answer(result: Any, exc: BaseException | None) -> None:
            if exc is not None:
                future.set_exception(exc)
            else:
                future.set_result(result)

        self._submit(_Job(fn, group, answer))
        return future.result()

    def on_write(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` (on this thread: it must only hand over, e.g. with
        ``call_soon_threadsafe``) after each job or batch that changed the cache, once its
        COMMIT has returned. The outbox pump wakes on it instead of polling the outbox.
        Answers the function that removes the listener."""
        self._write_listeners.append(listener)
        return lambda: self._write_listeners.remove(listener)

    def _submit(self, job: _Job) -> None:
        if self._closed:  # nobody would ever answer it
            raise RuntimeError("the DB thread is closed")
        self._jobs.put(job)

    def close(self) -> None:
        try:
            self.call(lambda s: s.close())
        finally:
            self._closed = True
            self._jobs.put(None)
            self._thread.join()

    # -- the thread ---------------------------------------------------------------------------

    def _main(
        self,
        open_services: Callable[[], StoreServices],
        opened: concurrent.futures.Future[StoreServices],
    ) -> None:
        try:
            services = open_services()
        except BaseException as exc:
            opened.set_exception(exc)
            return
        opened.set_result(services)
        held: list[_Job | None] = []  # what ended a batch's draining: it runs next
        changes = services.cache.conn.total_changes
        while True:
            # After each job or batch (its COMMIT returned), before waiting for the next.
            if self._write_listeners and services.cache.conn.total_changes != changes:
                changes = services.cache.conn.total_changes
                for listener in tuple(self._write_listeners):
                    try:
                        listener()
                    except Exception:  # a listener's bug must not stop the tills' thread
                        log.exception("write listener %r failed", listener)
            job = held.pop() if held else self._jobs.get()
            if job is None:
                return
            if not job.group:
                _run_alone(job, services)
                continue
            batch = [job]
            while len(batch) < self._max_batch:
                try:
                    nxt = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if nxt is None or not nxt.group:
                    held.append(nxt)
                    break
                batch.append(nxt)
            if len(batch) == 1:
                _run_alone(job, services)  # its own transaction: no savepoints to pay for
            else:
                self._run_batch(batch, services)

    def _run_batch(self, batch: list[_Job], services: StoreServices) -> None:
        answers: list[tuple[Any, BaseException | None]] = []
        try:
            with services.cache.group() as operation:
                for job in batch:
                    try:
                        with operation():
                            answers.append((job.fn(services), None))
                    except BaseException as failed:  # rolled back to its savepoint alone
                        answers.append((None, failed))
        except BaseException as lost:  # the COMMIT (or BEGIN) failed: none of them happened
            for job in batch:
                job.answer(None, lost)
            return
        # Only now, with the COMMIT returned, is any of them durable and answerable.
        self.batches += 1
        self.batched += len(batch)
        for job, (result, failure) in zip(batch, answers, strict=True):
            job.answer(result, failure)


def _run_alone(job: _Job, services: StoreServices) -> None:
    try:
        result = job.fn(services)
    except BaseException as exc:  # the caller's to handle, as an executor would hand it over
        job.answer(None, exc)
    else:
        job.answer(result, None)
