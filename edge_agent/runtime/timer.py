"""The runtime's time seam: what "now" is and how to wait, so tests never wait for real backoff.

``LoopTimer`` is the real one (wall clock for what health reports, ``asyncio.sleep`` for the
waiting, which asyncio measures on the monotonic clock). ``FakeTimer`` is its twin for tests:
a sleep moves the fake clock forward by the time asked for, records it, and yields to the loop
once, so a restart loop runs at full speed and its delays can be read back.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Timer(Protocol):
    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class LoopTimer:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class FakeTimer:
    """Time passes only when something sleeps. ``sleeps`` lists every sleep asked for."""

    def __init__(self, start: datetime = datetime(2026, 1, 1, tzinfo=UTC)) -> None:
        self._now = start
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)
