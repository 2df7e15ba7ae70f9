"""Presence identities through HQ's journal and fan-out, on both event store backends: every
enrolment becomes each known store's ``member.identities`` (the member's whole set, HQ-signed);
a withdrawn consent becomes ``member.changed`` and the empty set in the next delta; a member
without consent is only ever sent the empty set, and snapshots carry consenting members only."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cloud_sync.contract.delta import Change, Op
from cloud_sync.contract.member_identities import EMPTY, IdentitySet, decode_body
from cloud_sync.hq import change_journal, identity_store
from cloud_sync.hq.central_store import CentralStore, MemberRow
from cloud_sync.hq.change_journal import Kind
from cloud_sync.hq.fanout import delta_log, producer
from cloud_sync.hq.fanout.central_journal import CentralJournal
from cloud_sync.hq.fanout.delta_log import Published
from cloud_sync.hq.identity_enrolment import enrol_card, enrol_tag, new_key
from cloud_sync.hq.ingest.event_store import EventStore
from cloud_sync.hq.snapshot import write_snapshot
from tests.hq.conftest import NOW
from tests.hq.fanout.test_fanout_step import HQ_KEY, opened

S1, S2 = "store-001", "store-002"


def step(store: EventStore, central: CentralStore) -> list[Published]:
    journal = CentralJournal(central.path)
    return store.run(lambda tx: producer.step(tx, journal=journal, key=HQ_KEY, now=NOW))


def identity_changes(made: list[Published]) -> dict[str, list[Change]]:
    """Each store's member.identities changes, in order."""
    out: dict[str, list[Change]] = {}
    for p in made:
        for c in opened(p).changes:
            if c.op is Op.MEMBER_IDENTITIES:
                out.setdefault(p.store_id, []).append(c)
    return out


def test_enrolments_reach_every_store_and_a_withdrawal_empties_the_set_next_delta(
    central: CentralStore, store: EventStore
) -> None:
    for s in (S1, S2):
        store.run(lambda tx, s=s: delta_log.start(tx, s, now=NOW))
    step(store, central)  # the campaign the fixture made
    central.upsert_members([MemberRow(member_id="ann", proximity_consent=True)], now=NOW)
    key = new_key(central, "ann", now=NOW)
    enrol_tag(central, "ann", "eddystone_uid", "ab" * 16, now=NOW)
    enrol_card(central, "ann", "04a1b2c3", now=NOW)
    made = step(store, central)
    by_store = identity_changes(made)
    assert sorted(by_store) == [S1, S2]
    salt = identity_store.card_salt(central.conn)
    assert salt is not None
    for changes in by_store.values():
        assert len(changes) == 4  # consent given, then each enrolment: the whole set each time
        last = changes[-1]
        assert (last["member_id"], last["card_salt"]) == ("ann", salt.hex())
        got = decode_body(last["body"])
        assert [(k.key_id, k.key) for k in got.keys] == [(key.key_id, key.key)]
        assert [(t.kind, t.value) for t in got.tags] == [
            ("eddystone_uid", bytes.fromhex("ab" * 16))
        ]
        assert len(got.cards) == 1
    assert step(store, central) == []

    central.upsert_members([MemberRow(member_id="ann", proximity_consent=False)], now=NOW)
    made = step(store, central)
    for p in made:
        ops = [(c.op, c["member_id"]) for c in opened(p).changes]
        assert ops == [(Op.MEMBER_CHANGED, "ann"), (Op.MEMBER_IDENTITIES, "ann")]
        assert decode_body(opened(p).changes[1]["body"]) == EMPTY
        assert key.key.hex() not in p.document.decode()
    assert sorted(p.store_id for p in made) == [S1, S2]


def test_a_member_without_consent_is_sent_the_empty_set_whatever_hq_holds(
    central: CentralStore, store: EventStore
) -> None:
    store.run(lambda tx: delta_log.start(tx, S1, now=NOW))
    step(store, central)
    central.upsert_members([MemberRow(member_id="bob", proximity_consent=False)], now=NOW)
    with central.write() as conn:  # a row left behind by hand, bypassing the commands
        conn.execute(
            "INSERT INTO identity_keys VALUES ('bob', ?, ?, 0, NULL)", ("1" * 16, b"K" * 16)
        )
        change_journal.record(conn, Kind.IDENTITIES, ["bob"], at=0)
    (p,) = step(store, central)
    bob_changed, change = opened(p).changes
    assert (bob_changed.op, change.op) == (Op.MEMBER_CHANGED, Op.MEMBER_IDENTITIES)
    assert decode_body(change["body"]) == EMPTY
    assert (b"K" * 16).hex() not in p.document.decode()


def test_a_snapshot_carries_consenting_members_sets_and_the_salt(
    central: CentralStore, tmp_path: Path
) -> None:
    central.upsert_members(
        [
            MemberRow(member_id="ann", proximity_consent=True),
            MemberRow(member_id="cy", proximity_consent=True),  # nothing enrolled: no row
            MemberRow(member_id="bob", proximity_consent=False),
        ],
        now=NOW,
    )
    key = new_key(central, "ann", now=NOW)
    with central.write() as conn:
        conn.execute(
            "INSERT INTO identity_keys VALUES ('bob', ?, ?, 0, NULL)", ("2" * 16, b"B" * 16)
        )
    path = tmp_path / "s1.snapshot.db"
    write_snapshot(central, path, S1, now=NOW)
    snap = sqlite3.connect(path)
    rows = snap.execute("SELECT member_id, body FROM member_identities").fetchall()
    meta = dict(snap.execute("SELECT key, value FROM snapshot_meta").fetchall())
    snap.close()
    assert [m for m, _ in rows] == ["ann"]
    got: IdentitySet = decode_body(rows[0][1])
    assert [k.key for k in got.keys] == [key.key]
    assert meta["card_salt"] == (identity_store.card_salt(central.conn) or b"").hex()
    assert (b"B" * 16) not in path.read_bytes()
