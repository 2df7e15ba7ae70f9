"""CSV: member lists, brand code import with duplicates and rejects, export round trip."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest

from cloud_sync.hq.central_store import CentralStore, MemberRow, from_epoch
from cloud_sync.hq.code_io import EXPORT_COLUMNS, export_codes, import_codes, read_members
from cloud_sync.hq.errors import CampaignEndedError, InputError
from cloud_sync.hq.minting import Issue, mint_anonymous, mint_for_members
from edge_agent.domain.code_format import new_code
from tests.hq.conftest import FMT, NOW


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_member_list_columns_and_values(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "m.csv",
        "member_id,segment,tier,proximity_consent,variant\n"
        "M1,at_risk,gold,yes,B\n M2 ,,,,\n\nM3,,,0,\n",
    )
    assert read_members(path) == [
        MemberRow(
            member_id="M1", segment="at_risk", tier="gold", proximity_consent=True, variant="B"
        ),
        MemberRow(member_id="M2"),
        MemberRow(member_id="M3", proximity_consent=False),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,segment\nM1,loyal\n", "needs a header row with a 'member_id' column"),
        ("member_id,segmnet\nM1,loyal\n", r"unknown columns \['segmnet'\]"),
        ("member_id,proximity_consent\nM1,maybe\n", r"m.csv:2: proximity_consent"),
        ("member_id,segment\n,loyal\n", "m.csv:2: member_id is empty"),
        ("member_id\n", "no members listed"),
        ("member_id\nM1,extra\n", "more cells than columns"),
        ("", "needs a header row"),
    ],
)
def test_bad_member_lists_are_refused_with_the_line(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        read_members(_write(tmp_path / "m.csv", text))


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="No such file"):
        read_members(tmp_path / "absent.csv")


def test_import_stores_good_rows_and_reports_the_rest(
    central: CentralStore, tmp_path: Path
) -> None:
    central.upsert_members([MemberRow(member_id="M1")])
    central.create_generic("SPRING", "TAKEN1", now=NOW)
    minted_shape = new_code(FMT, "ZZ")
    path = _write(
        tmp_path / "brand.csv",
        "code,member_id,channel,expires_at\n"
        "zn34c,,,\n"  # 2 ok
        "ZN-34C,,,\n"  # 3 duplicate in file
        "taken1,,,\n"  # 4 duplicate of a stored code
        "WIN 2 GO,M1,email,2025-03-20T00:00:00+00:00\n"  # 5 ok, bound, own expiry
        "50%OFF,,,\n"  # 6 reject: characters
        f"{minted_shape},,,\n"  # 7 reject: minted shape
        "ABCDEF,M9,,\n"  # 8 reject: unknown member
        "XYZ123,,,tomorrow\n"  # 9 reject: bad time
        "QQ,,,\n",  # 10 reject: too short
    )
    report = import_codes(central, campaign_id="SPRING", path=path, now=NOW)
    assert report.imported == 2
    assert [(r.line, r.code) for r in report.duplicates] == [(3, "ZN34C"), (4, "TAKEN1")]
    assert "line 2" in report.duplicates[0].reason
    assert "campaign SPRING" in report.duplicates[1].reason
    assert [r.line for r in report.rejects] == [6, 7, 8, 9, 10]
    stored = central.code("WIN2GO")
    assert stored is not None
    assert (stored.member_id, stored.channel, stored.variant) == ("M1", "email", "A")
    assert stored.expires_at == from_epoch(1742428800)
    plain = central.code("ZN34C")
    assert plain is not None
    assert (plain.channel, plain.expires_at) == ("paper", None)


def test_import_refuses_a_file_without_code_column_or_for_an_ended_campaign(
    central: CentralStore, tmp_path: Path
) -> None:
    with pytest.raises(InputError, match="'code' column"):
        import_codes(
            central,
            campaign_id="SPRING",
            path=_write(tmp_path / "a.csv", "coupon\nX1Y2\n"),
            now=NOW,
        )
    with pytest.raises(CampaignEndedError):
        import_codes(
            central,
            campaign_id="SPRING",
            path=_write(tmp_path / "b.csv", "code\nX1Y2\n"),
            now=NOW + timedelta(days=60),
        )
    assert central.count_codes() == 0


def test_export_round_trip(central: CentralStore) -> None:
    mint_for_members(
        central,
        campaign_id="SPRING",
        members=[MemberRow(member_id=f"M{i}") for i in range(50)],
        now=NOW,
        issue=Issue(channel="email", valid_for=timedelta(days=21)),
    )
    mint_anonymous(central, campaign_id="SPRING", count=50, now=NOW)
    central.create_generic("SPRING", "HOLIMAN100", now=NOW)
    central.revoke("HOLIMAN100")
    out = io.StringIO()
    assert export_codes(central, campaign_id="SPRING", out=out) == 101
    out.seek(0)
    reader = csv.DictReader(out)
    assert tuple(reader.fieldnames or ()) == EXPORT_COLUMNS
    exported = list(reader)
    assert [r["code"] for r in exported] == sorted(r["code"] for r in exported)
    campaign_end = central.campaign("SPRING").ends_at
    for row in exported:
        record = central.code(row["code"])
        assert record is not None
        assert row["member_id"] == (record.member_id or "")
        assert row["campaign"] == record.campaign_id == "SPRING"
        assert (row["channel"], row["variant"], row["status"]) == (
            record.channel,
            record.variant,
            record.status.value,
        )
        assert row["issued_at"] == NOW.isoformat()
        assert row["expires_at"] == (record.expires_at or campaign_end).isoformat()
    assert sum(r["member_id"] != "" for r in exported) == 50
    assert sum(r["expires_at"] == (NOW + timedelta(days=21)).isoformat() for r in exported) == 50
