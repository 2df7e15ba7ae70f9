"""The box following its store's delta stream over the link: check, apply, say where it is.

Theory of operation
-------------------
The outbox pump owns the box's one MQTT connection and hands every message on the box's
``delta`` topic here (``on_delta``), on the agent's loop. Deltas are taken one at a time, in
arrival order, by one task (``run``), because each is placed against the watermark the one
before left. For each, in order:

1. ``HqTrust.open``: HQ's signature with a key the box trusts (the pinned ``[sync]
   hq_public_key``), and the kind ``delta``; anything else is refused and logged with its
   reason, even when it came on the right topic through the box's own broker account.
2. ``delta.decode``: a typed error naming the field, logged; nothing applied.
3. ``delta_apply.apply`` on the pump's thread and connection (never the tills' thread): one
   transaction, placed against the watermark. The tills see it at their next read (their
   cache notices another connection's commit: ``CodeCache._refresh``).

Where the box stands is said on its retained ``position`` topic (``follow_position.py``):
after every connect; on a gap (HQ answers with the missing deltas) and on a delta of another
stream (HQ logs that the box needs a snapshot), at once, or when deltas stop if it was said
less than ``quiet_s`` ago (every delta after a gap is a gap too until the answer comes); and
when deltas have stopped for ``quiet_s`` after the watermark moved, so a catch-up HQ sent in
pages goes on with the next page and HQ knows each box's watermark; and when the position
moved without a delta (a snapshot loaded beside the running agent), noticed within a quiet
period. Nothing here raises into the pump: every fault is a log line and a counter, and the
next delta is taken.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from cloud_sync.contract import delta as deltas
from cloud_sync.contract import follow_position
from cloud_sync.contract.delta import Place
from cloud_sync.contract.follow_position import FollowPosition
from cloud_sync.contract.hq_document import Kind
from cloud_sync.contract.message_codec import MessageError
from cloud_sync.contract.topics import Channel
from edge_agent.cache.code_cache import CodeCache
from edge_agent.follow import delta_apply, hq_keys
from edge_agent.follow.delta_apply import Applied, DeltaRefusedError
from edge_agent.sync.hq_trust import HqTrust, RefusedDocumentError

log = logging.getLogger(__name__)
QUEUE_MAX: Final = 10_000  # deltas waiting; beyond, the rest are dropped and asked for again


@dataclass(slots=True)
class FollowCounters:
    applied: int = 0
    duplicates: int = 0
    gaps: int = 0
    other_stream: int = 0
    refused: dict[str, int] = field(default_factory=dict)  # reason -> deltas refused
    positions_said: int = 0


class DeltaFollower:
    def __init__(
        self,
        *,
        store_id: str,
        box_id: str,
        pinned: bytes | None,
        on_cache: Callable[[Callable[[CodeCache], Any]], Awaitable[Any]],
        say: Callable[[bytes], bool],
        clock: Callable[[], datetime],
        quiet_s: float = 2.0,
    ) -> None:
        self._store_id = store_id
        self._box_id = box_id
        self._pinned = pinned  # HQ's public key, as config pins it; None: no delta is trusted
        self._trust: HqTrust | None = None  # from ``run`` on: the pin and the keys announced
        self._on_cache = on_cache
        self._say = say
        self._clock = clock
        self._quiet_s = quiet_s
        self._queue: asyncio.Queue[tuple[Channel, bytes]] = asyncio.Queue(QUEUE_MAX)
        self._said_at = -1e9  # monotonic time the position was last said
        self._moved = False  # the watermark moved since the position was last said
        self._overflowed = False
        self._unsaid = False  # a gap or another stream not said yet (said too recently)
        self.counters = FollowCounters()
        self.position: delta_apply.Position | None = None  # the cache's, as last read
        self._said: delta_apply.Position | None = None  # the last one HQ was told

    @property
    def trust(self) -> HqTrust | None:
        """The HQ keys trusted now (None before ``run`` began, or with no key pinned)."""
        return self._trust

    @property
    def said(self) -> delta_apply.Position | None:
        """The position HQ was last told (None before the first)."""
        return self._said

    def on_delta(self, payload: bytes) -> None:
        """A message on the box's delta topic (on the loop, from the link)."""
        self._put(Channel.DELTA, payload)

    def on_hq_key(self, payload: bytes) -> None:
        """A message on the box's hq_key topic: HQ's next key, announced."""
        self._put(Channel.HQ_KEY, payload)

    def _put(self, channel: Channel, payload: bytes) -> None:
        try:
            self._queue.put_nowait((channel, payload))
        except asyncio.QueueFull:
            self._overflowed = True  # the gap this leaves is asked for again

    def on_connected(self) -> None:
        """A new connection: say the position first thing (an empty item in the queue, so it
        is said between two deltas, never during one)."""
        self._said_at = -1e9
        self._put(Channel.POSITION, b"")

    async def run(self) -> None:
        """Take deltas until cancelled."""
        if self._pinned is not None:  # with the keys announced since, as the cache keeps them
            announced = await self._on_cache(lambda cache: hq_keys.read(cache.conn))
            self._trust = HqTrust.pinned(self._pinned, announced)
        while True:
            try:
                async with asyncio.timeout(self._quiet_s):
                    channel, payload = await self._queue.get()
            except TimeoutError:
                if self._unsaid or self._overflowed:  # the gap that was not logged then
                    log.info(
                        "follow: deltas after watermark %s did not follow on: "
                        "asking HQ for the rest",
                        "?" if self.position is None else self.position.watermark,
                    )
                if self._moved or self._overflowed or self._unsaid:
                    await self._say_position()
                else:
                    await self._say_if_changed()
                continue
            if channel is Channel.POSITION:  # a connect: say where the cache stands
                await self._say_position()
            elif channel is Channel.HQ_KEY:
                await self._take_key(payload)
            else:
                await self._take(payload)

    async def _take_key(self, payload: bytes) -> None:
        if self._trust is None:
            self._refuse("no_hq_key", "sync.hq_public_key is not set: no HQ key is trusted")
            return
        try:
            trust, announcement = self._trust.accept(payload, now=self._clock())
        except RefusedDocumentError as exc:
            self._refuse(exc.reason.value, f"an HQ key announcement: {exc}")
            return
        if trust.keys == self._trust.keys:
            return  # heard before: every answer to a position repeats the chain
        await self._on_cache(lambda cache: hq_keys.write(cache, trust.announced))
        self._trust = trust
        log.info(
            "follow: HQ key %s trusted (announced %s%s)",
            announcement.key_id,
            announcement.announced_at.isoformat(),
            ""
            if announcement.retires is None
            else f"; {announcement.retires} retires at {announcement.retire_at}",
        )

    async def _take(self, payload: bytes) -> None:
        if self._trust is None:
            self._refuse("no_hq_key", "sync.hq_public_key is not set: no delta is trusted")
            return
        try:
            document = self._trust.open(payload, kind=Kind.DELTA, now=self._clock())
            delta = deltas.decode(document.body)
        except RefusedDocumentError as exc:
            self._refuse(exc.reason.value, str(exc))
            return
        except MessageError as exc:
            self._refuse(exc.reason, str(exc))
            return
        try:
            applied = await self._on_cache(lambda cache: delta_apply.apply(cache, delta))
        except DeltaRefusedError as exc:
            self._refuse(exc.reason.value, f"delta {delta.seq}: {exc}")
            return
        assert isinstance(applied, Applied)
        self.position = applied.position
        if applied.place is Place.NEXT:
            self.counters.applied += 1
            self._moved = True
            log.info(
                "follow: applied delta %d (%d changes, %d of this box's own)",
                delta.seq,
                applied.applied,
                applied.skipped,
            )
        elif applied.place is Place.DUPLICATE:
            self.counters.duplicates += 1
        elif applied.place is Place.GAP:
            self.counters.gaps += 1
            if await self._say_soon():
                log.info(
                    "follow: delta %d after watermark %d: asking HQ for the rest",
                    delta.seq,
                    applied.position.watermark,
                )
        else:
            self.counters.other_stream += 1
            if await self._say_soon():
                log.warning(
                    "follow: delta of stream %s, the cache follows %s: it needs a snapshot",
                    delta.stream,
                    applied.position.stream,
                )

    async def _say_soon(self) -> bool:
        """Say the position now, unless it was said less than ``quiet_s`` ago: then when the
        deltas stop (every delta after a gap is a gap until HQ's answer comes). True if said."""
        if time.monotonic() - self._said_at < self._quiet_s:
            self._unsaid = True
            return False
        await self._say_position()
        return True

    def _refuse(self, reason: str, detail: str) -> None:
        refused = self.counters.refused
        refused[reason] = refused.get(reason, 0) + 1
        log.warning("follow: refused a delta: %s (%s)", detail, reason)

    async def _say_if_changed(self) -> None:
        """A snapshot loaded beside the running agent (``edge-agent load-snapshot``) moves the
        position without a delta: one read of ``meta`` per quiet period notices it."""
        at = await self._on_cache(lambda cache: delta_apply.position(cache.conn))
        self.position = at
        if at != self._said:
            await self._say_position()

    async def _say_position(self) -> None:
        at = await self._on_cache(lambda cache: delta_apply.position(cache.conn))
        assert isinstance(at, delta_apply.Position)
        self.position = at
        message = FollowPosition(
            store_id=self._store_id, box_id=self._box_id, stream=at.stream, watermark=at.watermark
        )
        if self._say(follow_position.encode(message)):
            self._said = at
            self._said_at = time.monotonic()
            self._moved = self._overflowed = self._unsaid = False
            self.counters.positions_said += 1
