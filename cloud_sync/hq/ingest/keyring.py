"""The store keys ingest checks batch signatures with: cached, reloaded when one is missing.

HQ registers store keys in its central SQLite file (``storeside-hq keys register``), usually
while workers run. A worker loads them once, and loads them again when a batch names a key id
it does not hold (a store registered since), but at most once every ``min_reload_s``: a
stream of batches under a bogus key id must not turn into a stream of file reads. Until the
next reload such a batch is quarantined ``unknown_key``; the box sends it again when its ack
does not come, so a newly registered store loses nothing. Revocations are picked up at the
next reload. A reload that fails (the central file locked by a long `storeside-hq` write,
moved, damaged) keeps the keys already held and says so in the log: the batch is quarantined
``unknown_key`` as it would be anyway, and ingest of every known store goes on. Only the first
load must succeed. ``clock`` is the seam tests drive (monotonic seconds).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from cloud_sync.hq.central_store import CentralStore
from cloud_sync.hq.errors import HqError
from cloud_sync.hq.store_keys import StoreKey, keys

MIN_RELOAD_S = 5.0
log = logging.getLogger("storeside.hq.ingest")


def central_keys(path: Path) -> Callable[[], list[StoreKey]]:
    """A loader of the keys registered in the central store file at ``path``."""

    def load() -> list[StoreKey]:
        with CentralStore.open(path) as central:
            return keys(central)

    return load


class Keyring:
    def __init__(
        self,
        load: Callable[[], Sequence[StoreKey]],
        *,
        min_reload_s: float = MIN_RELOAD_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._min_reload_s = min_reload_s
        self._clock = clock
        self._keys: tuple[StoreKey, ...] = tuple(load())
        self._loaded_at = clock()
        self.reloads = 0

    def keys_for(self, key_id: str) -> tuple[StoreKey, ...]:
        """The registered keys, reloaded first if none is ``key_id`` and the last load is
        old enough."""
        if any(k.key_id == key_id for k in self._keys):
            return self._keys
        now = self._clock()
        if now - self._loaded_at >= self._min_reload_s:
            self._loaded_at = now
            self.reloads += 1
            try:
                self._keys = tuple(self._load())
            except (HqError, sqlite3.Error) as exc:
                log.warning("store keys not reloaded, keeping %d: %s", len(self._keys), exc)
        return self._keys
