"""HQ database: file handling, migrations, the namespace registry, campaigns and single codes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from cloud_sync.hq.central_store import CentralStore, MemberRow
from cloud_sync.hq.errors import (
    CampaignExistsError,
    CodeExistsError,
    InputError,
    NamespaceExhaustedError,
    StoreFileError,
    UnknownCampaignError,
    UnknownCodeError,
    UnknownMemberError,
)
from cloud_sync.hq.hq_schema import SCHEMA_VERSION
from cloud_sync.hq.minting import mint_anonymous, mint_for_members
from edge_agent.domain.code_format import CodeFormat, namespace_string, new_code, parse
from edge_agent.domain.code_record import CodeStatus
from tests.hq.conftest import FMT, NOW, campaign


def test_format_is_fixed_at_creation_and_read_back(tmp_path: Path) -> None:
    fmt = CodeFormat(prefix="FNDL", namespace_length=3, random_length=7)
    CentralStore.create(tmp_path / "a.db", fmt=fmt).close()
    with CentralStore.open(tmp_path / "a.db") as central:
        assert central.fmt == fmt
    with pytest.raises(StoreFileError, match="already exists"):
        CentralStore.create(tmp_path / "a.db", fmt=fmt)


def test_missing_foreign_and_newer_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreFileError, match="no HQ database"):
        CentralStore.open(tmp_path / "missing.db")
    (tmp_path / "text.db").write_text("hello")
    with pytest.raises(StoreFileError, match="not an HQ database"):
        CentralStore.open(tmp_path / "text.db")
    foreign = sqlite3.connect(tmp_path / "foreign.db")
    foreign.execute("CREATE TABLE codes (code TEXT)")
    foreign.commit()
    foreign.close()
    with pytest.raises(StoreFileError, match="not an HQ database"):
        CentralStore.open(tmp_path / "foreign.db")
    tables = sqlite3.connect(tmp_path / "foreign.db").execute("SELECT name FROM sqlite_master")
    assert [t for (t,) in tables] == ["codes"]  # left exactly as it was
    CentralStore.create(tmp_path / "new.db", fmt=FMT).close()
    newer = sqlite3.connect(tmp_path / "new.db")
    newer.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    newer.close()
    with pytest.raises(StoreFileError, match="schema version"):
        CentralStore.open(tmp_path / "new.db")


def test_namespaces_are_assigned_once_per_minter_and_never_shared(central: CentralStore) -> None:
    hq = central.hq_namespace()
    assert central.hq_namespace() == hq
    store = central.assign_namespace("store-042")
    assert central.assign_namespace("store-042") == store
    assert central.assign_namespace(" store-042 ") == store
    other = central.assign_namespace("store-043")
    assert len({hq, store, other}) == 3
    assert [n.namespace for n in central.namespaces()] == [
        namespace_string(i, FMT) for i in range(3)
    ]
    with pytest.raises(InputError):
        central.assign_namespace("  ")
    with pytest.raises(InputError, match="reserved"):
        central.assign_namespace("hq")


def test_namespace_registry_runs_out_loudly(tmp_path: Path) -> None:
    fmt = CodeFormat(prefix="SS", namespace_length=1, random_length=6)
    with CentralStore.create(tmp_path / "one.db", fmt=fmt) as central:
        for i in range(31):
            central.assign_namespace(f"store-{i}")
        with pytest.raises(NamespaceExhaustedError):
            central.assign_namespace("store-31")


def test_hq_and_store_codes_never_collide(central: CentralStore) -> None:
    """Disjoint namespaces: a store minting offline cannot produce an HQ code."""
    store_ns = central.assign_namespace("store-042")
    mint_anonymous(central, campaign_id="SPRING", count=20_000, now=NOW)
    hq_codes = {c for (c,) in central.conn.execute("SELECT code FROM codes")}
    store_codes = {new_code(FMT, store_ns) for _ in range(20_000)}
    assert not hq_codes & store_codes
    hq_namespaces = {n.namespace for n in central.namespaces("hq")}
    assert store_ns not in hq_namespaces
    assert {c[2:4] for c in hq_codes} <= hq_namespaces
    assert {c[2:4] for c in store_codes} == {store_ns}


def test_campaigns_are_created_once_unless_replaced(central: CentralStore) -> None:
    with pytest.raises(CampaignExistsError):
        central.create_campaign(campaign(), now=NOW)
    central.create_campaign(campaign(name="Spring, renamed"), now=NOW, replace=True)
    assert central.campaign("SPRING").name == "Spring, renamed"
    assert [p.campaign_id for p in central.campaigns()] == ["SPRING"]
    with pytest.raises(UnknownCampaignError):
        central.campaign("AUTUMN")
    with pytest.raises(UnknownCampaignError):
        central.set_store_allocation("AUTUMN", "S1", 10)
    central.set_store_allocation("SPRING", "S1", 10)
    assert central.store_allocation("SPRING", "S1") == 10
    assert central.store_allocation("SPRING", "S2") is None


def test_generic_codes_are_literal_unique_and_outside_the_minted_space(
    central: CentralStore,
) -> None:
    assert central.create_generic("SPRING", "holiman-100", now=NOW) == "HOLIMAN100"
    record = central.code("HOLIMAN100")
    assert record is not None
    assert (record.member_id, record.channel, record.status) == (None, "influencer", "active")
    with pytest.raises(CodeExistsError, match="already exists"):
        central.create_generic("SPRING", "HOLIMAN 100", now=NOW)
    minted_shape = new_code(FMT, "ZZ")
    assert isinstance(parse(minted_shape, FMT), str)
    with pytest.raises(CodeExistsError, match="shape of a minted code"):
        central.create_generic("SPRING", minted_shape, now=NOW)
    with pytest.raises(CodeExistsError, match="letters and digits"):
        central.create_generic("SPRING", "50%OFF", now=NOW)
    with pytest.raises(UnknownCampaignError):
        central.create_generic("AUTUMN", "AUTUMN10", now=NOW)


def test_revoke_and_link(central: CentralStore) -> None:
    central.create_generic("SPRING", "PAPER1", now=NOW, channel="paper")
    mint_for_members(central, campaign_id="SPRING", members=[MemberRow(member_id="M1")], now=NOW)
    central.upsert_members([MemberRow(member_id="M2")])
    (bound,) = [c for (c,) in central.conn.execute("SELECT code FROM codes WHERE member_id='M1'")]
    assert central.revoke("paper-1") == "PAPER1"
    assert central.revoke("PAPER1") == "PAPER1"  # idempotent
    record = central.code("PAPER1")
    assert record is not None
    assert record.status is CodeStatus.REVOKED
    with pytest.raises(UnknownCodeError):
        central.revoke("NOPE")
    assert central.link("PAPER1", "M2") == "PAPER1"
    linked = central.code("PAPER1")
    assert linked is not None
    assert linked.linked_member_id == "M2"
    with pytest.raises(UnknownMemberError):
        central.link("PAPER1", "M9")
    with pytest.raises(InputError, match="another member"):
        central.link(bound, "M2")
    assert central.link(bound, "M1") == bound


def test_member_upsert_keeps_values_a_row_leaves_blank(central: CentralStore) -> None:
    central.upsert_members([MemberRow(member_id="M1", segment="champion", tier="gold")])
    central.upsert_members([MemberRow(member_id="M1", proximity_consent=True)])
    member = central.member("M1")
    assert member is not None
    assert (member.segment, member.tier, member.proximity_consent) == ("champion", "gold", True)
    central.upsert_members([MemberRow(member_id="M2")])
    fresh = central.member("M2")
    assert fresh is not None
    assert (fresh.segment, fresh.tier, fresh.proximity_consent) == ("loyal", "standard", False)
