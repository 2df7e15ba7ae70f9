"""HQ's config layers on a real event store: one HQ-wide version counter, and each store's
config the fleet's overlay under its own (the store's wins), stamped with the newer version."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cloud_sync.hq.config_push import config_layers
from cloud_sync.hq.ingest.event_store import open_event_store

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def test_compose_merges_the_newest_fleet_and_store_layers(tmp_path: Path) -> None:
    store = open_event_store(str(tmp_path / "events.db"))
    try:
        assert store.run(lambda tx: config_layers.compose(tx, "s1", now=NOW)) is None
        fleet = {"redemption": {"till_failure_limit": 3, "hold_seconds": 60}}
        own = {"redemption": {"hold_seconds": 120}}
        assert store.run(lambda tx: config_layers.record(tx, store_id=None, overlay=fleet,
                                                         now=NOW)) == 1  # fmt: skip
        assert store.run(lambda tx: config_layers.record(tx, store_id="s1", overlay=own,
                                                         now=NOW)) == 2  # fmt: skip
        s1 = store.run(lambda tx: config_layers.compose(tx, "s1", now=NOW))
        s2 = store.run(lambda tx: config_layers.compose(tx, "s2", now=NOW))
        assert s1 is not None and s2 is not None
        assert (s1.version, s1.fleet_version, s1.store_version) == (2, 1, 2)
        assert s1.overlay == {"redemption": {"till_failure_limit": 3, "hold_seconds": 120}}
        assert (s2.version, s2.fleet_version, s2.store_version) == (1, 1, None)
        assert s2.overlay == fleet
        newer = {"redemption": {"till_failure_limit": 4}}
        assert store.run(lambda tx: config_layers.record(tx, store_id=None, overlay=newer,
                                                         now=NOW)) == 3  # fmt: skip
        s1 = store.run(lambda tx: config_layers.compose(tx, "s1", now=NOW))
        assert s1 is not None and s1.version == 3  # the fleet moved: every store's is newer
        assert s1.overlay == {"redemption": {"till_failure_limit": 4, "hold_seconds": 120}}
    finally:
        store.close()
