"""Replace the cache's HQ data (codes, campaigns, members) with a snapshot file's, atomically.

Theory of operation
-------------------
1. Check the snapshot through a read-only connection: the agreed tables and columns,
   ``snapshot_meta`` (format_version '1' or '2', an aware ISO-8601 created_at, this store or
   '*', and from format 2 the store's minting ``namespace``, '' for none, in the code alphabet),
   every campaign body parses, and one scan of the codes finds no bad status, unknown campaign
   or mistyped time. Any failure raises ``SnapshotError`` before the cache is touched.
2. ATTACH it and copy each table into a ``*_next`` table in key order. Codes are copied in
   chunks of ``CHUNK`` rows, each its own transaction followed by a passive checkpoint: sorted
   appends into a WITHOUT ROWID table are what make 10M rows practical, the chunks let another
   connection's redemptions interleave, and the checkpoints keep the WAL from growing to the
   size of the whole table (automatic checkpoints are off).
3. Swap in one transaction: drop the old tables, rename the new ones, set ``synced_at``, record
   the snapshot's minting namespace in ``meta`` (removed when it carries none: format 1, or no
   assignment at HQ; receipt issuing then refuses to mint) and bump ``meta.generation``, which
   tells a running agent's other connection to drop what it parsed from the old tables.
   A crash before the swap leaves the old cache in place and some ``*_next`` debris that the
   next load drops; the swap itself is one SQLite transaction, so all or nothing.

Mutable state (uses, holds, redemptions, links, event log) is keyed by code in its own tables and
is never touched here.

A snapshot cut for this store at a point of its delta stream (``snapshot_meta.delta_stream``
and ``delta_seq``, with ``uses_elsewhere`` and ``campaign_box_use``: see ``snapshot_format``)
also sets, in the swap, where the cache follows the stream from and the other boxes' use of
codes and campaigns at that point (this box's own rows left out: it counts its own). Without a
position the cache's position and those tables are left as they were. Such a snapshot may also
carry HQ's recent receipt coupon issues to members (``issues_elsewhere``, optional): they are
added to the box's own table for its frequency caps (``edge_agent/follow/issues_elsewhere.py``),
so a new or lost cache does not hand a member a second coupon another store just gave them.

The optional ``member_identities`` table (consenting members' presence identities, with
``snapshot_meta.card_salt``) is checked whole (every body decodes) and, in the swap, replaces
every identity the box held; with or without it, the swap drops the identities of members the
new ``members`` table says have no consent (``edge_agent/cache/member_identities.py``).

The optional ``points_balances`` table (HQ's points balance of each member and its marks) is
checked whole (every marks text decodes) and, in the swap, replaces every balance the box held
(``edge_agent/points/balances.py``); without it the box's balances are left as they were.

The optional ``store_keys`` table (the chain's coupon signing keys) replaces the cache's in the
swap when the snapshot has it; a snapshot from an HQ that predates it leaves the keys alone
rather than distrusting every store. Its rows are checked like the rest: a key id that is not
the fingerprint of its 32-byte key refuses the whole snapshot.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cloud_sync.contract.snapshot_format import (
    CAMPAIGN_BOX_USE_COLUMNS,
    CAMPAIGNS_DDL,
    CODE_COLUMNS,
    CODES_DDL,
    FOLLOW_TABLES,
    ISSUES_ELSEWHERE_COLUMNS,
    MEMBER_COLUMNS,
    MEMBERS_DDL,
    READABLE_FORMATS,
    REQUIRED_TABLES,
    STORE_KEY_COLUMNS,
    USES_ELSEWHERE_COLUMNS,
)
from edge_agent.cache import member_identities
from edge_agent.cache.transaction import transaction
from edge_agent.domain.code_format import ALPHABET
from edge_agent.domain.promotion_codec import PromotionFormatError, promotion_from_dict
from edge_agent.domain.token_codec import key_id_of
from edge_agent.errors import SnapshotError
from edge_agent.follow import issues_elsewhere, stream_position
from edge_agent.issuing import issue_schema
from edge_agent.points import balances
from edge_agent.proximity import offer_schema

CHUNK = 500_000
MAX_NAMESPACE = 4  # the widest namespace a code format allows (config: namespace_length)
_TABLES = REQUIRED_TABLES
# Column lists are fixed constants, never input: the f-strings below cannot inject anything.
_COPY_MEMBERS_SQL = (
    f"INSERT INTO members_next SELECT {', '.join(MEMBER_COLUMNS)} "  # noqa: S608
    "FROM snap.members ORDER BY member_id"
)
_COPY_CODES_SQL = (
    f"INSERT INTO codes_next SELECT {', '.join(CODE_COLUMNS)} FROM snap.codes "  # noqa: S608
    "WHERE code > ? ORDER BY code LIMIT ?"
)
_BAD_CODE_SQL = """
SELECT code FROM codes
WHERE code IS NULL OR campaign_id IS NULL OR channel IS NULL OR variant IS NULL
   OR status NOT IN ('active', 'revoked')
   OR typeof(issued_at) NOT IN ('integer', 'null')
   OR typeof(expires_at) NOT IN ('integer', 'null')
   OR campaign_id NOT IN (SELECT campaign_id FROM campaigns)
