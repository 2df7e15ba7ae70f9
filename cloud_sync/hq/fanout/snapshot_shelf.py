"""The snapshots HQ's fan-out offers to boxes that deltas cannot bring up, and their chunks.

Theory of operation
-------------------
A box whose position says it needs a snapshot (``delta_log.catch_up``) is offered one
(``snapshot_offer.py``): ``offer(store_id)`` cuts the store a snapshot at its delta stream's
current point (``delta_log.follow_point`` in one event store transaction, then the central
store's ``write_snapshot`` with that point: what the deltas up to the point carry, the snapshot
holds, and what comes after arrives as deltas, idempotent where the two overlap), hashes it,
and signs the offer with HQ's key. A store's snapshot is reused for ``reuse_s``: ten boxes of
one store, or one box saying its position every few seconds, cost one cut; a box given a
snapshot an hour old follows on with an hour of deltas (unless the store has a new stream
since, ``producer``'s resync: then it is cut again). Each store keeps its newest two files
(a box still fetching the older one finishes it); older ones are deleted, and a request for a
file no longer held is answered ``missing`` (the box waits for the next offer).

``chunk(request)`` answers a request with the bytes from its offset, at most ``chunk_bytes``.
A box may fetch only its own store's snapshot (the ACL pins a box to its own topics, and the
fan-out checks the store its position named).

Files live flat in ``directory`` as ``{snapshot_id}.db``: the id is random, so no store id
(which may hold any character a topic level allows) ever becomes a path. What the shelf held
before a restart is forgotten, and its files (those named as it names them; nothing else in
the folder is touched) are deleted at start; boxes still fetching one
are answered ``missing`` and offered a new one at their next position.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.contract import snapshot_offer
from cloud_sync.contract.hq_document import Kind
from cloud_sync.contract.snapshot_offer import Chunk, Offer, Request
from cloud_sync.hq import hq_signer
from cloud_sync.hq.central_store import CentralStore
from cloud_sync.hq.fanout import delta_log
from cloud_sync.hq.ingest.event_store import EventStore
from cloud_sync.hq.snapshot import write_snapshot

log = logging.getLogger("storeside.hq.fanout")
CHUNK_BYTES: Final = 256 * 1024
REUSE_S: Final = 3600.0
KEEP_PER_STORE: Final = 2
_SHELVED: Final = re.compile(r"\.?[0-9a-f]{32}\.db(\.tmp)?")  # ours, or write_snapshot's temp


@dataclass(frozen=True, slots=True, kw_only=True)
class Shelved:
    offer: Offer
    document: bytes  # the signed offer, as published
    path: Path
    cut_at: float  # monotonic


class SnapshotShelf:
    def __init__(
        self,
        *,
        central: Path,
        directory: Path,
        key: Ed25519PrivateKey,
        chunk_bytes: int = CHUNK_BYTES,
        reuse_s: float = REUSE_S,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not 1 <= chunk_bytes <= snapshot_offer.MAX_CHUNK_BYTES:
            raise ValueError(f"chunk_bytes: 1 .. {snapshot_offer.MAX_CHUNK_BYTES}")
        self.central = central
        self.directory = directory
        self.key = key
        self.chunk_bytes = chunk_bytes
        self.reuse_s = reuse_s
        self._clock = clock
        self._by_store: dict[str, list[Shelved]] = {}  # newest last
        self._by_id: dict[str, Shelved] = {}
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.iterdir():  # only the shelf's own: the folder may hold others
            if _SHELVED.fullmatch(stale.name) and stale.is_file():
                stale.unlink()

    def offer(self, store: EventStore, store_id: str) -> Shelved:
        """The store's current snapshot, cut now unless one younger than ``reuse_s`` is held."""
        held = self._by_store.get(store_id, [])
        if held and time.monotonic() - held[-1].cut_at < self.reuse_s:
            # Only one of the stream the store follows now: after a restart (a backlog sent
            # as snapshots) the older one would leave the box where it was.
            at = store.run(lambda tx: delta_log.head(tx, store_id))
            if at is not None and at.stream == held[-1].offer.stream:
                return held[-1]
        shelved = self._cut(store, store_id)
        held = [*held, shelved]
        for gone in held[:-KEEP_PER_STORE]:
            del self._by_id[gone.offer.snapshot_id]
            gone.path.unlink(missing_ok=True)
        self._by_store[store_id] = held[-KEEP_PER_STORE:]
        self._by_id[shelved.offer.snapshot_id] = shelved
        return shelved

    def chunk(self, request: Request) -> Chunk:
        shelved = self._by_id.get(request.snapshot_id)
        if shelved is None or shelved.offer.store_id != request.store_id:
            return Chunk(snapshot_id=request.snapshot_id, offset=0, size=0, data=b"", missing=True)
        size = shelved.offer.size
        offset = min(request.offset, size)
        with shelved.path.open("rb") as f:
            f.seek(offset)
            data = f.read(min(self.chunk_bytes, size - offset))
        return Chunk(snapshot_id=request.snapshot_id, offset=offset, size=size, data=data)

    def _cut(self, store: EventStore, store_id: str) -> Shelved:
        started = time.monotonic()
        now = self._clock()
        point = store.run(lambda tx: delta_log.follow_point(tx, store_id, now=now))
        snapshot_id = secrets.token_hex(16)
        path = self.directory / f"{snapshot_id}.db"
        with CentralStore.open(self.central) as central:
            summary = write_snapshot(central, path, store_id, now=now, follow=point)
        digest = hashlib.sha256()
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
        offer = Offer(
            store_id=store_id,
            snapshot_id=snapshot_id,
            stream=point.stream,
            seq=point.seq,
            size=path.stat().st_size,
            sha256=digest.hexdigest(),
            chunk_bytes=self.chunk_bytes,
            created_at=now,
        )
        document = hq_signer.sign(Kind.SNAPSHOT, snapshot_offer.encode_offer(offer), self.key)
        log.info(
            "snapshot %s cut for store %s at delta %d: %d codes, %d bytes, in %.1f s",
            snapshot_id,
            store_id,
            point.seq,
            summary.codes,
            offer.size,
            time.monotonic() - started,
        )
        return Shelved(offer=offer, document=document, path=path, cut_at=time.monotonic())
