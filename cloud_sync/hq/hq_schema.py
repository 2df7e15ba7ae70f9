"""HQ database schema as code: migrations, connection pragmas, the one transaction helper.

The journal is a rollback journal, not WAL: HQ's heavy write is a bulk load of millions of
sorted rows into new pages, which a rollback journal barely touches, while WAL would write
every page twice (WAL, then checkpoint). ``page_size`` 16 KiB measured ~10% faster for that
load. ``synchronous = FULL``: a committed mint survives a power cut; a bulk load costs a
handful of syncs at COMMIT, not one per row.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from cloud_sync.hq.errors import StoreFileError

PAGE_SIZE = 16_384
CACHE_KIB = 262_144  # 256 MiB of page cache: a 10M-code load spills far less often
Begin = Literal["IMMEDIATE", "DEFERRED"]

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE hq_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
        "CREATE TABLE namespaces (ns_index INTEGER PRIMARY KEY, namespace TEXT NOT NULL UNIQUE, "
        "minter_id TEXT NOT NULL, assigned_at INTEGER NOT NULL, issued INTEGER NOT NULL)",
        "CREATE INDEX namespaces_by_minter ON namespaces (minter_id, ns_index)",
        "CREATE TABLE campaigns (campaign_id TEXT PRIMARY KEY, body TEXT NOT NULL, "
        "starts_at INTEGER NOT NULL, ends_at INTEGER NOT NULL, created_at INTEGER NOT NULL) "
        "WITHOUT ROWID",
        "CREATE TABLE store_allocations (campaign_id TEXT NOT NULL, store_id TEXT NOT NULL, "
        "allocation INTEGER NOT NULL, PRIMARY KEY (campaign_id, store_id)) WITHOUT ROWID",
        "CREATE TABLE members (member_id TEXT PRIMARY KEY, segment TEXT NOT NULL, "
        "tier TEXT NOT NULL, proximity_consent INTEGER NOT NULL) WITHOUT ROWID",
        # One row per mint, import or generic creation: what made each code (audit).
        "CREATE TABLE issue_runs (run_id INTEGER PRIMARY KEY, campaign_id TEXT NOT NULL, "
        "kind TEXT NOT NULL, namespaces TEXT NOT NULL, created INTEGER NOT NULL, "
        "at INTEGER NOT NULL)",
        # The snapshot's columns first, in the snapshot's order, then HQ's own.
        "CREATE TABLE codes (code TEXT PRIMARY KEY, campaign_id TEXT NOT NULL, member_id TEXT, "
        "status TEXT NOT NULL, channel TEXT NOT NULL, variant TEXT NOT NULL, "
        "issued_at INTEGER, expires_at INTEGER, linked_member_id TEXT, "
        "run_id INTEGER NOT NULL) WITHOUT ROWID",
        # Export, "does this member already hold a code" and snapshots filter by campaign.
        "CREATE INDEX codes_by_campaign ON codes (campaign_id)",
    ),
    (
        # Every store's coupon signing public key (store_keys.py); shipped whole in snapshots.
        # Revoked keys stay (revoked_at set) so stores refuse them, their own included.
        "CREATE TABLE store_keys (key_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, "
        "public_key BLOB NOT NULL, registered_at INTEGER NOT NULL, revoked_at INTEGER) "
        "WITHOUT ROWID",
    ),
    (
        # Literal (generic and imported) codes again, so minting can find those within one
        # character of the format's length without scanning every code (literal_codes.py).
        "CREATE TABLE literal_codes (code TEXT PRIMARY KEY) WITHOUT ROWID",
        "INSERT INTO literal_codes SELECT code FROM codes WHERE run_id IN "
        "(SELECT run_id FROM issue_runs WHERE kind IN ('generic', 'imported'))",
        # Each literal under itself and its one-character deletions: two literals one mistype
        # apart share a key, so a new literal finds them in length + 1 probes (NearIndex).
        "CREATE TABLE literal_keys (key TEXT NOT NULL, code TEXT NOT NULL, "
        "PRIMARY KEY (key, code)) WITHOUT ROWID",
        "INSERT OR IGNORE INTO literal_keys (key, code) "
        "WITH RECURSIVE cut(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM cut WHERE i < 40) "
        "SELECT substr(code, 1, i) || substr(code, i + 2), code FROM literal_codes, cut "
        "WHERE i < length(code) UNION ALL SELECT code, code FROM literal_codes",
    ),
    (
        # The change journal (change_journal.py): what each write changed, by kind and key,
        # for the fan-out to turn into the stores' deltas. AUTOINCREMENT: an id is never
        # reused, even after pruning, so the fan-out's cursor can never skip a new change.
        "CREATE TABLE changes (id INTEGER PRIMARY KEY AUTOINCREMENT, scope TEXT NOT NULL, "
        "kind TEXT NOT NULL, key TEXT NOT NULL, at INTEGER NOT NULL)",
    ),
    (
        # Consenting members' presence identities (identity_store.py), shipped to the stores
        # as member.identities. Keys: rotating-identifier keys with their validity windows
        # (epoch seconds, valid_until exclusive). A tag or a card names one member at most.
        # Cards are the salted digests of their UIDs (contract card_uid.py), never the UID;
        # the salt is hq_meta.card_salt, made once (CentralStore.open/create).
        "CREATE TABLE identity_keys (member_id TEXT NOT NULL, key_id TEXT NOT NULL, "
        "key BLOB NOT NULL, valid_from INTEGER NOT NULL, valid_until INTEGER, "
        "PRIMARY KEY (member_id, key_id)) WITHOUT ROWID",
        "CREATE TABLE identity_tags (kind TEXT NOT NULL, value BLOB NOT NULL, "
        "member_id TEXT NOT NULL, enrolled_at INTEGER NOT NULL, PRIMARY KEY (kind, value)) "
        "WITHOUT ROWID",
        "CREATE INDEX identity_tags_by_member ON identity_tags (member_id)",
        "CREATE TABLE identity_cards (digest TEXT PRIMARY KEY, member_id TEXT NOT NULL, "
        "enrolled_at INTEGER NOT NULL) WITHOUT ROWID",
        "CREATE INDEX identity_cards_by_member ON identity_cards (member_id)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


def connect(path: Path) -> sqlite3.Connection:
    """Open ``path`` (creating it if absent) with HQ's pragmas; autocommit, explicit BEGIN."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # effective only on a new file
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection, *, begin: Begin = "IMMEDIATE") -> Iterator[None]:
    """HQ's one transaction helper: every write at HQ runs inside it.

    Outermost: ``BEGIN IMMEDIATE`` (the write lock before anything is read, so a
    read-then-write cannot race another HQ process) ... ``COMMIT``. ``begin="DEFERRED"`` is for
    a transaction that only reads the main file and writes elsewhere (the snapshot export into
    an attached file): it leaves HQ's write lock free. Nested (a mint creating its members and
    codes as one): a savepoint of the caller's transaction, so a nested block is all-or-nothing
    on its own too, durable with the outer COMMIT; savepoints may share a name, ROLLBACK TO and
    RELEASE act on the newest. Any exception, BaseException included, rolls the block back.
    HQ runs no group commit (no caller catches a failure and writes on), so unlike the box's
    helper this one need not count levels to notice a transaction that SQLite ended early.
    """
    nested = conn.in_transaction
    conn.execute("SAVEPOINT hq_nested" if nested else f"BEGIN {begin}")
    try:
        yield
        conn.execute("RELEASE hq_nested" if nested else "COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite may already have rolled back (disk full, I/O error)
            conn.execute("ROLLBACK TO hq_nested" if nested else "ROLLBACK")
            if nested:
                conn.execute("RELEASE hq_nested")
        raise


def migrate(conn: sqlite3.Connection, path: Path, *, fresh: bool) -> None:
    """Apply the missing migrations; ``fresh``: the file was just created by us."""
    try:
        with transaction(conn):
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version == 0 and not fresh:
                # Never turn somebody else's SQLite file into an HQ database.
                raise StoreFileError(f"{path} is not an HQ database")
            if version > SCHEMA_VERSION:
                raise StoreFileError(
                    f"{path} has schema version {version}; this HQ tool knows {SCHEMA_VERSION}"
                )
            for number, steps in enumerate(MIGRATIONS[version:], start=version + 1):
                for step in steps:
                    conn.execute(step)
                conn.execute(f"PRAGMA user_version = {number}")
    except sqlite3.DatabaseError as exc:
        raise StoreFileError(f"{path} is not a usable HQ database: {exc}") from exc