LIMIT 1
"""
_BAD_MEMBER_SQL = """
SELECT member_id FROM members
WHERE member_id IS NULL OR segment IS NULL OR tier IS NULL OR proximity_consent NOT IN (0, 1)
LIMIT 1
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotInfo:
    format_version: str
    created_at: datetime
    store_id: str  # the snapshot's store, or '*'
    namespace: str | None  # where this store may mint receipt coupons; None: nowhere
    campaigns: int
    members: int
    codes: int
    seconds: float


def _check_keys(snap: sqlite3.Connection, path: Path) -> bool:
    """Whether the snapshot carries ``store_keys``; SnapshotError if it carries a bad one."""
    found = tuple(r[1] for r in snap.execute("PRAGMA table_info(store_keys)"))
    if not found:
        return False
    if found != STORE_KEY_COLUMNS:
        raise SnapshotError(f"{path}: table store_keys has columns {found}")
    for kid, store, raw, registered, revoked in snap.execute(
        "SELECT key_id, store_id, public_key, registered_at, revoked_at FROM store_keys"
    ):
        ok = (
            isinstance(raw, bytes)
            and len(raw) == 32
            and kid == key_id_of(raw)
            and isinstance(store, str)
            and bool(store)
            and isinstance(registered, int)
            and (revoked is None or isinstance(revoked, int))
        )
        if not ok:
            raise SnapshotError(f"{path}: store key {kid!r} is malformed")
    return True


@dataclass(frozen=True, slots=True, kw_only=True)
class _Checked:
    format_version: str
    created_at: datetime
    store_id: str
    namespace: str | None
    has_keys: bool
    follow: tuple[str, int] | None  # (stream, seq) the snapshot was cut at
    has_issues: bool = False  # it carries issues_elsewhere (with a position only)
    card_salt: str | None = None  # it carries member_identities, with this salt
    has_points: bool = False  # it carries points_balances


def _namespace(meta: dict[str, str], path: Path) -> str | None:
    value = meta.get("namespace", "")
    if meta.get("format_version") == "1" or value == "":
        return None
    if len(value) > MAX_NAMESPACE or any(ch not in ALPHABET for ch in value):
        raise SnapshotError(f"{path}: namespace {value!r} is not a code namespace")
    return value


def _check(path: Path, *, store_id: str) -> _Checked:
    """Read-only checks of everything the load relies on."""
    if not path.is_file():
        raise SnapshotError(f"{path}: no such snapshot file")
    try:
        snap = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.DatabaseError as exc:
        raise SnapshotError(f"{path}: {exc}") from exc
    try:
        for table, columns in _TABLES.items():
            found = tuple(r[1] for r in snap.execute(f"PRAGMA table_info({table})"))
            if not found:
                raise SnapshotError(f"{path}: missing table {table}")
            if found != columns:
                raise SnapshotError(f"{path}: table {table} has columns {found}, want {columns}")
        meta = {str(k): str(v) for k, v in snap.execute("SELECT key, value FROM snapshot_meta")}
        version = meta.get("format_version", "")
        if version not in READABLE_FORMATS:
            raise SnapshotError(
                f"{path}: format_version {version!r}, "
                f"this agent reads {' and '.join(READABLE_FORMATS)}"
            )
        namespace = _namespace(meta, path)
        try:
            created_at = datetime.fromisoformat(meta.get("created_at", ""))
        except ValueError as exc:
            raise SnapshotError(f"{path}: created_at: {exc}") from exc
        if created_at.tzinfo is None:
            raise SnapshotError(f"{path}: created_at needs a UTC offset")
        snap_store = meta.get("store_id", "")
        if snap_store not in ("*", store_id):
            raise SnapshotError(f"{path}: snapshot is for store {snap_store!r}, not {store_id!r}")
        for campaign_id, body in snap.execute("SELECT campaign_id, body FROM campaigns"):
            try:
                promotion = promotion_from_dict(json.loads(body))
            except (PromotionFormatError, ValueError, TypeError) as exc:
                raise SnapshotError(f"{path}: campaign {campaign_id!r}: {exc}") from exc
            if promotion.campaign_id != campaign_id:
                raise SnapshotError(f"{path}: campaign {campaign_id!r} body names another id")
        bad = snap.execute(_BAD_MEMBER_SQL).fetchone()
        if bad is not None:
            raise SnapshotError(f"{path}: member {bad[0]!r} is malformed")
        bad = snap.execute(_BAD_CODE_SQL).fetchone()
        if bad is not None:
            raise SnapshotError(f"{path}: code {bad[0]!r} is malformed or has no campaign")
        has_keys = _check_keys(snap, path)
        follow = _follow(snap, meta, path, store_id=snap_store)
        has_issues = follow is not None and _has_issues(snap, path)
        has_identities = member_identities.check_snapshot(snap, meta, path)
        has_points = balances.check_snapshot(snap, path)
    except sqlite3.DatabaseError as exc:
        raise SnapshotError(f"{path}: {exc}") from exc
    finally:
        snap.close()
    return _Checked(
        format_version=version,
        created_at=created_at.astimezone(UTC),
        store_id=snap_store,
        namespace=namespace,
        has_keys=has_keys,
        follow=follow,
        has_issues=has_issues,
        card_salt=meta.get("card_salt") if has_identities else None,
        has_points=has_points,
    )


