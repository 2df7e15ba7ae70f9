"""The central store's change journal: what each of HQ's writes changed, for the stores.

Theory of operation
-------------------
Every write at HQ that changes what a store's boxes hold (a code minted, imported, created,
revoked or linked; a member created or changed; a campaign created, replaced or given a store
allocation; a store key registered or revoked; a member's presence identities enrolled or
removed, or their proximity consent given or withdrawn) records, in the same transaction, one
journal row per thing it touched: its ``Kind``, its key (the code, the member id, the campaign
id, the key id) and a ``scope`` (``ALL`` or one store). A rolled-back write leaves no row; a
committed one always has its rows, so the fan-out (``fanout/central_journal.py``) cannot miss a
change nor see one that did not happen.

A row names *what* changed, not *how*: the fan-out reads the thing's state when it turns the
row into changes, and each change of the delta contract carries the whole new state. So a code
minted and then revoked before the fan-out saw either is sent as issued, then revoked, twice
over (two rows), which the box applies as one; nothing is ever sent that HQ no longer holds.

Bulk writes journal in bulk: a mint's codes go in with ``INSERT ... SELECT FROM json_each``
from the same JSON array the codes came from (SQLite copies them; no Python object per code).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from enum import StrEnum
from typing import Final

ALL: Final = "*"
_INSERT: Final = "INSERT INTO changes (scope, kind, key, at) VALUES (?, ?, ?, ?)"


class Kind(StrEnum):
    CODE = "code"
    MEMBER = "member"
    CAMPAIGN = "campaign"
    STORE_KEY = "store_key"
    IDENTITIES = "identities"  # a member's presence identities (keyed by member id)


def record(
    conn: sqlite3.Connection,
    kind: Kind,
    keys: Iterable[str],
    *,
    at: int,
    scope: str = ALL,
) -> None:
    """Journal ``keys`` of ``kind`` (``at``: epoch seconds); call inside the write
    transaction that changed them."""
    conn.executemany(_INSERT, ((scope, kind.value, key, at) for key in keys))


def record_json(conn: sqlite3.Connection, kind: Kind, keys_json: str, *, at: int) -> None:
    """Journal every key of a JSON array of strings (a mint's chunk), for every store."""
    conn.execute(
        "INSERT INTO changes (scope, kind, key, at) SELECT ?, ?, value, ? FROM json_each(?)",
        (ALL, kind.value, at, keys_json),
    )
