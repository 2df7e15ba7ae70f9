"""Cache migration v9: the head of the box's event hash chain, kept in ``meta.chain_head``.

``event_log.append`` links each new event to the previous one by its hash (the wire contract's
``event_hash``: SHA-256 hex of the stored text). Rather than re-read and hash the last event on
every append, the box keeps that hash in ``meta`` and advances it in the append's transaction.

Where the chain starts on a file that already has events: at the hash of its last stored event,
whatever its version (the contract's one rule: event n carries the hash of event n-1, and event
1 carries ``GENESIS_HASH``). The version 1 events stay exactly as written (they are a write-once
record); the first version 2 event pins the last of them. A fresh file, or one with no events,
starts at ``GENESIS_HASH``.

The last event is the one with ``seq = next_seq - 1``. It can be missing only if retention
pruned it, which needs an acknowledgement from HQ, and no box has had one before this
migration exists (the link to HQ comes after it). Should it happen, the head is the genesis
value: HQ then reports a chain break at that event, which is the truth (the box no longer holds
what it would have to prove), rather than the box inventing a link.
"""

from __future__ import annotations

import sqlite_utils

from cloud_sync.contract.event_envelope import GENESIS_HASH, event_hash


def migrate(db: sqlite_utils.Database) -> None:
    conn = db.conn
    (next_seq,) = conn.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()
    last = conn.execute("SELECT body FROM events WHERE seq = ?", (int(next_seq) - 1,)).fetchone()
    head = GENESIS_HASH if last is None else event_hash(str(last[0]))
    conn.execute("INSERT INTO meta (key, value) VALUES ('chain_head', ?)", (head,))
