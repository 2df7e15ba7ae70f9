"""Members' presence identities on a real cache file: ``member.identities`` deltas replace a
member's set (the resolver built from ``read_identities`` then recognises the phone), a body
that does not decode refuses the delta whole, nothing is stored for a member without consent,
a withdrawn consent deletes at once, and snapshots from HQ replace the set (or, from an older
HQ, keep it, less the members whose consent is gone); every write moves the version."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from cloud_sync.contract.card_uid import uid_digest
from cloud_sync.contract.delta import Change, Delta, Op, Place
from cloud_sync.contract.member_identities import (
    EMPTY,
    IdentityKey,
    IdentitySet,
    IdentityTag,
    encode_body,
)
from cloud_sync.contract.rotating_id import counter_at, rotating_id
from cloud_sync.hq.central_store import CentralStore, MemberRow
from cloud_sync.hq.identity_enrolment import enrol_card, enrol_tag, new_key
from cloud_sync.hq.snapshot import write_snapshot
from edge_agent.cache.code_cache import CodeCache
from edge_agent.cache.member_identities import identities_version, read_identities
from edge_agent.domain.promotion import Member
from edge_agent.errors import SnapshotError
from edge_agent.follow import delta_apply
from edge_agent.follow.delta_apply import DeltaRefusedError, Refusal
from edge_agent.presence.frames.parse import TagIdentity
from edge_agent.presence.frames.refusal import FrameKind
from edge_agent.presence.rotating_id_resolver import Resolved, RotatingIdResolver, Via
from tests.cache.factories import NOW, STORE, open_cache
from tests.hq.conftest import FMT as HQ_FMT
from tests.hq.conftest import campaign

STREAM = "7" * 32
SALT = bytes(range(16))
KEY = IdentityKey(key_id="00112233445566aa", key=b"k" * 16, valid_from=NOW - timedelta(days=1))
TAG = IdentityTag(kind="ibeacon", value=bytes(range(20)))
CARD = uid_digest(b"\x04\xa1\xb2\xc3", salt=SALT)


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[CodeCache]:
    c = open_cache(tmp_path / "c.db")
    c.put_member(Member(member_id="ann", segment="loyal", proximity_consent=True))
    with c.transaction() as conn:
        delta_apply.follow(conn, stream=STREAM, watermark=0)
    yield c
    c.close()


def ids(member: str, identities: IdentitySet, *, body: str | None = None) -> Change:
    return Change(
        op=Op.MEMBER_IDENTITIES,
        fields={
            "member_id": member,
            "card_salt": SALT.hex(),
            "body": encode_body(identities) if body is None else body,
        },
    )


def consent(member: str, given: bool) -> Change:
    return Change(
        op=Op.MEMBER_CHANGED,
        fields={"member_id": member, "segment": "loyal", "tier": "standard",
                "proximity_consent": given},
    )  # fmt: skip


def apply(cache: CodeCache, *changes: Change) -> delta_apply.Applied:
    seq = delta_apply.position(cache.conn).watermark + 1
    done = Delta(store_id=STORE, stream=STREAM, seq=seq, issued_at=NOW, changes=changes)
    return delta_apply.apply(cache, done)


def test_a_set_applied_is_what_the_runtime_reads_and_the_resolver_recognises(
    cache: CodeCache,
) -> None:
    assert identities_version(cache.conn) == 0
    done = apply(cache, ids("ann", IdentitySet(keys=(KEY,), tags=(TAG,), cards=(CARD,))))
    assert (done.place, done.applied) == (Place.NEXT, 1)
    found = read_identities(cache.conn)
    assert [(k.member_id, k.key_id, k.key, k.valid_from) for k in found.keys] == [
        ("ann", KEY.key_id, KEY.key, KEY.valid_from)
    ]
    assert [(t.member_id, t.identity) for t in found.tags] == [
        ("ann", TagIdentity(FrameKind.IBEACON, TAG.value))
    ]
    assert (found.card_salt, dict(found.cards)) == (SALT, {CARD: "ann"})
    assert identities_version(cache.conn) == 1
    resolver = RotatingIdResolver(found.keys, tags=found.tags)
    seen = resolver.resolve_id(rotating_id(KEY.key, counter_at(NOW)), NOW)
    assert isinstance(seen, Resolved) and (seen.member_id, seen.via) == ("ann", Via.ROTATING_ID)
    # The whole set is replaced: a later set without the tag and card drops them.
    apply(cache, ids("ann", IdentitySet(keys=(KEY,))))
    again = read_identities(cache.conn)
    assert (len(again.keys), again.tags, dict(again.cards)) == (1, (), {})
    assert identities_version(cache.conn) == 2


def test_a_body_the_box_cannot_take_refuses_the_whole_delta(cache: CodeCache) -> None:
    before = delta_apply.position(cache.conn)
    with pytest.raises(DeltaRefusedError) as raised:
        apply(
            cache,
            ids("ann", IdentitySet(keys=(KEY,))),
            ids("ann", EMPTY, body='{"schema_version":1,"keys":[],"tags":[]}'),
        )
    assert raised.value.reason is Refusal.BAD_IDENTITIES
    assert "missing_field" in raised.value.detail and "cards" in raised.value.detail
    assert delta_apply.position(cache.conn) == before
    assert read_identities(cache.conn).keys == () and identities_version(cache.conn) == 0


def test_nothing_is_stored_for_a_member_without_consent_and_withdrawal_deletes_at_once(
    cache: CodeCache,
) -> None:
    done = apply(
        cache, ids("M1", IdentitySet(keys=(KEY,))), ids("nobody", IdentitySet(tags=(TAG,)))
    )
    assert (done.applied, done.skipped) == (0, 2)
    assert cache.conn.execute("SELECT count(*) FROM member_keys").fetchone()[0] == 0
    apply(cache, ids("ann", IdentitySet(keys=(KEY,), tags=(TAG,), cards=(CARD,))))
    version = identities_version(cache.conn)
    apply(cache, consent("ann", False))  # before HQ's empty set comes
    for table in ("member_keys", "member_tags", "member_cards"):
        assert cache.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
    found = read_identities(cache.conn)
    assert (found.keys, found.tags, dict(found.cards)) == ((), (), {})
    assert identities_version(cache.conn) > version


def test_a_tag_moved_to_another_member_belongs_to_the_last_one_said(cache: CodeCache) -> None:
    cache.put_member(Member(member_id="cy", segment="loyal", proximity_consent=True))
    apply(cache, ids("ann", IdentitySet(tags=(TAG,))))
    apply(cache, ids("cy", IdentitySet(tags=(TAG,))))
    assert [t.member_id for t in read_identities(cache.conn).tags] == ["cy"]


@pytest.fixture
def central(tmp_path: Path) -> Iterator[CentralStore]:
    with CentralStore.create(tmp_path / "hq.db", fmt=HQ_FMT) as store:
        store.create_campaign(campaign("SPRING"), now=NOW)
        store.upsert_members(
            [
                MemberRow(member_id="ann", proximity_consent=True),
                MemberRow(member_id="M1", proximity_consent=False),
            ],
            now=NOW,
        )
        yield store


def test_a_snapshot_replaces_the_set_and_an_older_hqs_keeps_it_for_consenting_members(
    cache: CodeCache, central: CentralStore, tmp_path: Path
) -> None:
    cache.put_member(Member(member_id="gone", segment="loyal", proximity_consent=True))
    apply(cache, ids("gone", IdentitySet(keys=(KEY,))))
    key = new_key(central, "ann", now=NOW)
    enrol_tag(central, "ann", "altbeacon", "22" * 20, now=NOW)
    enrol_card(central, "ann", "04a1b2c3", now=NOW)
    path = tmp_path / "s.snapshot.db"
    write_snapshot(central, path, STORE, now=NOW)
    version = identities_version(cache.conn)
    cache.load_snapshot(path)
    found = read_identities(cache.conn)
    assert [(k.member_id, k.key) for k in found.keys] == [("ann", key.key)]  # "gone" replaced
    assert [t.identity.kind for t in found.tags] == [FrameKind.ALTBEACON]
    salt = found.card_salt
    assert salt is not None and dict(found.cards) == {
        uid_digest(bytes.fromhex("04a1b2c3"), salt=salt): "ann"
    }
    assert identities_version(cache.conn) > version

    older = tmp_path / "older-hq.snapshot.db"  # from an HQ before identities, ann withdrawn
    central.upsert_members([MemberRow(member_id="ann", proximity_consent=False)], now=NOW)
    write_snapshot(central, older, STORE, now=NOW)
    with sqlite3.connect(older) as snap:
        snap.execute("DROP TABLE member_identities")
        snap.execute("DELETE FROM snapshot_meta WHERE key = 'card_salt'")
        snap.execute("UPDATE members SET proximity_consent = 1 WHERE member_id = 'M1'")
    cache.put_member(Member(member_id="M1", segment="loyal", proximity_consent=True))
    apply(cache, ids("M1", IdentitySet(tags=(TAG,))))
    cache.load_snapshot(older)
    kept = read_identities(cache.conn)
    assert (kept.keys, [t.member_id for t in kept.tags]) == ((), ["M1"])
    assert cache.conn.execute("SELECT count(*) FROM member_keys").fetchone()[0] == 0


def test_a_snapshot_with_a_malformed_set_or_salt_is_refused_and_changes_nothing(
    cache: CodeCache, central: CentralStore, tmp_path: Path
) -> None:
    apply(cache, ids("ann", IdentitySet(keys=(KEY,))))
    version = identities_version(cache.conn)
    for name, sql in (
        ("body", "UPDATE member_identities SET body = '{\"schema_version\": 1}'"),
        ("salt", "UPDATE snapshot_meta SET value = 'salty' WHERE key = 'card_salt'"),
    ):
        if name == "body":  # a set to spoil
            new_key(central, "ann", now=NOW)
        path = tmp_path / f"{name}.snapshot.db"
        write_snapshot(central, path, STORE, now=NOW)
        with sqlite3.connect(path) as snap:
            snap.execute(sql)
        with pytest.raises(SnapshotError, match=r"identities|card_salt"):
            cache.load_snapshot(path)
        assert [k.key for k in read_identities(cache.conn).keys] == [KEY.key]
        assert identities_version(cache.conn) == version
