"""``storeside-hq identities``: the operator enrols consenting members' presence identities on a
real HQ file. A key is printed once and never again nor logged; a rotation keeps the old key for
its overlap; a card is stored only as its salted digest; unknown members and members without
consent are refused with one line; a withdrawn consent deletes everything HQ held."""

from __future__ import annotations

import base64
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from cloud_sync.contract import member_token
from cloud_sync.contract.card_uid import uid_digest
from cloud_sync.hq import hq_key_file, identity_store
from cloud_sync.hq.central_store import CentralStore, MemberRow
from cloud_sync.hq.cli import main
from cloud_sync.hq.identity_enrolment import rotate_key
from edge_agent.presence.member_token_verify import decode_and_verify
from edge_agent.presence.ndef_message import NdefRecord
from edge_agent.sync.hq_trust import HqTrust
from tests.hq.conftest import FMT, NOW

UID = "04:A1:B2:C3:D4:E5:F6"
IBEACON = "f7826da6-4fa2-4e98-8024-bc5b71e0893e" + "0001" + "0002"


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "hq.db"
    with CentralStore.create(path, fmt=FMT) as central:
        central.upsert_members(
            [
                MemberRow(member_id="ann", proximity_consent=True),
                MemberRow(member_id="bob", proximity_consent=False),
            ],
            now=NOW,
        )
    return str(path)


