"""The pump's own thread and connection to the cache file, off the tills' DB thread.

The tills' DB thread (``runtime/db_thread.py``) answers every validate in turn; a job queued in
front of one delays it by its whole length. The pump's jobs are long by a till's measure: an
outbox read of a few hundred rows (~1 ms), the delete after an ack (a COMMIT, an fsync: 2-10
ms on an SD card), and packing and signing a batch. Measured in ``bench_sync`` on the DB thread
and the loop, they lifted validate's p99 several times over during a drain. So the pump works
on a connection of its own, in a thread of its own: SQLite in WAL mode lets its reads run
beside the tills' reads and writes, and its one write (the delete) waits for the write lock
like any other connection, which a validate, a read, never takes. The tills' thread still
tells the pump when something was committed (``DbThread.on_write``), so nothing is polled.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import TypeVar

from edge_agent.cache.code_cache import CodeCache

T = TypeVar("T")


class PumpThread:
    def __init__(self, open_cache: Callable[[], CodeCache]) -> None:
        self._open = open_cache
        self._cache: CodeCache | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sync")

    def _call(self, fn: Callable[[CodeCache], T]) -> T:  # on the thread
        if self._cache is None:
            self._cache = self._open()
        return fn(self._cache)

    async def run(self, fn: Callable[[CodeCache], T]) -> T:
        """``fn(cache)`` on the pump's thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._call, fn)

    def close(self) -> None:
        def shut() -> None:
            if self._cache is not None:
                self._cache.close()
                self._cache = None

        self._executor.submit(shut).result()
        self._executor.shutdown()
