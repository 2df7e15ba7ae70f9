"""Fetching the snapshot HQ offers when deltas cannot bring the cache up, and swapping it in.

Theory of operation
-------------------
HQ offers a box a snapshot (``cloud_sync/contract/snapshot_offer.py``) when the box's position
says deltas cannot help: its cache follows no stream (a new box, a cache lost or set aside),
another stream, or one whose missing deltas HQ no longer keeps. The offer is retained on the
box's ``snapshot`` topic, so it arrives after every connect too. For each offer, in order:

1. ``HqTrust.open`` with kind ``snapshot`` (refused and logged unless HQ signed it), the body
   decoded, its store the box's own;
2. skipped if the cache already follows the offer's stream at or past its seq (an old offer,
   still retained, seen again after a reconnect);
3. fetched into ``{id}.part`` beside the cache: requests from the partial file's length, at
   most ``window`` chunks ahead, each chunk appended only at the length it was asked for (a
   duplicate or one after a lost chunk is dropped; ``stall_s`` without progress asks again
   from the length). A restart, a lost link, HQ restarting: the next offer of the same file
   resumes from what the partial file holds;
4. when the file is whole: synced, its size and SHA-256 checked against the signed offer (a
   mismatch deletes it and fetches it again, up to ``ATTEMPTS`` times), and loaded with
   ``CodeCache.load_snapshot`` on the pump's thread: HQ's tables swapped in one transaction
   while the tills keep reading, the box's own state (uses, holds, unsent events) kept, the
   stream position taken from the file. The follower notices the new position and says it,
   and HQ sends the deltas after it.

Nothing here raises into the pump: every fault is a log line and a counter.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Final

from cloud_sync.contract import snapshot_offer
from cloud_sync.contract.hq_document import Kind
from cloud_sync.contract.message_codec import MessageError
from cloud_sync.contract.snapshot_offer import Offer, Request
from edge_agent.cache.code_cache import CodeCache
from edge_agent.errors import SnapshotError
from edge_agent.follow import stream_position
from edge_agent.sync.hq_trust import HqTrust, RefusedDocumentError

log = logging.getLogger(__name__)
ATTEMPTS: Final = 3  # whole fetches of one offer whose file fails its check, then wait


@dataclass(slots=True)
class FetchCounters:
    offers: int = 0  # offers taken (fetched or resumed)
    skipped: int = 0  # offers the cache was already at or past
    refused: int = 0  # offers refused (signature, body, store)
    chunks: int = 0  # chunks written
    dropped_chunks: int = 0  # duplicates, out of order, of no current fetch, malformed
    resumed_from: int = 0  # bytes already held when the last fetch started
    failed_checks: int = 0  # whole files that failed size or SHA-256
    loaded: int = 0  # snapshots swapped in


class SnapshotFetcher:
    def __init__(
        self,
        *,
        store_id: str,
        box_id: str,
        trust: Callable[[], HqTrust | None],
        on_cache: Callable[[Callable[[CodeCache], Any]], Awaitable[Any]],
        request: Callable[[bytes], bool],
        clock: Callable[[], datetime],
        window: int = 4,
        stall_s: float = 10.0,
    ) -> None:
        self._store_id = store_id
        self._box_id = box_id
        self._trust = trust
        self._on_cache = on_cache
        self._request = request
        self._clock = clock
        self._window = window
        self._stall_s = stall_s
        self._offers: asyncio.Queue[bytes] = asyncio.Queue(16)
        self._wake = asyncio.Event()
        self._offer: Offer | None = None
        self._dir: Path | None = None
        self._file: IO[bytes] | None = None
        self._have = 0  # bytes in the partial file
        self._asked = 0  # the offset after the last chunk asked for
        self._progress_at = 0.0
        self._attempts = 0
        self.counters = FetchCounters()

    @property
    def fetching(self) -> Offer | None:
        return self._offer

    def on_offer(self, payload: bytes) -> None:
        """A message on the box's snapshot topic (on the loop, from the link)."""
        try:
            self._offers.put_nowait(payload)
        except asyncio.QueueFull:  # the offer is retained: it comes again at the next connect
            log.warning("snapshot: offers arrive faster than they are taken; one dropped")

    def on_chunk(self, payload: bytes) -> None:
        """A message on the box's snapshot_chunk topic (on the loop, from the link)."""
        try:
            chunk = snapshot_offer.decode_chunk(payload)
        except MessageError as exc:
            self.counters.dropped_chunks += 1
            log.warning("snapshot: dropped a chunk: %s (%s)", exc, exc.reason)
            return
        offer = self._offer
        if offer is None or chunk.snapshot_id != offer.snapshot_id or self._file is None:
            self.counters.dropped_chunks += 1
            return
        if chunk.missing:
            log.warning(
                "snapshot %s: HQ no longer holds it; waiting for a new offer", offer.snapshot_id
            )
            self._abandon(delete=True)
            return
        if chunk.offset != self._have or chunk.size != offer.size:
            self.counters.dropped_chunks += 1  # a duplicate, or after a lost one: asked again
            return
        self._file.write(chunk.data)
        self._have += len(chunk.data)
        self._progress_at = time.monotonic()
        self.counters.chunks += 1
        self._wake.set()

    def on_connected(self) -> None:
        """A new connection: chunks asked for on the old one may never come."""
        self._asked = self._have
        self._wake.set()

    async def run(self) -> None:
        """Take offers and fetch until cancelled."""
        cache_path = await self._on_cache(lambda cache: Path(cache.path))
        self._dir = cache_path.with_name(cache_path.name + ".snapshots")
        self._dir.mkdir(exist_ok=True)
        try:
            while True:
                if self._offer is None:
                    await self._take(await self._offers.get())
                    continue
                if not self._offers.empty():
                    await self._take(self._offers.get_nowait())
                    continue
                if self._offer is not None and self._have >= self._offer.size:
                    await self._finish(self._offer)
                    continue
                self._ask()
                self._wake.clear()
                try:
                    async with asyncio.timeout(1.0):
                        await self._wake.wait()
                except TimeoutError:
                    if time.monotonic() - self._progress_at > self._stall_s:
                        log.info("snapshot: no chunk for %.0f s; asking again", self._stall_s)
                        self._asked = self._have
                        self._progress_at = time.monotonic()
        finally:
            self._abandon(delete=False)

    # -- offers -------------------------------------------------------------------------------

    async def _take(self, payload: bytes) -> None:
        offer = self._open(payload)
        if offer is None:
            return
        if self._offer is not None and offer.snapshot_id == self._offer.snapshot_id:
            return  # the same offer again (a reconnect): the fetch goes on
        at = await self._on_cache(lambda cache: stream_position.position(cache.conn))
        if at.stream == offer.stream and at.watermark >= offer.seq:
            self.counters.skipped += 1
            log.info("snapshot %s: the cache is already at or past it", offer.snapshot_id)
            return
        self._abandon(delete=False)
        self._start(offer)

    def _open(self, payload: bytes) -> Offer | None:
        trust = self._trust()
        why = None
        if trust is None:
            why = "no_hq_key: sync.hq_public_key is not set: no snapshot offer is trusted"
        else:
            try:
                document = trust.open(payload, kind=Kind.SNAPSHOT, now=self._clock())
                offer = snapshot_offer.decode_offer(document.body)
            except RefusedDocumentError as exc:
                why = str(exc)
            except MessageError as exc:
                why = f"{exc.reason}: {exc}"
            else:
                if offer.store_id == self._store_id:
                    return offer
                why = f"other_store: an offer of store {offer.store_id!r}"
        self.counters.refused += 1
        log.warning("snapshot: offer refused: %s", why)
        return None

    def _start(self, offer: Offer) -> None:
        assert self._dir is not None
        for other in self._dir.glob("*.part"):  # a partial copy of any other offer is stale
            if other.stem != offer.snapshot_id:
                other.unlink()
        part = self._dir / f"{offer.snapshot_id}.part"
        have = part.stat().st_size if part.exists() else 0
        if have > offer.size:
            part.unlink()
            have = 0
        self._file = part.open("ab")
        self._offer, self._have, self._asked = offer, have, have
        self._progress_at = time.monotonic()
        self._attempts = 0
        self.counters.offers += 1
        self.counters.resumed_from = have
        log.info(
            "snapshot %s: fetching %d bytes%s (at delta %d of stream %s)",
            offer.snapshot_id,
            offer.size,
            f", resuming at byte {have}" if have else "",
            offer.seq,
            offer.stream,
        )

    def _ask(self) -> None:
        offer = self._offer
        assert offer is not None
        while (
            self._asked < offer.size and self._asked < self._have + self._window * offer.chunk_bytes
        ):
            request = Request(
                store_id=self._store_id,
                box_id=self._box_id,
                snapshot_id=offer.snapshot_id,
                offset=self._asked,
            )
            if not self._request(snapshot_offer.encode_request(request)):
                return  # not connected: asked again at the next connect
            self._asked += offer.chunk_bytes

    # -- the whole file ------------------------------------------------------------------------

    async def _finish(self, offer: Offer) -> None:
        assert self._file is not None and self._dir is not None
        part = self._dir / f"{offer.snapshot_id}.part"
        file, self._file = self._file, None
        good = await asyncio.to_thread(_sync_and_check, file, part, offer)
        if not good:
            self.counters.failed_checks += 1
            self._attempts += 1
            part.unlink(missing_ok=True)
            if self._attempts >= ATTEMPTS:
                log.error(
                    "snapshot %s: failed its check %d times; waiting for a new offer",
                    offer.snapshot_id,
                    self._attempts,
                )
                self._offer = None
                return
            log.warning(
                "snapshot %s: the file failed its check; fetching it again", offer.snapshot_id
            )
            self._file = part.open("ab")
            self._have = self._asked = 0
            return
        self._offer = None
        ready = part.with_suffix(".db")
        part.replace(ready)
        try:
            info = await self._on_cache(lambda cache: cache.load_snapshot(ready))
        except SnapshotError as exc:
            log.error("snapshot %s: not loaded: %s", offer.snapshot_id, exc)
            return
        finally:
            ready.unlink(missing_ok=True)
        self.counters.loaded += 1
        log.info(
            "snapshot %s loaded: %d codes, %d campaigns, %d members in %.1f s; following "
            "stream %s from delta %d",
            offer.snapshot_id,
            info.codes,
            info.campaigns,
            info.members,
            info.seconds,
            offer.stream,
            offer.seq,
        )

    def _abandon(self, *, delete: bool) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if delete and self._offer is not None and self._dir is not None:
            (self._dir / f"{self._offer.snapshot_id}.part").unlink(missing_ok=True)
        self._offer = None


def _sync_and_check(file: IO[bytes], part: Path, offer: Offer) -> bool:
    """On a worker thread: the partial file made durable, then checked whole."""
    file.flush()
    os.fsync(file.fileno())
    file.close()
    if part.stat().st_size != offer.size:
        log.warning(
            "snapshot %s: %d bytes, not %d", offer.snapshot_id, part.stat().st_size, offer.size
        )
        return False
    digest = hashlib.sha256()
    with part.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    if digest.hexdigest() != offer.sha256:
        log.warning("snapshot %s: its SHA-256 is not the offer's", offer.snapshot_id)
        return False
    return True
