"""Bulk minting: counts, metadata, top-up of duplicates and collisions, atomicity, members."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cloud_sync.hq.central_store import CentralStore, MemberRow, to_epoch
from cloud_sync.hq.errors import CampaignEndedError, InputError, UnknownCampaignError
from cloud_sync.hq.minting import MAX_NAMESPACE_FILL, Issue, mint_anonymous, mint_for_members
from edge_agent.domain.code_format import BASE, parse
from tests.hq.conftest import NOW, SMALL, campaign


def _codes(central: CentralStore) -> list[tuple[str, ...]]:
    return central.conn.execute(
        "SELECT code, campaign_id, member_id, status, channel, variant, issued_at, expires_at, "
        "linked_member_id FROM codes ORDER BY code"
    ).fetchall()


def test_anonymous_codes_parse_and_carry_their_metadata(central: CentralStore) -> None:
    issue = Issue(channel="sms", variant="B", valid_for=timedelta(days=14))
    report = mint_anonymous(central, campaign_id="SPRING", count=5_000, now=NOW, issue=issue)
    rows = _codes(central)
    assert report.created == len(rows) == 5_000
    (hq,) = report.namespaces
    assert central.namespaces("hq")[0].issued == 5_000
    expires = to_epoch(NOW + timedelta(days=14))
    for code, *meta in rows:
        assert parse(code, central.fmt) == code
        assert code.startswith("SS" + hq)
        assert meta == ["SPRING", None, "active", "sms", "B", to_epoch(NOW), expires, None]


def test_expiry_never_outlives_the_campaign(central: CentralStore) -> None:
    issue = Issue(valid_for=timedelta(days=365))
    mint_anonymous(central, campaign_id="SPRING", count=10, now=NOW, issue=issue)
    ends = to_epoch(central.campaign("SPRING").ends_at)
    assert {row[7] for row in _codes(central)} == {ends}
    mint_anonymous(central, campaign_id="SPRING", count=10, now=NOW)
    assert sum(row[7] is None for row in _codes(central)) == 10  # campaign end applies


def test_duplicate_draws_are_topped_up(small: CentralStore) -> None:
    # 10,000 draws from 923,521 values: ~54 duplicates expected, P(none) ~ e^-54.
    report = mint_anonymous(small, campaign_id="SPRING", count=10_000, now=NOW)
    assert report.duplicates_redrawn > 0
    assert report.created == small.count_codes() == 10_000


def test_collisions_with_existing_codes_are_redrawn(small: CentralStore) -> None:
    first = mint_anonymous(small, campaign_id="SPRING", count=10_000, now=NOW)
    second = mint_anonymous(small, campaign_id="SPRING", count=10_000, now=NOW)
    assert first.namespaces == second.namespaces  # same namespace: it has room
    assert second.collisions_redrawn > 0  # ~108 expected; without redraw the PK would refuse
    assert small.count_codes() == 20_000
    assert all(parse(c, SMALL) == c for (c, *_) in _codes(small))


def test_a_dense_namespace_is_left_for_a_fresh_one(small: CentralStore) -> None:
    capacity = int(BASE**SMALL.random_length * MAX_NAMESPACE_FILL)
    report = mint_anonymous(small, campaign_id="SPRING", count=capacity + 100, now=NOW)
    assert len(report.namespaces) == 2
    issued = [n.issued for n in small.namespaces("hq")]
    assert issued == [capacity, 100]
    assert small.count_codes() == capacity + 100


def test_a_failed_mint_leaves_nothing(central: CentralStore) -> None:
    def fail_after_first_chunk(done: int) -> None:
        raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        mint_anonymous(
            central,
            campaign_id="SPRING",
            count=1_000,
            now=NOW,
            progress=fail_after_first_chunk,
            chunk=100,
        )
    assert central.count_codes() == 0
    assert [n.issued for n in central.namespaces()] == []  # even the namespace rolled back
    assert central.conn.execute("SELECT count(*) FROM issue_runs").fetchone()[0] == 0


def test_refusals(central: CentralStore) -> None:
    with pytest.raises(UnknownCampaignError):
        mint_anonymous(central, campaign_id="AUTUMN", count=1, now=NOW)
    with pytest.raises(InputError):
        mint_anonymous(central, campaign_id="SPRING", count=0, now=NOW)
    with pytest.raises(CampaignEndedError):
        mint_anonymous(central, campaign_id="SPRING", count=1, now=NOW + timedelta(days=31))
    with pytest.raises(InputError):
        mint_for_members(central, campaign_id="SPRING", members=[], now=NOW)


def test_one_code_per_member_and_reruns_skip_holders(central: CentralStore) -> None:
    rows = [
        MemberRow(member_id=f"M{i}", segment="loyal", variant="B" if i % 2 else None)
        for i in range(1_000)
    ]
    report = mint_for_members(
        central, campaign_id="SPRING", members=[*rows, rows[0]], now=NOW, chunk=300
    )
    assert (report.created, report.repeated_rows) == (1_000, 1)
    bound = {r[2]: r for r in _codes(central)}
    assert set(bound) == {r.member_id for r in rows}
    assert bound["M1"][5] == "B"
    assert bound["M2"][5] == "A"
    again = mint_for_members(
        central, campaign_id="SPRING", members=[*rows[:10], MemberRow(member_id="NEW")], now=NOW
    )
    assert (again.created, again.already_held) == (1, 10)
    assert central.count_codes() == 1_001


def test_codes_are_not_handed_out_in_member_list_order(central: CentralStore) -> None:
    rows = [MemberRow(member_id=f"M{i:05d}") for i in range(2_000)]
    mint_for_members(central, campaign_id="SPRING", members=rows, now=NOW)
    by_member = [m for (m,) in central.conn.execute("SELECT member_id FROM codes ORDER BY code")]
    # Sorted codes going to sorted members would leak neighbours' codes; a random pairing
    # leaves about 1 in 2,000 members in place.
    in_place = sum(a == b.member_id for a, b in zip(by_member, rows, strict=True))
    assert in_place < 20


def test_only_eligible_segments_get_codes(central: CentralStore) -> None:
    central.create_campaign(campaign("WINBACK", eligible_segments=["hibernating"]), now=NOW)
    central.upsert_members([MemberRow(member_id="OLD", segment="hibernating")])
    rows = [
        MemberRow(member_id="OLD"),  # segment already known at HQ
        MemberRow(member_id="NEW", segment="hibernating"),
        MemberRow(member_id="FAN", segment="champion"),
    ]
    report = mint_for_members(central, campaign_id="WINBACK", members=rows, now=NOW)
    assert (report.created, report.not_eligible) == (2, 1)
    holders = {m for (m,) in central.conn.execute("SELECT member_id FROM codes")}
    assert holders == {"OLD", "NEW"}