def _has_issues(snap: sqlite3.Connection, path: Path) -> bool:
    """Whether the snapshot carries the fleet's recent issues (an HQ from before them does
    not); SnapshotError if its table is not the agreed one."""
    found = tuple(r[1] for r in snap.execute("PRAGMA table_info(issues_elsewhere)"))
    if not found:
        return False
    if found != ISSUES_ELSEWHERE_COLUMNS:
        raise SnapshotError(f"{path}: table issues_elsewhere has columns {found}")
    bad = snap.execute(
        "SELECT box_id FROM issues_elsewhere WHERE typeof(issued_us) != 'integer' "
        "OR box_id IS NULL OR till_id IS NULL OR transaction_id IS NULL OR member_id IS NULL "
        "LIMIT 1"
    ).fetchone()
    if bad is not None:
        raise SnapshotError(f"{path}: an issue of box {bad[0]!r} is malformed")
    return True


def _follow(
    snap: sqlite3.Connection, meta: dict[str, str], path: Path, *, store_id: str
) -> tuple[str, int] | None:
    """The delta stream position the snapshot was cut at, if it says one; SnapshotError if
    what it says is malformed."""
    stream, seq = meta.get("delta_stream"), meta.get("delta_seq")
    if stream is None and seq is None:
        return None
    if stream is None or seq is None:
        raise SnapshotError(f"{path}: delta_stream and delta_seq go together")
    if not re.fullmatch(r"[0-9a-f]{32}", stream) or not re.fullmatch(r"[0-9]{1,18}", seq):
        raise SnapshotError(f"{path}: delta_stream {stream!r} / delta_seq {seq!r} malformed")
    if store_id == "*":
        raise SnapshotError(f"{path}: a snapshot for every store cannot follow a store's stream")
    for table, columns in FOLLOW_TABLES.items():
        found = tuple(r[1] for r in snap.execute(f"PRAGMA table_info({table})"))
        if found != columns:
            raise SnapshotError(f"{path}: table {table} has columns {found}, want {columns}")
    return stream, int(seq)


def _drop_debris(conn: sqlite3.Connection) -> None:
    for table in ("codes_next", "campaigns_next", "members_next"):
        conn.execute(f"DROP TABLE IF EXISTS {table}")


def _copy(conn: sqlite3.Connection, *, chunk: int) -> int:
    """Build the ``*_next`` tables; return how many codes were copied."""
    with transaction(conn):
        _drop_debris(conn)
        conn.execute(CODES_DDL.format(name="codes_next"))
        # A member's codes at a tap (CodeCache.member_codes). Built as rows arrive; partial, so
        # anonymous codes cost nothing. Index names are per database and the index keeps its
        # name through the rename, so each load's is new (the old one goes with its table).
        conn.execute(
            f"CREATE INDEX codes_by_member_{uuid.uuid4().hex[:12]} ON codes_next (member_id) "
            "WHERE member_id IS NOT NULL"
        )
        conn.execute(CAMPAIGNS_DDL.format(name="campaigns_next"))
        conn.execute(MEMBERS_DDL.format(name="members_next"))
        conn.execute(
            "INSERT INTO campaigns_next SELECT campaign_id, body FROM snap.campaigns "
            "ORDER BY campaign_id"
        )
        conn.execute(_COPY_MEMBERS_SQL)
    last = ""  # every code sorts after the empty string
    total = 0
    while True:
        with transaction(conn):
            copied = conn.execute(_COPY_CODES_SQL, (last, chunk)).rowcount
            row = conn.execute("SELECT max(code) FROM codes_next").fetchone()
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        total += copied
        if copied < chunk:
            return total
        last = str(row[0])


