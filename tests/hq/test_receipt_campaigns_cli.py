"""``storeside-hq receipt-campaigns create``: what a store needs to issue receipt coupons (issue 6).

Before it, only the demo could create the receipt campaigns. Run as a real process on a real
file; the snapshot it leads to must hold every campaign the default ``[receipt_offers]`` names.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from config.model import AgentConfig
from config.presence import PresenceConfig
from edge_agent.domain.offer_policy import DEFAULT_CAMPAIGN_IDS
from edge_agent.presence.proximity_rules import DEFAULT_CAMPAIGN_IDS as PROXIMITY_IDS
from tests.hq.conftest import run_hq


def test_receipt_campaigns_reach_the_store_snapshot(tmp_path: Path) -> None:
    db = str(tmp_path / "hq.db")
    assert run_hq("--db", db, "init").returncode == 0
    done = run_hq(
        "--db", db, "receipt-campaigns", "create", "--days", "60", "--nudge-category", "bakery"
    )
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert all(cid in done.stdout for cid in DEFAULT_CAMPAIGN_IDS.values())
    listing = run_hq("--db", db, "campaign", "list").stdout
    assert sorted(line.split("\t")[0] for line in listing.splitlines()) == sorted(
        DEFAULT_CAMPAIGN_IDS.values()
    )
    assert run_hq("--db", db, "snapshot", "--store", "S1", str(tmp_path / "s1.db")).returncode == 0
    with sqlite3.connect(tmp_path / "s1.db") as snap:
        shipped = {str(c) for (c,) in snap.execute("SELECT campaign_id FROM campaigns")}
    policy = AgentConfig().receipt_offers.to_policy()
    rules = [*policy.rules, *([policy.anonymous] if policy.anonymous else [])]
    assert rules
    assert {rule.campaign_id for rule in rules} <= shipped


def test_receipt_campaigns_are_created_once_unless_replaced(tmp_path: Path) -> None:
    db = str(tmp_path / "hq.db")
    assert run_hq("--db", db, "init").returncode == 0
    assert run_hq("--db", db, "receipt-campaigns", "create").returncode == 0
    again = run_hq("--db", db, "receipt-campaigns", "create")
    assert again.returncode == 2
    assert again.stderr.count("\n") == 1 and "--replace" in again.stderr
    assert run_hq("--db", db, "receipt-campaigns", "create", "--replace").returncode == 0
    bad = run_hq("--db", db, "receipt-campaigns", "create", "--starts-at", "soon", "--replace")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_proximity_campaigns_reach_the_store_snapshot_for_every_default_rule(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "hq.db")
    assert run_hq("--db", db, "init").returncode == 0
    done = run_hq("--db", db, "proximity-campaigns", "create", "--days", "30")
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    again = run_hq("--db", db, "proximity-campaigns", "create")
    assert again.returncode == 2 and "--replace" in again.stderr
    assert run_hq("--db", db, "snapshot", "--store", "S1", str(tmp_path / "s1.db")).returncode == 0
    with sqlite3.connect(tmp_path / "s1.db") as snap:
        shipped = {str(c) for (c,) in snap.execute("SELECT campaign_id FROM campaigns")}
    presence = PresenceConfig.model_validate(
        {
            "enabled": True,
            "zones": [{"id": "coffee", "sources": ["box"]}],
            "rules": [{"id": "coffee", "zone": "coffee"}],
        }
    )
    assert presence.to_policy().campaign_ids() <= shipped
    assert set(PROXIMITY_IDS.values()) <= shipped
