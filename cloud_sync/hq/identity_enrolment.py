"""The operator's enrolment of consenting members' presence identities at HQ.

Theory of operation
-------------------
Every operation refuses an unknown member (``UnknownMemberError``) and a member without
proximity consent (``NoConsentError``) before it touches anything, runs in one write
transaction, and journals the member's identities (``change_journal.Kind.IDENTITIES``) in it,
so the fan-out sends every store the member's new whole set (``member.identities``).

* ``new_key``: the member's first rotating-identifier key, made here from ``secrets`` (16
  bytes, and a random 8-byte key id), valid from now. It is answered once, for provisioning the
  member app, and never logged; a member who has a key already is told to rotate it.
* ``rotate_key``: a new key valid from now; every earlier key still valid stops at now +
  ``overlap`` (a day by default), so a phone not yet provisioned with the new key is still
  recognised meanwhile; keys already past their end are deleted.
* ``enrol_tag`` / ``unenrol_tag``: a fixed beacon tag (kind and identity bytes); a tag names
  one member at most (``IdentityTakenError``), and enrolling it again for its member is a no-op.
* ``enrol_card`` / ``unenrol_card``: a member card by its UID, of which HQ stores only the
  salted digest (``card_uid.uid_digest`` with the programme's salt): the UID itself is never
  written anywhere.

The bounds of the contract (``member_identities.MAX_KEYS`` ...) are refused here, with a
reason, so the fan-out never meets a set it cannot send.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from cloud_sync.contract.card_uid import uid_digest
from cloud_sync.contract.member_identities import (
    KEY_BYTES,
    MAX_CARDS,
    MAX_KEYS,
    MAX_TAGS,
    TAG_BYTES,
    IdentitySet,
)
from cloud_sync.hq import change_journal, identity_store
from cloud_sync.hq.central_store import CentralStore, from_epoch, to_epoch
from cloud_sync.hq.change_journal import Kind
from cloud_sync.hq.errors import (
    IdentityTakenError,
    InputError,
    NoConsentError,
    StoreFileError,
    UnknownMemberError,
)

DEFAULT_OVERLAP: Final = timedelta(days=1)
UID_BYTES: Final = (4, 7, 10)  # ISO/IEC 14443-3 single, double and triple size UIDs
_SEPARATORS: Final = str.maketrans("", "", " :-")


@dataclass(frozen=True, slots=True, kw_only=True)
class NewKey:
    """A key just made: shown to the operator once, for the member app."""

    member_id: str
    key_id: str
    key: bytes
    valid_from: datetime
    others_end: datetime | None = None  # rotate: when the earlier keys stop resolving


def _member(central: CentralStore, member_id: str) -> str:
    member_id = member_id.strip()
    member = central.member(member_id)
    if member is None:
        raise UnknownMemberError(member_id)
    if not member.proximity_consent:
        raise NoConsentError(member_id)
    return member_id


def _journal(central: CentralStore, member_id: str, now: datetime) -> None:
    change_journal.record(central.conn, Kind.IDENTITIES, [member_id], at=to_epoch(now))


def _count(central: CentralStore, table: str, member_id: str) -> int:
    sql = f"SELECT count(*) FROM {table} WHERE member_id = ?"  # noqa: S608 (names are ours)
    return int(central.conn.execute(sql, (member_id,)).fetchone()[0])


def _insert_key(central: CentralStore, member_id: str, now: datetime) -> NewKey:
    key_id, key = secrets.token_hex(8), secrets.token_bytes(KEY_BYTES)
    central.conn.execute(
        "INSERT INTO identity_keys VALUES (?, ?, ?, ?, NULL)",
        (member_id, key_id, key, to_epoch(now)),
    )
    return NewKey(member_id=member_id, key_id=key_id, key=key, valid_from=from_epoch(to_epoch(now)))


def new_key(central: CentralStore, member_id: str, *, now: datetime) -> NewKey:
    """The member's first key (see the module docstring)."""
    with central.write():
        member_id = _member(central, member_id)
        current = central.conn.execute(
            "SELECT key_id FROM identity_keys WHERE member_id = ? "
            "AND (valid_until IS NULL OR valid_until > ?) ORDER BY key_id LIMIT 1",
            (member_id, to_epoch(now)),
        ).fetchone()
        if current is not None:
            raise InputError(
                f"member {member_id!r} has key {current[0]} already; rotate it to make a new one"
            )
        made = _insert_key(central, member_id, now)
        _journal(central, member_id, now)
    return made


def rotate_key(
    central: CentralStore, member_id: str, *, now: datetime, overlap: timedelta = DEFAULT_OVERLAP
) -> NewKey:
    """A new key valid from now, the earlier ones ending after ``overlap``."""
    if overlap < timedelta(0):
        raise InputError("the overlap must not be negative")
    end = to_epoch(now + overlap)
    with central.write():
        member_id = _member(central, member_id)
        conn = central.conn
        conn.execute(
            "DELETE FROM identity_keys WHERE member_id = ? AND valid_until <= ?",
            (member_id, to_epoch(now)),
        )
        conn.execute(
            "UPDATE identity_keys SET valid_until = ? WHERE member_id = ? "
            "AND (valid_until IS NULL OR valid_until > ?)",
            (end, member_id, end),
        )
        if _count(central, "identity_keys", member_id) >= MAX_KEYS:
            raise InputError(
                f"member {member_id!r} has {MAX_KEYS} keys in their overlap already; "
                "rotate again when the earlier ones have ended"
            )
        made = _insert_key(central, member_id, now)
        _journal(central, member_id, now)
    return NewKey(
        member_id=made.member_id,
        key_id=made.key_id,
        key=made.key,
        valid_from=made.valid_from,
        others_end=from_epoch(end),
    )


