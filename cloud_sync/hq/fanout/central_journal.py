"""The fan-out's reading side of the central store's change journal (``change_journal.py``).

Theory of operation
-------------------
``CentralJournal(path).changes_after(after_id, limit=n)`` reads the next ``n`` journal rows
and turns each into the delta contract's changes, from the state the thing has *now*:

    code       code.issued (whole), then code.revoked if it is revoked, code.linked if it
               is linked to a member at HQ
    member     member.changed
    identities member.identities: the member's whole set of presence identities now, with
               the programme's card salt; the empty set for a member without proximity
               consent (``identity_store.sets``), so no key of theirs ever leaves HQ
    campaign   campaign.changed: its body as the snapshot ships it to that store (a store's
               allocation written into its copy)
    store_key  store_key.registered, then store_key.revoked if it is revoked

Which stores: a row scoped to one store goes to it; a row for every store (``*``) goes to every
store, except that a campaign restricted to some stores (``allowed_stores``), and its codes,
go only to those. A campaign with store allocations is sent plain to every store and then,
under the same journal id, each allocated store's own copy, so each ends with its own.

It opens the central store read-only for each call and closes it after, so HQ's CLI can write
between two steps. A write holding SQLite's lock longer than the busy timeout (a large mint)
makes the call answer nothing (logged); the next step reads from the same cursor.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final, TypeVar

from cloud_sync.contract.delta import Change, Op
from cloud_sync.contract.member_identities import encode_body, salt_text
from cloud_sync.hq import identity_store
from cloud_sync.hq.central_store import from_epoch
from cloud_sync.hq.change_journal import ALL, Kind
from cloud_sync.hq.fanout.producer import JournalEntry, JournalPage
from cloud_sync.hq.hq_schema import transaction
from edge_agent.domain.token_codec import public_key_text

log = logging.getLogger(__name__)
_IN_CHUNK: Final = 500  # keys per IN (...) lookup, well under SQLite's variable limit
BUSY_MS: Final = 2_000
T = TypeVar("T")


class CentralJournal:
    """The journal of the central store at ``path`` (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def changes_after(self, after_id: int, *, limit: int) -> JournalPage:
        nothing = JournalPage(entries=(), through=after_id)

        def read(conn: sqlite3.Connection) -> JournalPage:
            with transaction(conn, begin="DEFERRED"):  # one read of the journal and the state
                return _page(conn, after_id, limit) or nothing

        return self._read(read, nothing)

    def last_id(self) -> int | None:
        def read(conn: sqlite3.Connection) -> int | None:
            return int(conn.execute("SELECT coalesce(max(id), 0) FROM changes").fetchone()[0])

        return self._read(read, None)

    def _read(self, read: Callable[[sqlite3.Connection], T], failed: T) -> T:
        """``read`` on a read-only connection of its own, or ``failed`` (logged) when the
        store cannot be opened or a long write holds its lock (the next step reads again)."""
        try:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        except sqlite3.OperationalError as exc:
            log.warning("fan-out: central store %s not readable: %s", self.path, exc)
            return failed
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
            return read(conn)
        except sqlite3.OperationalError as exc:
            log.warning("fan-out: central store busy, journal read next step: %s", exc)
            return failed
        finally:
            conn.close()


Row = tuple[int, str, str, str, int]  # id, scope, kind, key, at


def _page(conn: sqlite3.Connection, after_id: int, limit: int) -> JournalPage | None:
    rows: list[Row] = conn.execute(
        "SELECT id, scope, kind, key, at FROM changes WHERE id > ? ORDER BY id LIMIT ?",
        (after_id, limit),
    ).fetchall()
    if not rows:
        return None
    keys: dict[str, set[str]] = {k.value: set() for k in Kind}
    for _, _, kind, key, _ in rows:
        keys.setdefault(kind, set()).add(key)
    state = _State(conn, keys)
    entries = [
        JournalEntry(id=row[0], store_id=store, change=change)
        for row in rows
        for store, change in state.changes(row)
    ]
    return JournalPage(entries=tuple(entries), through=rows[-1][0])


class _State:
    """The current state of every thing a page of the journal names, read in bulk."""

    def __init__(self, conn: sqlite3.Connection, keys: dict[str, set[str]]) -> None:
        self.codes = _by_key(
            conn,
            "SELECT code, campaign_id, member_id, status, channel, variant, issued_at, "
            "expires_at, linked_member_id FROM codes WHERE code IN ({})",
            keys[Kind.CODE],
        )
        self.members = _by_key(
            conn,
            "SELECT member_id, segment, tier, proximity_consent FROM members "
            "WHERE member_id IN ({})",
            keys[Kind.MEMBER],
        )
        self.identities = identity_store.sets(conn, keys[Kind.IDENTITIES])
        self.card_salt = identity_store.card_salt(conn) if self.identities else None
        self.store_keys = _by_key(
            conn,
            "SELECT key_id, store_id, public_key, registered_at, revoked_at FROM store_keys "
            "WHERE key_id IN ({})",
            keys[Kind.STORE_KEY],
        )
        wanted = keys[Kind.CAMPAIGN] | {r[1] for r in self.codes.values()}
        self.campaigns: dict[str, dict[str, object]] = {
            str(r[0]): json.loads(r[1])
            for r in _rows(
                conn, "SELECT campaign_id, body FROM campaigns WHERE campaign_id IN ({})", wanted
            )
        }
        self.allocations: dict[str, list[tuple[str, int]]] = {}
        for campaign, store, allocation in _rows(
            conn,
            "SELECT campaign_id, store_id, allocation FROM store_allocations "
            "WHERE campaign_id IN ({}) ORDER BY store_id",
            keys[Kind.CAMPAIGN],
        ):
            self.allocations.setdefault(campaign, []).append((store, int(allocation)))

    def changes(self, row: Row) -> list[tuple[str, Change]]:
        _, scope, kind, key, at = row
        if kind == Kind.CODE:
            return self._code(scope, key, at)
        if kind == Kind.MEMBER:
            return self._member(scope, key)
        if kind == Kind.CAMPAIGN:
            return self._campaign(scope, key)
        if kind == Kind.STORE_KEY:
            return self._store_key(scope, key)
        if kind == Kind.IDENTITIES:
            return self._identities(row[0], scope, key)
        log.warning("fan-out: journal row %s of unknown kind %r skipped", row[0], kind)
        return []

    def _targets(self, scope: str, campaign_id: str) -> list[str]:
        """Where something of ``campaign_id`` scoped ``scope`` goes (see the docstring)."""
        allowed = self.campaigns.get(campaign_id, {}).get("allowed_stores") or []
        assert isinstance(allowed, list)
        if scope == ALL:
            return sorted(str(s) for s in allowed) or [ALL]
        return [scope] if not allowed or scope in allowed else []

    def _code(self, scope: str, key: str, at: int) -> list[tuple[str, Change]]:
        row = self.codes.get(key)
        if row is None:
            return []
        code, campaign, member, status, channel, variant, issued, expires, linked = row
        changes = [
            Change(
                op=Op.CODE_ISSUED,
                fields={
                    "code": code,
                    "campaign_id": campaign,
                    "member_id": member,
                    "channel": channel,
                    "variant": variant,
                    "issued_at": None if issued is None else from_epoch(issued),
                    "expires_at": None if expires is None else from_epoch(expires),
                },
            )
        ]
        if status == "revoked":
            changes.append(Change(op=Op.CODE_REVOKED, fields={"code": code, "at": from_epoch(at)}))
        if linked is not None:
            changes.append(
                Change(
                    op=Op.CODE_LINKED,
                    fields={"code": code, "member_id": linked, "at": from_epoch(at)},
                )
            )
        return [(store, c) for store in self._targets(scope, campaign) for c in changes]

    def _member(self, scope: str, key: str) -> list[tuple[str, Change]]:
        row = self.members.get(key)
        if row is None:
            return []
        member_id, segment, tier, consent = row
        fields = {
            "member_id": member_id,
            "segment": segment,
            "tier": tier,
            "proximity_consent": bool(consent),
        }
        return [(scope, Change(op=Op.MEMBER_CHANGED, fields=fields))]

    def _identities(self, row_id: int, scope: str, key: str) -> list[tuple[str, Change]]:
        if self.card_salt is None:  # made when the file is opened: changed behind HQ's back
            log.warning("fan-out: journal row %s skipped: the central store has no salt", row_id)
            return []
        fields = {
            "member_id": key,
            "card_salt": salt_text(self.card_salt),
            "body": encode_body(self.identities[key]),
        }
        return [(scope, Change(op=Op.MEMBER_IDENTITIES, fields=fields))]

    def _campaign(self, scope: str, key: str) -> list[tuple[str, Change]]:
        body = self.campaigns.get(key)
        if body is None:
            return []
        allocated = dict(self.allocations.get(key, []))
        out: list[tuple[str, Change]] = []
        for store in self._targets(scope, key):
            out.append((store, _campaign_change(key, body, allocated.get(store))))
            if store == ALL:  # then each allocated store's own copy, after the plain one
                out += [
                    (s, _campaign_change(key, body, a))
                    for s, a in sorted(allocated.items())
                    if self._targets(s, key)
                ]
        return out

    def _store_key(self, scope: str, key: str) -> list[tuple[str, Change]]:
        row = self.store_keys.get(key)
        if row is None:
            return []
        key_id, store_id, public_key, registered_at, revoked_at = row
        registered = {
            "key_id": key_id,
            "store_id": store_id,
            "public_key": public_key_text(bytes(public_key)),
            "registered_at": from_epoch(registered_at),
        }
        out = [(scope, Change(op=Op.STORE_KEY_REGISTERED, fields=registered))]
        if revoked_at is not None:
            revoked = {"key_id": key_id, "revoked_at": from_epoch(int(revoked_at))}
            out.append((scope, Change(op=Op.STORE_KEY_REVOKED, fields=revoked)))
        return out


def _campaign_change(campaign_id: str, body: dict[str, object], allocation: int | None) -> Change:
    copy = body if allocation is None else {**body, "store_allocation": allocation}
    text = json.dumps(copy, sort_keys=True)  # as the snapshot writes it (snapshot.py)
    return Change(op=Op.CAMPAIGN_CHANGED, fields={"campaign_id": campaign_id, "body": text})


def _by_key(conn: sqlite3.Connection, sql: str, keys: Iterable[str]) -> dict[str, tuple[Any, ...]]:
    """``sql``'s rows for ``keys`` by their first column, the key."""
    return {str(r[0]): r for r in _rows(conn, sql, keys)}


def _rows(conn: sqlite3.Connection, sql: str, keys: Iterable[str]) -> list[tuple[Any, ...]]:
    """``sql``'s rows for ``keys``, looked up ``_IN_CHUNK`` at a time."""
    ordered = sorted(keys)
    out: list[tuple[Any, ...]] = []
    for start in range(0, len(ordered), _IN_CHUNK):
        chunk = ordered[start : start + _IN_CHUNK]
        out += conn.execute(sql.format(", ".join("?" * len(chunk))), chunk).fetchall()
    return out
