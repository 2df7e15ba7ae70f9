"""The store snapshot file, defined once: HQ writes it (``cloud_sync/hq/snapshot.py``), the box
checks and loads it (``edge_agent/cache/snapshot_load.py``), and the box's cache keeps HQ's
data in tables of the same columns (``edge_agent/cache/schema.py``).

A snapshot is a SQLite file with these tables (each DDL takes the table's full name, so the
same definition creates ``snap.codes`` at HQ and ``codes_next`` on the box)::

    snapshot_meta  format_version, created_at (ISO 8601 UTC), store_id (a store or '*'),
                   namespace (from format 2: the store's minting namespace, '' for none)
    campaigns      campaign_id, body (promotion_codec JSON)
    members        member_id, segment, tier, proximity_consent
    codes          code, campaign_id, member_id, status, channel, variant, issued_at,
                   expires_at, linked_member_id   (times: UTC epoch seconds)
    store_keys     key_id, store_id, public_key, registered_at, revoked_at   (optional)

Format 1 had no ``namespace``; a box reads 1 and 2 and refuses any other.

A snapshot cut for one store may also say where in the store's delta stream it was cut
(``cloud_sync/contract/delta.py``), so the box follows the stream from there:
``snapshot_meta.delta_stream`` (32 hex) and ``delta_seq`` (the last delta the snapshot holds,
>= 0), both or neither, with what the fleet had used by then, the state deltas carry beyond the
tables above (optional, with the position only)::

    uses_elsewhere    code, box_id, store_id, till_id, transaction_id, at_us, uses
                      (each box's uses of a code, and its last redemption; UTC microseconds)
    campaign_box_use  campaign_id, box_id, store_id, redemptions, discount

These are the box's own tables of the same names (``edge_agent/follow/follow_schema.py``).
A snapshot without a position leaves the box's position and these tables as they were.

With the position, optionally (an HQ from before it leaves it out; a box from before it
ignores it), the fleet's recent receipt coupon issues to members, for the frequency caps::

    issues_elsewhere  box_id, till_id, transaction_id, member_id, issued_us
                      (one row per sale, of HQ's last 90 days: ``member_issues.WINDOW``)

The box adds them to its own table of the name (``edge_agent/follow/issues_elsewhere.py``),
never deleting: an issue is a fact of its sale, and the box prunes by its own lookback.

Optionally, in any snapshot (an HQ from before it leaves it out; a box from before it ignores
it), consenting members' presence identities, for recognising them in the store::

    member_identities  member_id, body   (one row per consenting member with at least one
                       identity; body: ``member_identities.encode_body`` JSON text, the same
                       as the ``member.identities`` delta op carries)
    snapshot_meta.card_salt  the programme's card salt, 32 hex (with the table only)

A box loading a snapshot with the table replaces every identity it held with the table's; without
it, it keeps its own, less those of members the snapshot's ``members`` say have no consent.

Optionally, the points balances HQ's ledger holds (issue 11), for bounding burns offline::

    points_balances  member_id, programme, balance, marks   (balance may be negative; marks:
                     ``points_balance.encode_marks`` text, as ``member.points`` carries)

A box loading a snapshot with the table replaces the balances it heard with the table's.
"""

from __future__ import annotations

from collections.abc import Iterable

FORMAT_VERSION = "2"
READABLE_FORMATS = ("1", "2")  # format 1 carries no namespace: no receipt coupons after it
ALL_STORES = "*"

META_DDL = "CREATE TABLE {name} (key TEXT PRIMARY KEY, value TEXT)"
META_COLUMNS = ("key", "value")

CAMPAIGNS_DDL = "CREATE TABLE {name} (campaign_id TEXT PRIMARY KEY, body TEXT NOT NULL)"
CAMPAIGN_COLUMNS = ("campaign_id", "body")

MEMBERS_DDL = (
    "CREATE TABLE {name} (member_id TEXT PRIMARY KEY, segment TEXT NOT NULL, "
    "tier TEXT NOT NULL, proximity_consent INTEGER NOT NULL) WITHOUT ROWID"
)
MEMBER_COLUMNS = ("member_id", "segment", "tier", "proximity_consent")

CODES_DDL = """CREATE TABLE {name} (
    code TEXT PRIMARY KEY,
    campaign_id TEXT NOT NULL,
    member_id TEXT,
    status TEXT NOT NULL,
    channel TEXT NOT NULL,
    variant TEXT NOT NULL,
    issued_at INTEGER,
    expires_at INTEGER,
    linked_member_id TEXT
) WITHOUT ROWID"""
CODE_COLUMNS = (
    "code",
    "campaign_id",
    "member_id",
    "status",
    "channel",
    "variant",
    "issued_at",
    "expires_at",
    "linked_member_id",
)

