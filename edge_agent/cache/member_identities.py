"""Cache migration v14: consenting members' presence identities, as HQ last said them.

Theory of operation
-------------------
HQ sends each member's whole set of presence identities (``cloud_sync/contract/
member_identities.py``): in a delta as ``member.identities``, in a snapshot as one row per
consenting member. The box keeps them in three tables, each row naming its member:

    member_keys    member_id, key_id, key (16 bytes), valid_from_us, valid_until_us (UTC
                   microseconds, null: open; until exclusive): rotating-identifier keys
    member_tags    kind, value (the tag's fixed identity), member_id: enrolled beacon tags
    member_cards   digest (``card_uid.uid_digest`` hex), member_id: enrolled member cards
    meta.card_salt            the programme's card salt (hex), with which the box digests a
                              tapped card's UID to look it up
    meta.identities_version   bumped by every write to the above, snapshot loads included

Writes (each inside the caller's transaction): ``replace`` puts a member's new set in place of
their old one (a tag or card HQ moved to this member from another is taken from the other, the
last word winning); ``forget`` deletes a member's (``member.changed`` with consent false: defence
in depth, HQ sends the empty set too); the snapshot swap replaces them all (``take_snapshot``)
and always drops those of members the new ``members`` table says have no consent. A set for a
member the box does not know as consenting is not stored (``replace`` answers False): nothing
is kept about somebody who did not opt in.

Reads: ``read_identities`` gives the runtime every consenting member's keys and tags, the salt
and the card table, joined with ``members`` so a stale row could never resolve a member without
consent; ``identities_version`` is one primary-key read, for polling: the runtime rebuilds its
resolver only when it moved.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import sqlite_utils

from cloud_sync.contract.decode_errors import DecodeError
from cloud_sync.contract.member_identities import (
    IdentitySet,
    decode_body,
    salt_from_text,
)
from cloud_sync.contract.snapshot_format import MEMBER_IDENTITIES_COLUMNS
from edge_agent.cache.timestamps import from_us, to_us
from edge_agent.errors import SnapshotError
from edge_agent.presence.frames.parse import TagIdentity
from edge_agent.presence.frames.refusal import FrameKind
from edge_agent.presence.rotating_id_resolver import EnrolledTag, MemberKey

VERSION_KEY: Final = "identities_version"
SALT_KEY: Final = "card_salt"
TABLES: Final = ("member_keys", "member_tags", "member_cards")
_CONSENTING: Final = "(SELECT member_id FROM members WHERE proximity_consent = 1)"


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberIdentities:
    keys: tuple[MemberKey, ...]
    tags: tuple[EnrolledTag, ...]
    card_salt: bytes | None
    cards: Mapping[str, str]  # uid_digest hex -> member_id


def migrate(db: sqlite_utils.Database) -> None:
    for ddl in (
        "CREATE TABLE member_keys (member_id TEXT NOT NULL, key_id TEXT NOT NULL, "
        "key BLOB NOT NULL, valid_from_us INTEGER, valid_until_us INTEGER, "
        "PRIMARY KEY (member_id, key_id)) WITHOUT ROWID",
        # A tag or a card names one member: keyed by itself, with the member indexed for
        # replace and forget.
        "CREATE TABLE member_tags (kind TEXT NOT NULL, value BLOB NOT NULL, "
        "member_id TEXT NOT NULL, PRIMARY KEY (kind, value)) WITHOUT ROWID",
        "CREATE INDEX member_tags_by_member ON member_tags (member_id)",
        "CREATE TABLE member_cards (digest TEXT PRIMARY KEY, member_id TEXT NOT NULL) "
        "WITHOUT ROWID",
        "CREATE INDEX member_cards_by_member ON member_cards (member_id)",
    ):
        db.execute(ddl)


def _bump(conn: sqlite3.Connection) -> None:
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, 1) ON CONFLICT (key) "
        "DO UPDATE SET value = value + 1",
        (VERSION_KEY,),
    )


def _delete(conn: sqlite3.Connection, member_id: str) -> int:
    return sum(
        conn.execute(
            f"DELETE FROM {table} WHERE member_id = ?",  # noqa: S608 (fixed names)
            (member_id,),
        ).rowcount
        for table in TABLES
    )


def _insert(conn: sqlite3.Connection, member_id: str, identities: IdentitySet) -> None:
    conn.executemany(
        "INSERT INTO member_keys VALUES (?, ?, ?, ?, ?)",
        (
            (
                member_id,
                k.key_id,
                k.key,
                None if k.valid_from is None else to_us(k.valid_from),
                None if k.valid_until is None else to_us(k.valid_until),
            )
            for k in identities.keys
        ),
    )
    conn.executemany(
        "INSERT OR REPLACE INTO member_tags VALUES (?, ?, ?)",
        ((t.kind, t.value, member_id) for t in identities.tags),
    )
    conn.executemany(
        "INSERT OR REPLACE INTO member_cards VALUES (?, ?)",
        ((digest, member_id) for digest in identities.cards),
    )


def _set_salt(conn: sqlite3.Connection, salt: bytes) -> None:
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (SALT_KEY, salt.hex()))


def replace(
    conn: sqlite3.Connection, member_id: str, identities: IdentitySet, *, card_salt: bytes
) -> bool:
    """Put ``identities`` in place of the member's; False: not stored (the box does not know
    the member as consenting, and the set is not empty)."""
    consenting = conn.execute(
        "SELECT 1 FROM members WHERE member_id = ? AND proximity_consent = 1", (member_id,)
    ).fetchone()
    _set_salt(conn, card_salt)
    _delete(conn, member_id)
    _bump(conn)
    if consenting is None and not identities.empty:
        return False
    _insert(conn, member_id, identities)
    return True


def forget(conn: sqlite3.Connection, member_id: str) -> None:
    """Delete the member's identities (their consent is gone)."""
    if _delete(conn, member_id):
        _bump(conn)