def hq(db: str, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["--db", db, "identities", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_a_key_is_shown_once_rotated_with_an_overlap_and_never_logged(
    db: str, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    status, out, _ = hq(db, capsys, "key-new", "ann")
    assert status == 0
    key_id = re.search(r"^key_id ([0-9a-f]{16})$", out, re.M)
    key_b64 = re.search(r"^key (\S+)$", out, re.M)
    assert key_id and key_b64
    key = base64.b64decode(key_b64[1], validate=True)
    assert len(key) == 16
    status, _, err = hq(db, capsys, "key-new", "ann")
    assert status == 2 and f"has key {key_id[1]} already" in err
    status, out, _ = hq(db, capsys, "key-rotate", "ann", "--overlap-hours", "6")
    assert status == 0
    new_id = re.search(r"^key_id ([0-9a-f]{16})$", out, re.M)
    assert new_id and new_id[1] != key_id[1]
    status, shown, _ = hq(db, capsys, "show", "ann")
    lines = sorted(line.split("\t") for line in shown.splitlines())
    assert [(kind, kid) for kind, kid, *_ in lines] == sorted(
        [("key", key_id[1]), ("key", new_id[1])]
    )
    ends = {kid: datetime.fromisoformat(end) for _, kid, _, end in lines if end != "-"}
    assert list(ends) == [key_id[1]]  # the old one ends, the new one is open
    started = datetime.fromisoformat(next(s for _, kid, s, _ in lines if kid == new_id[1]))
    assert ends[key_id[1]] - started == timedelta(hours=6)
    for text in (shown, caplog.text):
        assert key_b64[1] not in text and key.hex() not in text
    with CentralStore.open(Path(db)) as central:
        stored = {bytes(r[0]) for r in central.conn.execute("SELECT key FROM identity_keys")}
    assert key in stored


def test_rotation_forgets_keys_past_their_end(db: str) -> None:
    with CentralStore.open(Path(db)) as central:
        first = rotate_key(central, "ann", now=NOW, overlap=timedelta(hours=1))
        rotate_key(central, "ann", now=NOW + timedelta(hours=2), overlap=timedelta(hours=1))
        # The first ended at +3 h (the second rotation's overlap): gone at the third.
        rotate_key(central, "ann", now=NOW + timedelta(hours=4), overlap=timedelta(hours=1))
        ids = [r[0] for r in central.conn.execute("SELECT key_id FROM identity_keys")]
    assert len(ids) == 2 and first.key_id not in ids


def test_tags_and_cards_enrol_once_per_member_and_cards_only_as_digests(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert hq(db, capsys, "tag-enrol", "ann", "ibeacon", IBEACON)[0] == 0
    assert "enrolled already" in hq(db, capsys, "tag-enrol", "ann", "iBeacon", IBEACON.upper())[1]
    status, _, err = hq(db, capsys, "tag-enrol", "ann", "ibeacon", "00" * 16)
    assert status == 2 and "16 bytes, want 20" in err
    assert hq(db, capsys, "card-enrol", "ann", UID)[0] == 0
    status, _, err = hq(db, capsys, "card-enrol", "ann", "0102")
    assert status == 2 and "4, 7 or 10" in err
    with CentralStore.open(Path(db)) as central:
        central.upsert_members([MemberRow(member_id="cy", proximity_consent=True)], now=NOW)
        salt = identity_store.card_salt(central.conn)
    status, _, err = hq(db, capsys, "card-enrol", "cy", UID.replace(":", ""))
    assert status == 2 and "already enrolled for member 'ann'" in err
    assert salt is not None
    status, shown, _ = hq(db, capsys, "show", "ann")
    digest = uid_digest(bytes.fromhex(UID.replace(":", "")), salt=salt)
    assert shown.splitlines() == [
        f"tag\tibeacon\t{IBEACON.replace('-', '')}",
        f"card\t{digest}",
    ]
    raw = Path(db).read_bytes()
    assert bytes.fromhex(UID.replace(":", "")) not in raw  # the UID is nowhere in HQ's file
    assert hq(db, capsys, "card-unenrol", "ann", UID)[0] == 0
    assert hq(db, capsys, "tag-unenrol", "ann", "ibeacon", IBEACON)[0] == 0
    status, _, err = hq(db, capsys, "tag-unenrol", "ann", "ibeacon", IBEACON)
    assert status == 2 and "is not enrolled" in err
    assert hq(db, capsys, "show", "ann")[1] == ""


@pytest.mark.parametrize(
    "args",
    [
        ("key-new",),
        ("key-rotate",),
        ("tag-enrol", "eddystone_uid", "00" * 16),
        ("card-enrol", "01020304"),
        ("card-unenrol", "01020304"),
        ("show",),
    ],
)
def test_unknown_members_and_members_without_consent_are_refused(
    db: str, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]
) -> None:
    verb, *rest = args
    status, out, err = hq(db, capsys, verb, "nobody", *rest)
    assert (status, out) == (2, "")
    assert err == "storeside-hq: error: no member 'nobody'\n"
    status, out, err = hq(db, capsys, verb, "bob", *rest)
    assert (status, out) == (2, "")
    assert "member 'bob' has not given proximity consent" in err
    with CentralStore.open(Path(db)) as central:
        assert identity_store.enrolled_members(central.conn) == []


def test_a_withdrawn_consent_deletes_the_members_identities_at_hq(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    hq(db, capsys, "key-new", "ann")
    hq(db, capsys, "tag-enrol", "ann", "altbeacon", "11" * 20)
    hq(db, capsys, "card-enrol", "ann", "01020304")
    with CentralStore.open(Path(db)) as central:
        assert identity_store.enrolled_members(central.conn) == ["ann"]
        central.upsert_members([MemberRow(member_id="ann", segment="loyal")], now=NOW)
        assert identity_store.enrolled_members(central.conn) == ["ann"]  # consent kept
        central.upsert_members([MemberRow(member_id="ann", proximity_consent=False)], now=NOW)
        for table in ("identity_keys", "identity_tags", "identity_cards"):
            assert central.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
        central.upsert_members([MemberRow(member_id="ann", proximity_consent=True)], now=NOW)
    assert hq(db, capsys, "show", "ann")[1] == ""  # consent again starts from nothing


def test_the_card_salt_is_made_once_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "hq.db"
    with CentralStore.create(path, fmt=FMT) as central:
        salt = identity_store.card_salt(central.conn)
        # A file from before identities: migrated, and given a salt, on open.
        central.conn.execute("DELETE FROM hq_meta WHERE key = 'card_salt'")
    with CentralStore.open(path) as central:
        again = identity_store.card_salt(central.conn)
    with CentralStore.open(path) as central:
        assert identity_store.card_salt(central.conn) == again
    assert salt is not None and again is not None and len(again) == 16 and again != salt


def test_a_member_token_from_hq_is_what_a_box_verifies_offline(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_path = tmp_path / "hq-signing.key"
    hq_key_file.create(key_path)
    public = hq_key_file.load(key_path).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    status, out, err = hq(db, capsys, "token", "bob", "--hq-key", str(key_path), "--days", "7")
    assert (status, err) == (0, "")  # a tap is deliberate: no proximity consent needed
    fields = dict(line.split(" ", 1) for line in out.splitlines())
    record = NdefRecord(type=member_token.RECORD_TYPE, payload=bytes.fromhex(fields["payload"]))
    trust = HqTrust.pinned(public)
    assert decode_and_verify(record, trust=trust, now=datetime.now(UTC)) == "bob"
    later = datetime.now(UTC) + timedelta(days=8)
    refused = decode_and_verify(record, trust=trust, now=later)
    assert not isinstance(refused, str) and refused.reason.value == "expired"
    status, _, err = hq(db, capsys, "token", "nobody", "--hq-key", str(key_path))
    assert status == 2 and "nobody" in err