STORE_KEYS_DDL = (
    "CREATE TABLE {name} (key_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, "
    "public_key BLOB NOT NULL, registered_at INTEGER NOT NULL, revoked_at INTEGER) WITHOUT ROWID"
)
STORE_KEY_COLUMNS = ("key_id", "store_id", "public_key", "registered_at", "revoked_at")

USES_ELSEWHERE_DDL = (
    "CREATE TABLE {name} (code TEXT NOT NULL, box_id TEXT NOT NULL, store_id TEXT NOT NULL, "
    "till_id TEXT, transaction_id TEXT, at_us INTEGER NOT NULL, uses INTEGER NOT NULL, "
    "PRIMARY KEY (code, box_id)) WITHOUT ROWID"
)
USES_ELSEWHERE_COLUMNS = (
    "code",
    "box_id",
    "store_id",
    "till_id",
    "transaction_id",
    "at_us",
    "uses",
)
CAMPAIGN_BOX_USE_DDL = (
    "CREATE TABLE {name} (campaign_id TEXT NOT NULL, box_id TEXT NOT NULL, "
    "store_id TEXT NOT NULL, redemptions INTEGER NOT NULL, discount INTEGER NOT NULL, "
    "PRIMARY KEY (campaign_id, box_id)) WITHOUT ROWID"
)
CAMPAIGN_BOX_USE_COLUMNS = ("campaign_id", "box_id", "store_id", "redemptions", "discount")
ISSUES_ELSEWHERE_DDL = (
    "CREATE TABLE {name} (box_id TEXT NOT NULL, till_id TEXT NOT NULL, "
    "transaction_id TEXT NOT NULL, member_id TEXT NOT NULL, issued_us INTEGER NOT NULL, "
    "PRIMARY KEY (box_id, till_id, transaction_id)) WITHOUT ROWID"
)
ISSUES_ELSEWHERE_COLUMNS = ("box_id", "till_id", "transaction_id", "member_id", "issued_us")
MEMBER_IDENTITIES_DDL = (
    "CREATE TABLE {name} (member_id TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID"
)
MEMBER_IDENTITIES_COLUMNS = ("member_id", "body")
# HQ's regular points balance of each member with points, and what it includes
# (``points_balance.py``: ``marks`` is that module's text).
POINTS_BALANCES_DDL = (
    "CREATE TABLE {name} (member_id TEXT NOT NULL, programme TEXT NOT NULL, "
    "balance INTEGER NOT NULL, marks TEXT NOT NULL, PRIMARY KEY (member_id, programme)) "
    "WITHOUT ROWID"
)
POINTS_BALANCES_COLUMNS = ("member_id", "programme", "balance", "marks")
# The tables that come with a delta stream position, and their columns.
FOLLOW_TABLES: dict[str, tuple[str, ...]] = {
    "uses_elsewhere": USES_ELSEWHERE_COLUMNS,
    "campaign_box_use": CAMPAIGN_BOX_USE_COLUMNS,
}

# Tables every snapshot has, with their columns in order (store_keys is optional).
REQUIRED_TABLES: dict[str, tuple[str, ...]] = {
    "snapshot_meta": META_COLUMNS,
    "campaigns": CAMPAIGN_COLUMNS,
    "members": MEMBER_COLUMNS,
    "codes": CODE_COLUMNS,
}
# Every table in the order HQ creates them.
DDL_BY_TABLE = {
    "snapshot_meta": META_DDL,
    "campaigns": CAMPAIGNS_DDL,
    "members": MEMBERS_DDL,
    "codes": CODES_DDL,
    "store_keys": STORE_KEYS_DDL,
    "uses_elsewhere": USES_ELSEWHERE_DDL,
    "campaign_box_use": CAMPAIGN_BOX_USE_DDL,
    "issues_elsewhere": ISSUES_ELSEWHERE_DDL,
    "member_identities": MEMBER_IDENTITIES_DDL,
    "points_balances": POINTS_BALANCES_DDL,
}


def ddl_script(tables: Iterable[str] = REQUIRED_TABLES, *, schema: str = "") -> str:
    """One script creating ``tables`` (default: the required ones) under their own names, in
    ``schema`` when given: for writers that build a snapshot file directly (tests, benches)."""
    prefix = f"{schema}." if schema else ""
    return "".join(f"{DDL_BY_TABLE[t].format(name=prefix + t)};\n" for t in tables)
