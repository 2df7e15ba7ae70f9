"""The one thread that owns the store's SQLite cache.

SQLite connections must not be shared across threads, and the asyncio loop must never block on
disk I/O (an fsync on an SD card can take 100 ms). So the cache and the redemption service live
on a single worker thread, and the loop hands it closures. One thread also serialises every
write, which is what the reserve/commit logic assumes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from edge_agent.services import StoreServices

T = TypeVar("T")


class DbThread:
    def __init__(self, open_services: Callable[[], StoreServices]) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        try:
            self._service = self._executor.submit(open_services).result()
        except BaseException:
            self._executor.shutdown(wait=True)
            raise

    async def run(self, fn: Callable[[StoreServices], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, self._service)

    def call(self, fn: Callable[[StoreServices], T]) -> T:
        """Blocking variant for code outside the loop (CLI, tests, shutdown)."""
        return self._executor.submit(fn, self._service).result()

    def close(self) -> None:
        try:
            self.call(lambda s: s.close())
        finally:
            self._executor.shutdown(wait=True)
