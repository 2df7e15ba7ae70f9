"""The cache file's schema, as an ordered list of migrations, and how a connection is opened.

Theory of operation
-------------------
``PRAGMA user_version`` holds how many migrations a file has had. Opening a file runs the
missing ones in order, each in its own transaction, so an old file upgrades in place and an
interrupted upgrade resumes where it stopped. A file with a higher version was written by a newer
agent: it is refused (``SchemaTooNewError``) rather than half-understood.

Codes, campaigns and members are HQ's data and are replaced whole by each snapshot
(``snapshot_load.py``). Everything the store itself learns (uses, holds, redemptions, links,
events, the outbox) lives in separate tables keyed by code, so a reload never loses it.

Times: snapshot columns are UTC epoch seconds (the agreed snapshot format); the store's own
tables use UTC epoch microseconds (``*_us``) so datetimes round-trip exactly.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path

import sqlite_utils

from cloud_sync.contract import snapshot_format
from edge_agent.cache import key_schema, member_identities, till_scope_schema
from edge_agent.cache.transaction import transaction
from edge_agent.config_push import config_push_schema
from edge_agent.errors import CacheError, SchemaTooNewError
from edge_agent.events import chain_schema
from edge_agent.follow import follow_schema, issues_elsewhere
from edge_agent.issuing import issue_schema
from edge_agent.points import points_schema
from edge_agent.printing import print_schema
from edge_agent.proximity import offer_schema

# HQ's tables (codes, members) have the snapshot's columns, defined once in the wire contract.
CODES_DDL = snapshot_format.CODES_DDL


def _v1_cache(db: sqlite_utils.Database) -> None:
    """HQ's data as shipped in snapshots, plus the box's identity."""
    # value is untyped on purpose: next_seq is an integer, the rest text.
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value NOT NULL) WITHOUT ROWID")
    db.create_table(
        "campaigns", {"campaign_id": str, "body": str}, pk="campaign_id", not_null={"body"}
    )
    db.execute(snapshot_format.MEMBERS_DDL.format(name="members"))
    db.execute(snapshot_format.CODES_DDL.format(name="codes"))


def _v2_redemption_state(db: sqlite_utils.Database) -> None:
    """The store's own mutable state: kept apart from codes so a snapshot reload keeps it."""
    for ddl in (
        # last_redemption_id saves a lookup a scan of a generic code's many redemptions.
        "CREATE TABLE code_usage (code TEXT PRIMARY KEY, uses INTEGER NOT NULL, "
        "last_redemption_id INTEGER) WITHOUT ROWID",
        "CREATE TABLE member_code_usage (code TEXT NOT NULL, member_id TEXT NOT NULL, "
        "uses INTEGER NOT NULL, PRIMARY KEY (code, member_id)) WITHOUT ROWID",
        # uses/money: what this box knows of the whole campaign; store_uses: this store's share.
        "CREATE TABLE campaign_usage (campaign_id TEXT PRIMARY KEY, uses INTEGER NOT NULL, "
        "money INTEGER NOT NULL, store_uses INTEGER NOT NULL) WITHOUT ROWID",
        "CREATE TABLE reservations (code TEXT NOT NULL, transaction_id TEXT NOT NULL, "
        "store_id TEXT NOT NULL, till_id TEXT NOT NULL, cashier_id TEXT NOT NULL, "
        "member_id TEXT, created_us INTEGER NOT NULL, until_us INTEGER NOT NULL, "
        "PRIMARY KEY (code, transaction_id)) WITHOUT ROWID",
        # UNIQUE (code, transaction_id): one bill can never be credited twice for one code.
        "CREATE TABLE redemptions (id INTEGER PRIMARY KEY, code TEXT NOT NULL, "
        "transaction_id TEXT NOT NULL, campaign_id TEXT NOT NULL, member_id TEXT, "
        "store_id TEXT NOT NULL, till_id TEXT NOT NULL, cashier_id TEXT NOT NULL, "
        "channel TEXT NOT NULL, variant TEXT NOT NULL, amount INTEGER NOT NULL, "
        "reversed_amount INTEGER NOT NULL DEFAULT 0, fully_reversed INTEGER NOT NULL DEFAULT 0, "
        "redeemed_us INTEGER NOT NULL, UNIQUE (code, transaction_id))",
        "CREATE INDEX redemptions_by_member ON redemptions (member_id, redeemed_us) "
        "WHERE member_id IS NOT NULL",
        "CREATE TABLE reversals (redemption_id INTEGER NOT NULL, return_id TEXT NOT NULL, "
        "amount INTEGER NOT NULL, reversed_us INTEGER NOT NULL, till_id TEXT NOT NULL, "
        "cashier_id TEXT NOT NULL, PRIMARY KEY (redemption_id, return_id))",
        "CREATE TABLE code_links (code TEXT PRIMARY KEY, member_id TEXT NOT NULL, "
        "mode TEXT NOT NULL, linked_us INTEGER NOT NULL) WITHOUT ROWID",
        # Idempotency: the stored answer to (transaction, code, operation).
        "CREATE TABLE requests (transaction_id TEXT NOT NULL, code TEXT NOT NULL, "
        "operation TEXT NOT NULL, response TEXT NOT NULL, created_us INTEGER NOT NULL, "
        "PRIMARY KEY (transaction_id, code, operation)) WITHOUT ROWID",
        # Integer sequence keys append at the right edge of the b-tree: no random-key slowdown.
        "CREATE TABLE ledger_events (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL, "
        "type TEXT NOT NULL, code TEXT, occurred_us INTEGER NOT NULL, body TEXT NOT NULL)",
        "CREATE INDEX ledger_events_by_code ON ledger_events (code, seq) WHERE code IS NOT NULL",
        "CREATE TABLE outbox (seq INTEGER PRIMARY KEY, payload TEXT NOT NULL)",
        "INSERT INTO meta (key, value) VALUES ('next_seq', 1)",
    ):
        db.execute(ddl)