def _hex(text: str, what: str) -> bytes:
    cleaned = text.translate(_SEPARATORS).lower()
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise InputError(f"{what}: {text!r} is not hex") from None


def parse_tag(kind: str, value: str) -> tuple[str, bytes]:
    """A tag as the operator writes it: its kind and hex identity (dashes, colons allowed)."""
    kind = kind.strip().lower()
    if kind not in TAG_BYTES:
        raise InputError(f"tag kind {kind!r}: one of {', '.join(sorted(TAG_BYTES))}")
    raw = _hex(value, f"{kind} tag")
    if len(raw) != TAG_BYTES[kind]:
        raise InputError(
            f"{kind} tag: {len(raw)} bytes, want {TAG_BYTES[kind]} "
            "(iBeacon: UUID + major + minor; AltBeacon: the 20-byte id; "
            "Eddystone-UID: namespace + instance)"
        )
    return kind, raw


def parse_uid(text: str) -> bytes:
    uid = _hex(text, "card UID")
    if len(uid) not in UID_BYTES:
        raise InputError(f"card UID: {len(uid)} bytes; an NFC UID is 4, 7 or 10")
    return uid


def _enrol(
    central: CentralStore, member_id: str, *, now: datetime, what: str, table: str,
    where: str, key: tuple[object, ...], bound: int, insert: str,
) -> bool:  # fmt: skip
    """Enrol one tag or card (``key`` in ``table``); False: it was the member's already."""
    with central.write():
        member_id = _member(central, member_id)
        sql = f"SELECT member_id FROM {table} WHERE {where}"  # noqa: S608 (names are ours)
        row = central.conn.execute(sql, key).fetchone()
        if row is not None:
            if row[0] != member_id:
                raise IdentityTakenError(what, str(row[0]))
            return False
        if _count(central, table, member_id) >= bound:
            raise InputError(f"member {member_id!r} has {bound} enrolled already, the most")
        central.conn.execute(insert, (*key, member_id, to_epoch(now)))
        _journal(central, member_id, now)
    return True


def _unenrol(
    central: CentralStore, member_id: str, *, now: datetime, what: str, table: str,
    where: str, key: tuple[object, ...],
) -> None:  # fmt: skip
    with central.write():
        member_id = _member(central, member_id)
        sql = f"DELETE FROM {table} WHERE {where} AND member_id = ?"  # noqa: S608 (ours)
        if central.conn.execute(sql, (*key, member_id)).rowcount == 0:
            raise InputError(f"{what} is not enrolled for member {member_id!r}")
        _journal(central, member_id, now)


def enrol_tag(
    central: CentralStore, member_id: str, kind: str, value: str, *, now: datetime
) -> bool:
    kind, raw = parse_tag(kind, value)
    return _enrol(
        central, member_id, now=now, what=f"{kind} tag {raw.hex()}", table="identity_tags",
        where="kind = ? AND value = ?", key=(kind, raw), bound=MAX_TAGS,
        insert="INSERT INTO identity_tags VALUES (?, ?, ?, ?)",
    )  # fmt: skip


def unenrol_tag(
    central: CentralStore, member_id: str, kind: str, value: str, *, now: datetime
) -> None:
    kind, raw = parse_tag(kind, value)
    _unenrol(
        central, member_id, now=now, what=f"{kind} tag {raw.hex()}", table="identity_tags",
        where="kind = ? AND value = ?", key=(kind, raw),
    )  # fmt: skip


def _digest(central: CentralStore, uid: str) -> str:
    salt = identity_store.card_salt(central.conn)
    if salt is None:  # made at create and open: a file changed behind HQ's back
        raise StoreFileError(f"{central.path} has no card salt")
    return uid_digest(parse_uid(uid), salt=salt)


def enrol_card(central: CentralStore, member_id: str, uid: str, *, now: datetime) -> bool:
    digest = _digest(central, uid)
    return _enrol(
        central, member_id, now=now, what="that card", table="identity_cards",
        where="digest = ?", key=(digest,), bound=MAX_CARDS,
        insert="INSERT INTO identity_cards VALUES (?, ?, ?)",
    )  # fmt: skip


def unenrol_card(central: CentralStore, member_id: str, uid: str, *, now: datetime) -> None:
    digest = _digest(central, uid)
    _unenrol(
        central, member_id, now=now, what="that card", table="identity_cards",
        where="digest = ?", key=(digest,),
    )  # fmt: skip


def show(central: CentralStore, member_id: str) -> IdentitySet:
    """The member's set as the stores are sent it (keys included: the caller prints none)."""
    member_id = _member(central, member_id)
    return identity_store.sets(central.conn, [member_id])[member_id]
