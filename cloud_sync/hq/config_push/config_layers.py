"""HQ's config layers in the event store (``config_pushes``), and each store's composed config.

Theory of operation
-------------------
Every push is a row: the next HQ-wide version (one counter for the fleet and every store, so
a box can refuse any version it has seen, whichever layer moved), the scope (null: the fleet;
else a store id) and the overlay. A store's config is ``compose``: the newest fleet overlay,
deep-merged with the newest overlay of that store over it (``config/overlay.merge``: the
store's wins), stamped with the newer of the two versions, as a ``ConfigDocument``. A fleet
push recomposes every store HQ knows; a store push, that store. The boxes of a store are
those the event store has heard of (its events, its presence, its delta position).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from cloud_sync.contract.config_document import ConfigDocument
from cloud_sync.hq.ingest.event_store import Tx, to_micros
from config.overlay import merge


def record(tx: Tx, *, store_id: str | None, overlay: dict[str, Any], now: datetime) -> int:
    """Keep a push; its version (the next HQ-wide one)."""
    tx.lock_keys(["storeside:config-push"])
    (top,) = tx.query("SELECT MAX(version) FROM config_pushes")[0]
    version = 1 if top is None else int(top) + 1
    tx.execute(
        "INSERT INTO config_pushes (version, store_id, pushed_at, overlay) VALUES (?, ?, ?, ?)",
        (version, store_id, to_micros(now), json.dumps(overlay, sort_keys=True)),
    )
    return version


def _newest(tx: Tx, store_id: str | None) -> tuple[int, dict[str, Any]] | None:
    where = "store_id IS NULL" if store_id is None else "store_id = ?"
    rows = tx.query(
        f"SELECT version, overlay FROM config_pushes WHERE {where} "  # noqa: S608 - no input
        "ORDER BY version DESC LIMIT 1",
        () if store_id is None else (store_id,),
    )
    return None if not rows else (int(rows[0][0]), json.loads(rows[0][1]))


def compose(tx: Tx, store_id: str, *, now: datetime) -> ConfigDocument | None:
    """The store's config as its boxes get it; None when HQ has pushed nothing for it."""
    fleet, store = _newest(tx, None), _newest(tx, store_id)
    if fleet is None and store is None:
        return None
    overlay = merge(fleet[1] if fleet else {}, store[1] if store else {})
    return ConfigDocument(
        store_id=store_id,
        version=max(layer[0] for layer in (fleet, store) if layer is not None),
        fleet_version=None if fleet is None else fleet[0],
        store_version=None if store is None else store[0],
        issued_at=now,
        overlay=overlay,
    )


def boxes(tx: Tx, store_id: str | None = None) -> dict[str, str]:
    """Every box HQ knows (of ``store_id``, if given): box id -> store id."""
    found: dict[str, str] = {}
    for table in ("streams", "presence", "box_positions"):
        for box, store in tx.query(f"SELECT box_id, store_id FROM {table}"):  # noqa: S608
            if store_id is None or store == store_id:
                found.setdefault(str(box), str(store))
    return found