def check_snapshot(snap: sqlite3.Connection, meta: Mapping[str, str], path: Path) -> bool:
    """Whether the snapshot carries identities (an HQ from before them does not);
    SnapshotError if what it carries is not the agreed table, a salt and sets that decode."""
    found = tuple(r[1] for r in snap.execute("PRAGMA table_info(member_identities)"))
    if not found:
        return False
    if found != MEMBER_IDENTITIES_COLUMNS:
        raise SnapshotError(f"{path}: table member_identities has columns {found}")
    try:
        salt_from_text("card_salt", meta.get(SALT_KEY, ""))
    except DecodeError as exc:
        raise SnapshotError(f"{path}: snapshot_meta.{exc}") from None
    for member_id, body in snap.execute("SELECT member_id, body FROM member_identities"):
        try:
            if not isinstance(member_id, str) or not member_id or not isinstance(body, str):
                raise SnapshotError(f"{path}: member identities row {member_id!r} is malformed")
            decode_body(body)
        except DecodeError as exc:
            why = f"{exc.reason}: {exc}"
            raise SnapshotError(f"{path}: identities of member {member_id!r}: {why}") from None
    return True


def take_snapshot(conn: sqlite3.Connection, *, carried: bool, card_salt: str | None) -> None:
    """Inside the snapshot swap (``snap`` attached and checked, ``members`` already the new
    one): the snapshot's identities in place of all the box's, if it ``carried`` them; then
    whoever has no consent now loses theirs either way."""
    if carried and card_salt is not None:
        for table in TABLES:
            conn.execute(f"DELETE FROM {table}")  # noqa: S608 (fixed names)
        _set_salt(conn, bytes.fromhex(card_salt))
        rows = conn.execute(
            "SELECT i.member_id, i.body FROM snap.member_identities AS i WHERE i.member_id IN "
            "(SELECT member_id FROM members WHERE proximity_consent = 1) ORDER BY i.member_id"
        )
        for member_id, body in rows.fetchall():
            _insert(conn, member_id, decode_body(body))
    for table in TABLES:
        conn.execute(
            f"DELETE FROM {table} WHERE member_id NOT IN {_CONSENTING}"  # noqa: S608 (fixed)
        )
    _bump(conn)


def read_identities(conn: sqlite3.Connection) -> MemberIdentities:
    """Every consenting member's keys and tags, the card salt and the card table."""
    keys = tuple(
        MemberKey(
            member_id=member_id,
            key_id=key_id,
            key=bytes(key),
            valid_from=None if start is None else from_us(start),
            valid_until=None if until is None else from_us(until),
        )
        for member_id, key_id, key, start, until in conn.execute(
            "SELECT member_id, key_id, key, valid_from_us, valid_until_us FROM member_keys "
            "WHERE member_id IN (SELECT member_id FROM members WHERE proximity_consent = 1) "
            "ORDER BY member_id, key_id"
        )
    )
    tags = tuple(
        EnrolledTag(member_id=member_id, identity=TagIdentity(FrameKind(kind), bytes(value)))
        for kind, value, member_id in conn.execute(
            "SELECT kind, value, member_id FROM member_tags WHERE member_id IN "
            "(SELECT member_id FROM members WHERE proximity_consent = 1) ORDER BY kind, value"
        )
    )
    cards = {
        str(digest): str(member_id)
        for digest, member_id in conn.execute(
            "SELECT digest, member_id FROM member_cards WHERE member_id IN "
            "(SELECT member_id FROM members WHERE proximity_consent = 1)"
        )
    }
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (SALT_KEY,)).fetchone()
    salt = None if row is None else bytes.fromhex(str(row[0]))
    return MemberIdentities(keys=keys, tags=tags, card_salt=salt, cards=cards)


def identities_version(conn: sqlite3.Connection) -> int:
    """Cheap: grows on every change of the identities (0: never written)."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (VERSION_KEY,)).fetchone()
    return 0 if row is None else int(row[0])
