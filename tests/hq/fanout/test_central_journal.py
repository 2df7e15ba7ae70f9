"""The central store's change journal: every HQ write that changes what stores hold is
journalled in its own transaction, and the fan-out reads it back as the delta contract's
changes, to the right stores, from the state HQ holds now. The last tests run the whole road:
an HQ write, the fan-out's step on both event store backends, the box applying the delta."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_sync.contract import delta as deltas
from cloud_sync.contract.delta import Op
from cloud_sync.contract.hq_document import Kind as DocKind
from cloud_sync.hq import store_keys
from cloud_sync.hq.central_store import CentralStore, MemberRow
from cloud_sync.hq.errors import UnknownMemberError
from cloud_sync.hq.fanout import delta_log, producer
from cloud_sync.hq.fanout.central_journal import CentralJournal
from cloud_sync.hq.fanout.producer import JournalEntry
from cloud_sync.hq.ingest.event_store import EventStore
from cloud_sync.hq.minting import mint_anonymous
from edge_agent.domain import token_codec
from edge_agent.domain.coupon_token import raw_public_key
from edge_agent.sync.hq_trust import HqTrust
from tests.hq.conftest import NOW, campaign

HQ_KEY = Ed25519PrivateKey.generate()
TRUST = HqTrust.pinned(raw_public_key(HQ_KEY.public_key()), ())
S1, S2, S3 = "store-001", "store-002", "store-003"


def read(central: CentralStore, after: int = 0, limit: int = 10_000) -> list[JournalEntry]:
    page = CentralJournal(central.path).changes_after(after, limit=limit)
    return list(page.entries)


def ops(entries: list[JournalEntry]) -> list[tuple[str, str]]:
    return [(e.store_id, e.change.op.value) for e in entries]


def test_a_campaign_made_at_creation_is_journalled_for_every_store(
    central: CentralStore,
) -> None:
    (entry,) = read(central)
    assert (entry.store_id, entry.change.op) == ("*", Op.CAMPAIGN_CHANGED)
    assert json.loads(entry.change["body"])["campaign_id"] == "SPRING"


def test_a_revoke_sends_the_code_whole_then_its_revocation(central: CentralStore) -> None:
    code = central.create_generic("SPRING", "HOLIMAN100", now=NOW)
    start = read(central)[-1].id
    central.revoke(code, now=NOW + timedelta(hours=1))
    entries = read(central, start)
    assert ops(entries) == [("*", "code.issued"), ("*", "code.revoked")]
    issued, revoked = (e.change for e in entries)
    assert issued["code"] == code and issued["campaign_id"] == "SPRING"
    assert revoked["at"] == NOW + timedelta(hours=1)


def test_a_write_that_fails_journals_nothing(central: CentralStore) -> None:
    code = central.create_generic("SPRING", "HOLIMAN100", now=NOW)
    before = read(central)
    with pytest.raises(UnknownMemberError):
        central.link(code, "m-nobody", now=NOW)
    assert read(central) == before


def test_a_link_and_members_are_journalled_as_their_state_now(central: CentralStore) -> None:
    code = central.create_generic("SPRING", "HOLIMAN100", now=NOW)
    central.upsert_members([MemberRow(member_id="m-1", segment="lapsed", tier="gold")], now=NOW)
    start = read(central)[-1].id
    central.link(code, "m-1", now=NOW)
    central.upsert_members([MemberRow(member_id="m-1", proximity_consent=True)], now=NOW)
    entries = read(central, start)
    assert ops(entries) == [
        ("*", "code.issued"),
        ("*", "code.linked"),
        ("*", "member.changed"),
        ("*", "member.identities"),  # consent given: the set (empty yet) goes too
    ]
    assert entries[1].change["member_id"] == "m-1"
    member = entries[2].change
    assert (member["segment"], member["tier"], member["proximity_consent"]) == (
        "lapsed",
        "gold",
        True,
    )


def test_a_mint_journals_every_code_and_pages_through_them(central: CentralStore) -> None:
    start = read(central)[-1].id
    report = mint_anonymous(central, campaign_id="SPRING", count=2_500, now=NOW)
    journal = CentralJournal(central.path)
    seen: list[str] = []
    cursor = start
    while True:
        page = journal.changes_after(cursor, limit=1_000)
        if page.through == cursor:
            break
        seen += [e.change["code"] for e in page.entries]
        assert len(page.entries) <= 1_000
        cursor = page.through
    assert len(seen) == report.created == 2_500
    assert set(seen) == {
        r[0]
        for r in central.conn.execute("SELECT code FROM codes WHERE run_id = ?", (report.run_id,))
    }


def test_a_restricted_campaign_and_its_codes_go_only_to_its_stores(central: CentralStore) -> None:
    start = read(central)[-1].id
    central.create_campaign(campaign("LOCAL", allowed_stores=[S1, S2]), now=NOW)
    code = central.create_generic("LOCAL", "LOCALONLY1", now=NOW)
    central.set_store_allocation("LOCAL", S3, 5, now=NOW)  # not one of its stores: nothing
    central.set_store_allocation("LOCAL", S2, 7, now=NOW)
    entries = read(central, start)
    assert ops(entries) == [
        (S1, "campaign.changed"),
        (S2, "campaign.changed"),
        (S1, "code.issued"),
        (S2, "code.issued"),
        (S2, "campaign.changed"),
    ]
    assert entries[2].change["code"] == code
    assert json.loads(entries[-1].change["body"])["store_allocation"] == 7
    page = CentralJournal(central.path).changes_after(start, limit=10)
    assert page.through == read(central)[-1].id  # the row that made nothing is passed too


def test_a_campaign_replaced_goes_plain_to_all_then_each_allocated_store_its_own(
    central: CentralStore,
) -> None:
    central.set_store_allocation("SPRING", S1, 3, now=NOW)
    start = read(central)[-1].id
    central.create_campaign(campaign(name="Spring, renamed"), now=NOW, replace=True)
    entries = read(central, start)
    assert ops(entries) == [("*", "campaign.changed"), (S1, "campaign.changed")]
    plain, own = (json.loads(e.change["body"]) for e in entries)
    assert plain["store_allocation"] is None and plain["name"] == "Spring, renamed"
    assert own["store_allocation"] == 3 and own["name"] == "Spring, renamed"


def test_store_keys_registered_and_revoked(central: CentralStore) -> None:
    start = read(central)[-1].id
    public = raw_public_key(Ed25519PrivateKey.generate().public_key())
    key = store_keys.register(central, S1, token_codec.public_key_text(public), now=NOW)
    store_keys.revoke(central, key.key_id, now=NOW + timedelta(days=1))
    entries = read(central, start)
    # Both rows are read as the key is now: registered, then revoked.
    assert ops(entries) == [("*", "store_key.registered"), ("*", "store_key.revoked")] * 2
    assert entries[0].change["public_key"] == key.public_key
    assert entries[1].change["revoked_at"] == NOW + timedelta(days=1)


def test_a_write_holding_the_lock_makes_the_read_wait_for_the_next_step(
    central: CentralStore, caplog: pytest.LogCaptureFixture
) -> None:
    central.create_generic("SPRING", "HOLIMAN100", now=NOW)
    other = sqlite3.connect(central.path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        page = CentralJournal(central.path).changes_after(0, limit=10)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert (list(page.entries), page.through) == ([], 0)
    assert "central store busy" in caplog.text
    assert read(central)  # and the next read finds everything


def test_hq_revokes_and_every_known_store_gets_the_delta(
    central: CentralStore, store: EventStore
) -> None:
    """On both event store backends: a revoke at HQ becomes each known store's next delta,
    signed by HQ, and a second step finds nothing more to send."""
    code = central.create_generic("SPRING", "HOLIMAN100", now=NOW)
    journal = CentralJournal(central.path)
    for s in (S1, S2):  # a snapshot cut for a store starts its stream: it becomes known
        store.run(lambda tx, s=s: delta_log.start(tx, s, now=NOW))
    store.run(lambda tx: producer.step(tx, journal=journal, key=HQ_KEY, now=NOW))
    central.revoke(code, now=NOW)
    made = store.run(lambda tx: producer.step(tx, journal=journal, key=HQ_KEY, now=NOW))
    assert sorted(p.store_id for p in made) == [S1, S2]
    for p in made:
        doc = TRUST.open(p.document, kind=DocKind.DELTA, now=NOW)
        delta = deltas.decode(doc.body)
        assert [c.op for c in delta.changes] == [Op.CODE_ISSUED, Op.CODE_REVOKED]
    assert store.run(lambda tx: producer.step(tx, journal=journal, key=HQ_KEY, now=NOW)) == []


def test_the_central_store_file_missing_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    page = CentralJournal(tmp_path / "absent.db").changes_after(4, limit=10)
    assert (list(page.entries), page.through) == ([], 4)
    assert "not readable" in caplog.text
