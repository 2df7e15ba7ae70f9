"""Store snapshots: the agreed format, filtering per store, code order, and the store's loader."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from cloud_sync.contract.snapshot_format import CODE_COLUMNS
from cloud_sync.hq import identity_store
from cloud_sync.hq.central_store import CentralStore, MemberRow
from cloud_sync.hq.errors import InputError
from cloud_sync.hq.minting import mint_anonymous, mint_for_members
from cloud_sync.hq.snapshot import write_snapshot
from edge_agent.cache import schema, snapshot_load
from edge_agent.cache.code_cache import CodeCache
from tests.hq.conftest import NOW, campaign


def _fill(central: CentralStore) -> None:
    """SPRING (all stores), S1ONLY (S1, allocation 40), S2ONLY, and an ended campaign."""
    central.create_campaign(campaign("S1ONLY", allowed_stores=["S1", "S3"]), now=NOW)
    central.create_campaign(campaign("S2ONLY", allowed_stores=["S2"]), now=NOW)
    central.create_campaign(
        campaign(
            "OLD",
            starts_at=(NOW - timedelta(days=60)).isoformat(),
            ends_at=(NOW + timedelta(days=1)).isoformat(),
        ),
        now=NOW,
    )
    central.set_store_allocation("S1ONLY", "S1", 40)
    for campaign_id in ("SPRING", "S1ONLY", "S2ONLY", "OLD"):
        mint_anonymous(central, campaign_id=campaign_id, count=300, now=NOW)
    mint_for_members(
        central,
        campaign_id="SPRING",
        members=[MemberRow(member_id="M1", segment="at_risk", proximity_consent=True)],
        now=NOW,
    )
    central.create_generic("SPRING", "HOLIMAN100", now=NOW)
    central.revoke("HOLIMAN100")


def test_snapshot_has_the_agreed_tables_and_only_this_stores_campaigns(
    central: CentralStore, tmp_path: Path
) -> None:
    _fill(central)
    later = NOW + timedelta(days=2)  # OLD has ended by then
    path = tmp_path / "s1.db"
    summary = write_snapshot(central, path, "S1", now=later)
    assert (summary.campaigns, summary.members, summary.codes) == (2, 1, 602)
    snap = sqlite3.connect(path)
    columns = {
        table: tuple(r[1] for r in snap.execute(f"PRAGMA table_info({table})"))
        for table in ("snapshot_meta", "campaigns", "members", "codes")
    }
    assert columns == {
        "snapshot_meta": ("key", "value"),
        "campaigns": ("campaign_id", "body"),
        "members": ("member_id", "segment", "tier", "proximity_consent"),
        "codes": CODE_COLUMNS,
    }
    assert dict(snap.execute("SELECT key, value FROM snapshot_meta")) == {
        "format_version": "2",
        "created_at": later.isoformat(),
        "store_id": "S1",
        "namespace": "",  # S1 has none assigned: it may not mint
        "card_salt": (identity_store.card_salt(central.conn) or b"").hex(),  # made at create
    }
    bodies = {c: json.loads(b) for c, b in snap.execute("SELECT campaign_id, body FROM campaigns")}
    assert set(bodies) == {"SPRING", "S1ONLY"}
    assert bodies["S1ONLY"]["store_allocation"] == 40
    assert bodies["SPRING"]["store_allocation"] is None
    assert snap.execute("SELECT * FROM members").fetchall() == [("M1", "at_risk", "standard", 1)]
    codes = snap.execute("SELECT * FROM codes").fetchall()  # stored order
    assert [c[0] for c in codes] == sorted(c[0] for c in codes)
    hq = {r[0]: r for r in central.conn.execute(f"SELECT {', '.join(CODE_COLUMNS)} FROM codes")}
    assert all(hq[c[0]] == c for c in codes)
    assert ("HOLIMAN100", "revoked") in {(c[0], c[3]) for c in codes}
    without_rowid = snap.execute("SELECT sql FROM sqlite_master WHERE name = 'codes'").fetchone()
    assert "WITHOUT ROWID" in without_rowid[0]
    assert not list(tmp_path.glob(".*.tmp"))


def test_other_stores_and_the_fleet_snapshot(central: CentralStore, tmp_path: Path) -> None:
    _fill(central)
    s3 = write_snapshot(central, tmp_path / "s3.db", "S3", now=NOW)
    assert (s3.campaigns, s3.codes) == (3, 902)  # SPRING, S1ONLY (no allocation), OLD
    body = (
        sqlite3.connect(tmp_path / "s3.db")
        .execute("SELECT body FROM campaigns WHERE campaign_id = 'S1ONLY'")
        .fetchone()[0]
    )
    assert json.loads(body)["store_allocation"] is None
    fleet = write_snapshot(central, tmp_path / "all.db", "*", now=NOW)
    assert (fleet.campaigns, fleet.codes) == (4, 1202)
    assert write_snapshot(central, tmp_path / "all.db", "S9", now=NOW).codes == 602  # replaced


def test_the_store_loader_accepts_the_snapshot(central: CentralStore, tmp_path: Path) -> None:
    _fill(central)
    path = tmp_path / "s1.db"
    write_snapshot(central, path, "S1", now=NOW)
    db = schema.connect(tmp_path / "cache.db", cache_kib=8_192, busy_timeout_ms=1_000)
    schema.migrate(db)
    info = snapshot_load.load_snapshot(db.conn, path, store_id="S1")
    assert (info.campaigns, info.members, info.codes) == (3, 1, 902)
    assert db.conn.execute("SELECT count(*) FROM codes").fetchone()[0] == 902


def test_the_hq_database_is_never_overwritten(central: CentralStore) -> None:
    with pytest.raises(InputError, match="HQ database itself"):
        write_snapshot(central, central.path, "S1", now=NOW)
    assert central.count_codes() == 0
    assert central.campaign("SPRING").campaign_id == "SPRING"


def test_the_snapshot_carries_the_namespace_the_registry_assigned(
    central: CentralStore, tmp_path: Path
) -> None:
    _fill(central)
    hq = central.hq_namespace(now=NOW)
    mine = central.assign_namespace("S1", now=NOW)
    assert mine != hq
    s1 = write_snapshot(central, tmp_path / "s1.db", "S1", now=NOW)
    assert s1.namespace == mine
    meta = dict(sqlite3.connect(tmp_path / "s1.db").execute("SELECT * FROM snapshot_meta"))
    assert meta["namespace"] == mine
    fleet = write_snapshot(central, tmp_path / "all.db", "*", now=NOW)
    assert fleet.namespace is None  # a snapshot for every store gives none of them a namespace
    # And the box records it when loading, and mints only there.
    cache = CodeCache.open(tmp_path / "box.db", store_id="S1")
    info = cache.load_snapshot(tmp_path / "s1.db")
    assert (info.format_version, info.namespace) == ("2", mine)
    assert cache.minting_namespace() == mine
    cache.load_snapshot(tmp_path / "all.db")
    assert cache.minting_namespace() is None
    cache.close()
