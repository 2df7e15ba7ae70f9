"""The store's registry of trusted coupon signing keys, read from the cache's ``store_keys``.

Theory of operation
-------------------
``get(key_id)`` is on the token hot path: one primary-key read of ``store_keys`` (a few
microseconds), then the parsed ``Ed25519PublicKey`` from memory. The memory cache is keyed by
the row's content, so a change made by anyone (a snapshot load, HQ revoking a key, another
process on the same file) is seen at the next scan without any notification: a changed row is
parsed again, a deleted row is forgotten.

The store's own key is trusted without HQ (``own``), so a coupon printed here is honoured here
before HQ has registered the key; a row for that key in ``store_keys`` wins, so HQ can still
revoke it. A row whose public key does not parse, or whose key id is not the fingerprint of its
key, is treated as absent (and logged): a damaged registry must never widen trust.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge_agent.domain import token_codec
from edge_agent.domain.coupon_token import TrustedKey, raw_public_key

log = logging.getLogger(__name__)

_GET_SQL = "SELECT store_id, public_key, revoked_at FROM store_keys WHERE key_id = ?"
_Row = tuple[str, bytes, int | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyRow:
    key_id: str
    store_id: str
    public_key: str  # text form
    registered_at: int
    revoked_at: int | None


def parse_public_key(raw: bytes) -> Ed25519PublicKey | None:
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        return None


class TrustedKeys:
    """Implements ``coupon_token.KeyLookup`` over one cache connection (one thread)."""

    def __init__(self, conn: sqlite3.Connection, *, own: TrustedKey | None = None) -> None:
        self.conn = conn
        self.own = own
        self._parsed: dict[str, tuple[_Row, TrustedKey | None]] = {}

    def trust_own(self, key: TrustedKey) -> None:
        self.own = key

    def get(self, key_id: str, /) -> TrustedKey | None:
        row = self.conn.execute(_GET_SQL, (key_id,)).fetchone()
        if row is None:
            self._parsed.pop(key_id, None)
            own = self.own
            return own if own is not None and own.key_id == key_id else None
        store_id, public_key, revoked_at = row
        current: _Row = (str(store_id), bytes(public_key), revoked_at)
        cached = self._parsed.get(key_id)
        if cached is not None and cached[0] == current:
            return cached[1]
        trusted = self._parse(key_id, current)
        self._parsed[key_id] = (current, trusted)
        return trusted

    @staticmethod
    def _parse(key_id: str, row: _Row) -> TrustedKey | None:
        store_id, raw, revoked_at = row
        key = parse_public_key(raw)
        if key is None or token_codec.key_id_of(raw) != key_id:
            log.error("store_keys row %s is damaged (bad key or key id); not trusted", key_id)
            return None
        return TrustedKey(
            key_id=key_id, store_id=store_id, public_key=key, revoked=revoked_at is not None
        )

    # -- writes (tests, the demo, HQ fan-out); snapshot loads replace the table whole ---------

    def put(self, key: Ed25519PublicKey, *, store_id: str, registered_at: datetime) -> str:
        """Trust ``key`` as ``store_id``'s; returns its key id."""
        raw = raw_public_key(key)
        kid = token_codec.key_id_of(raw)
        with _Transaction(self.conn):
            self.conn.execute(
                "INSERT OR REPLACE INTO store_keys VALUES (?, ?, ?, ?, NULL)",
                (kid, store_id, raw, int(registered_at.timestamp())),
            )
        return kid

    def revoke(self, key_id: str, *, at: datetime) -> bool:
        with _Transaction(self.conn):
            changed = self.conn.execute(
                "UPDATE store_keys SET revoked_at = coalesce(revoked_at, ?) WHERE key_id = ?",
                (int(at.timestamp()), key_id),
            ).rowcount
        return changed > 0

    def rows(self) -> list[KeyRow]:
        return [
            KeyRow(
                key_id=str(k),
                store_id=str(s),
                public_key=token_codec.public_key_text(bytes(p)),
                registered_at=int(r),
                revoked_at=v,
            )
            for k, s, p, r, v in self.conn.execute(
                "SELECT key_id, store_id, public_key, registered_at, revoked_at "
                "FROM store_keys ORDER BY store_id, key_id"
            )
        ]


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or nothing if the caller's transaction is already open."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.own = False

    def __enter__(self) -> None:
        if not self.conn.in_transaction:
            self.conn.execute("BEGIN IMMEDIATE")
            self.own = True

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if not self.own:
            return
        if kind is None:
            self.conn.execute("COMMIT")
        elif self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