def _v6_lookup_indexes(db: sqlite_utils.Database) -> None:
    """Indexes for the member's linked codes at checkout, and for housekeeping by age."""
    db.execute("CREATE INDEX code_links_by_member ON code_links (member_id)")
    db.execute("CREATE INDEX requests_by_age ON requests (created_us)")


def _v8_event_log(db: sqlite_utils.Database) -> None:
    """The box's event log gets its own name: ``ledger`` is the points ledger's."""
    db.execute("ALTER TABLE ledger_events RENAME TO events")
    db.execute("DROP INDEX ledger_events_by_code")
    db.execute("CREATE INDEX events_by_code ON events (code, seq) WHERE code IS NOT NULL")


Migration = Callable[[sqlite_utils.Database], None]
# Later migrations live beside the feature that owns their tables; the order here is final.
MIGRATIONS: tuple[Migration, ...] = (
    _v1_cache,
    _v2_redemption_state,
    issue_schema.migrate,  # v3: receipt coupons issued at checkout
    print_schema.migrate,  # v4: the durable print queue
    key_schema.migrate,  # v5: trusted store signing keys
    _v6_lookup_indexes,  # v6
    till_scope_schema.migrate,  # v7: sales, holds and stored answers keyed by till
    _v8_event_log,  # v8: ledger_events is now events (the event log)
    chain_schema.migrate,  # v9: meta.chain_head, the event hash chain's last link
    follow_schema.migrate,  # v10: what HQ's deltas say of other stores, HQ's announced keys
    config_push_schema.migrate,  # v11: the config HQ pushed: the last seen, the last good
    issues_elsewhere.migrate,  # v12: receipt coupons other boxes issued, for the caps here
    offer_schema.migrate,  # v13: proximity offers given or held out here
    member_identities.migrate,  # v14: consenting members' presence identities from HQ
    points_schema.migrate,  # v15: points at the till: postings, sales, returns, HQ balances
)
SCHEMA_VERSION = len(MIGRATIONS)


def connect(path: Path, *, cache_kib: int, busy_timeout_ms: int) -> sqlite_utils.Database:
    """Open ``path`` with the pragmas the agent relies on. Transactions are explicit."""
    # isolation_level=None: no implicit BEGIN; every write goes through transaction.py.
    # check_same_thread=False: the API layer creates the cache, then hands it to its one
    # SQLite thread; the cache is never used from two threads at once.
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise CacheError(f"{path}: cannot switch to WAL (journal_mode={mode})")
        # FULL: an acknowledged redemption survives a power cut (fsync of the WAL per commit).
        conn.execute("PRAGMA synchronous = FULL")
        # Automatic checkpoints landed on till requests (p99.9 ~10 ms); the agent calls
        # CodeCache.checkpoint() off the hot path instead.
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        # Negative: KiB. Bounds the page cache so a 10M-code file fits the RSS budget.
        conn.execute(f"PRAGMA cache_size = -{int(cache_kib)}")
        conn.execute("PRAGMA temp_store = FILE")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise CacheError(f"{path}: {exc}") from exc
    return sqlite_utils.Database(conn)


def migrate(db: sqlite_utils.Database, *, upto: int = SCHEMA_VERSION) -> int:
    """Bring the file up to ``upto`` migrations; return the version found before."""
    found = int(db.conn.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise SchemaTooNewError(found=found, supported=SCHEMA_VERSION)
    for version in range(found, upto):
        with transaction(db.conn) as conn:
            MIGRATIONS[version](db)
            if version == 0:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('box_id', ?)", (uuid.uuid4().hex,)
                )
            conn.execute(f"PRAGMA user_version = {version + 1}")
    return found
