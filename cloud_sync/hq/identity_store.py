"""HQ's tables of members' presence identities, read as the contract's ``IdentitySet``.

Theory of operation
-------------------
Three tables (``hq_schema`` migration 5): ``identity_keys`` (rotating-identifier keys and
their validity windows), ``identity_tags`` (enrolled beacon tags, each naming one member) and
``identity_cards`` (card UID digests, each naming one member), plus the programme's card salt
in ``hq_meta.card_salt``, made once from ``secrets`` and never changed (changing it would
orphan every enrolled card). The operator's commands write them (``identity_enrolment.py``);
this module is what everything else reads and the one delete:

* ``sets(conn, member_ids)``: each member's set as it is now, the empty set for a member
  without proximity consent whatever the tables hold: what the fan-out turns into
  ``member.identities`` (``fanout/central_journal.py``) and the snapshot writes
  (``snapshot.py``). So a key of a member without consent never leaves HQ, even if a row
  were left behind.
* ``forget(conn, member_ids)``: a withdrawn consent deletes the member's identities at HQ in
  the transaction that withdraws it (``central_store.upsert_members``): nothing is kept about a
  member who is no longer opted in, and consent given again starts from nothing.

Functions take the caller's connection and run inside the caller's transaction; nothing here
logs a key.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final

from cloud_sync.contract.member_identities import (
    EMPTY,
    SALT_BYTES,
    IdentityKey,
    IdentitySet,
    IdentityTag,
)

SALT_KEY: Final = "card_salt"
_IN_CHUNK: Final = 500


def ensure_card_salt(conn: sqlite3.Connection) -> None:
    """Make the programme's card salt if the file has none (inside a write transaction)."""
    if card_salt(conn) is None:
        conn.execute(
            "INSERT INTO hq_meta (key, value) VALUES (?, ?)",
            (SALT_KEY, secrets.token_bytes(SALT_BYTES).hex()),
        )


def card_salt(conn: sqlite3.Connection) -> bytes | None:
    row = conn.execute("SELECT value FROM hq_meta WHERE key = ?", (SALT_KEY,)).fetchone()
    return None if row is None else bytes.fromhex(str(row[0]))


def consenting(conn: sqlite3.Connection, member_ids: Iterable[str]) -> set[str]:
    """Those of ``member_ids`` who have given proximity consent."""
    return {
        str(r[0])
        for r in _rows(
            conn,
            "SELECT member_id FROM members WHERE proximity_consent = 1 AND member_id IN ({})",
            member_ids,
        )
    }


def sets(conn: sqlite3.Connection, member_ids: Iterable[str]) -> dict[str, IdentitySet]:
    """Each consenting member's identity set now, read in bulk; the others' is ``EMPTY``."""
    wanted = sorted(set(member_ids))
    ok = consenting(conn, wanted)
    keys: dict[str, list[IdentityKey]] = {}
    for member, key_id, key, start, until in _rows(
        conn,
        "SELECT member_id, key_id, key, valid_from, valid_until FROM identity_keys "
        "WHERE member_id IN ({})",
        ok,
    ):
        keys.setdefault(member, []).append(
            IdentityKey(
                key_id=key_id, key=bytes(key), valid_from=_at(start), valid_until=_at(until)
            )
        )
    tags: dict[str, list[IdentityTag]] = {}
    for member, kind, value in _rows(
        conn, "SELECT member_id, kind, value FROM identity_tags WHERE member_id IN ({})", ok
    ):
        tags.setdefault(member, []).append(IdentityTag(kind=kind, value=bytes(value)))
    cards: dict[str, list[str]] = {}
    for member, digest in _rows(
        conn, "SELECT member_id, digest FROM identity_cards WHERE member_id IN ({})", ok
    ):
        cards.setdefault(member, []).append(str(digest))
    return {
        m: IdentitySet(
            keys=tuple(keys.get(m, ())), tags=tuple(tags.get(m, ())), cards=tuple(cards.get(m, ()))
        )
        if m in ok
        else EMPTY
        for m in wanted
    }


def enrolled_members(conn: sqlite3.Connection) -> list[str]:
    """Every consenting member with at least one identity, in member order (for snapshots)."""
    return [
        str(r[0])
        for r in conn.execute(
            "SELECT member_id FROM (SELECT member_id FROM identity_keys UNION "
            "SELECT member_id FROM identity_tags UNION SELECT member_id FROM identity_cards) "
            "WHERE member_id IN (SELECT member_id FROM members WHERE proximity_consent = 1) "
            "ORDER BY member_id"
        )
    ]


def forget(conn: sqlite3.Connection, member_ids: Iterable[str]) -> None:
    """Delete every identity of ``member_ids`` (inside the caller's transaction)."""
    ids = json.dumps(sorted(set(member_ids)))
    for table in ("identity_keys", "identity_tags", "identity_cards"):
        conn.execute(
            f"DELETE FROM {table} WHERE member_id IN (SELECT value FROM json_each(?))",  # noqa: S608
            (ids,),
        )


def _at(seconds: int | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _rows(conn: sqlite3.Connection, sql: str, keys: Iterable[str]) -> list[tuple[Any, ...]]:
    """``sql``'s rows for ``keys``, ``_IN_CHUNK`` keys per IN (...) lookup."""
    ordered = sorted(keys)
    out: list[tuple[Any, ...]] = []
    for start in range(0, len(ordered), _IN_CHUNK):
        chunk = ordered[start : start + _IN_CHUNK]
        out += conn.execute(sql.format(", ".join("?" * len(chunk))), chunk).fetchall()
    return out