def _swap(conn: sqlite3.Connection, checked: _Checked) -> None:
    created_at = checked.created_at
    with transaction(conn):
        # Coupons this store minted offline may not have reached HQ yet: carry them into the
        # new codes table in the same transaction, so no request ever sees them missing.
        issue_schema.restore_codes(conn, table="codes_next", now_s=int(created_at.timestamp()))
        offer_schema.restore_codes(conn, table="codes_next", now_s=int(created_at.timestamp()))
        for table in ("codes", "campaigns", "members"):
            conn.execute(f"DROP TABLE {table}")
            conn.execute(f"ALTER TABLE {table}_next RENAME TO {table}")
        member_identities.take_snapshot(
            conn, carried=checked.card_salt is not None, card_salt=checked.card_salt
        )
        if checked.has_points:
            box_id = str(conn.execute("SELECT value FROM meta WHERE key = 'box_id'").fetchone()[0])
            balances.take_snapshot(conn, box_id=box_id)
        if checked.has_keys:  # a handful of rows: replaced in place, inside the same swap
            conn.execute("DELETE FROM store_keys")
            conn.execute(
                "INSERT INTO store_keys SELECT key_id, store_id, public_key, registered_at, "
                "revoked_at FROM snap.store_keys ORDER BY key_id"
            )
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('synced_at', ?)",
            (created_at.isoformat(),),
        )
        if checked.follow is not None:
            _take_follow(conn, *checked.follow)
        if checked.has_issues:
            issues_elsewhere.take_snapshot(conn)
        if checked.namespace is None:
            conn.execute("DELETE FROM meta WHERE key = 'namespace'")
        else:
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('namespace', ?)",
                (checked.namespace,),
            )
        bump_generation(conn)


def _take_follow(conn: sqlite3.Connection, stream: str, seq: int) -> None:
    # This box's own uses are counted from its own tables, and HQ's copy of them is left out;
    # unless the box holds no record of that code or campaign (its cache was lost, or is new):
    # then HQ's word is all there is, and a code it redeemed before stays redeemed.
    own = "(SELECT value FROM meta WHERE key = 'box_id')"
    conn.execute("DELETE FROM uses_elsewhere")
    conn.execute(
        f"INSERT INTO uses_elsewhere SELECT {', '.join(USES_ELSEWHERE_COLUMNS)} "  # noqa: S608
        f"FROM snap.uses_elsewhere WHERE box_id != {own} "
        "OR code NOT IN (SELECT code FROM code_usage)"
    )
    conn.execute("DELETE FROM campaign_box_use")
    conn.execute(
        f"INSERT INTO campaign_box_use SELECT {', '.join(CAMPAIGN_BOX_USE_COLUMNS)} "  # noqa: S608
        f"FROM snap.campaign_box_use WHERE box_id != {own} "
        "OR campaign_id NOT IN (SELECT campaign_id FROM campaign_usage)"
    )
    stream_position.refresh_campaign_sums(conn)
    stream_position.follow(conn, stream=stream, watermark=seq)


def bump_generation(conn: sqlite3.Connection) -> None:
    """Inside the caller's transaction: mark the cache's HQ data as changed, so another
    connection's in-memory copies (``CodeCache`` parsed promotions) are dropped."""
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('generation', '1') ON CONFLICT (key) "
        "DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)"
    )


def load_snapshot(
    conn: sqlite3.Connection, path: Path, *, store_id: str, chunk: int = CHUNK
) -> SnapshotInfo:
    """Check, copy and swap in the snapshot at ``path`` (see the module docstring)."""
    started = time.perf_counter()
    checked = _check(path, store_id=store_id)
    conn.execute("ATTACH DATABASE ? AS snap", (str(path),))
    try:
        try:
            codes = _copy(conn, chunk=chunk)
        except sqlite3.DatabaseError as exc:
            with transaction(conn):
                _drop_debris(conn)
            raise SnapshotError(f"{path}: {exc}") from exc
        _swap(conn, checked)
    finally:
        conn.execute("DETACH DATABASE snap")
    # The old tables' pages went to the free list; the WAL holds the swap: fold it in now.
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    counts = [
        int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # noqa: S608 - fixed names
        for t in ("campaigns", "members")
    ]
    return SnapshotInfo(
        format_version=checked.format_version,
        created_at=checked.created_at,
        store_id=checked.store_id,
        namespace=checked.namespace,
        campaigns=counts[0],
        members=counts[1],
        codes=codes,
        seconds=time.perf_counter() - started,
    )
