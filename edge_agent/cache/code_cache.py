"""The store's code cache: one SQLite file, opened with the pragmas durability needs.

``lookup`` is the hot path: it builds a ``CodeFacts`` from one joined read of the code (with its
link overlay, use count, last redemption and campaign counters), the parsed ``Promotion`` from
memory (dropped when another connection changed the HQ data, see ``_refresh``), and, when a
member is involved, their profile, their uses of this code and their recent
redemptions. ``facts_for`` gathers the same facts for a record held elsewhere (a signed token's
claims); both share the usage reads. Writes that change redemption state live in
``edge_agent/redemption/``; snapshot loading in ``snapshot_load.py``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from edge_agent.cache import schema, snapshot_load
from edge_agent.cache.timestamps import from_epoch_s, from_us, to_epoch_s, to_us
from edge_agent.cache.transaction import Transaction, transaction
from edge_agent.domain.code_record import (
    CodeFacts,
    CodeRecord,
    CodeStatus,
    RedemptionInfo,
    Reservation,
    UsageFacts,
)
from edge_agent.domain.promotion import Member, Promotion
from edge_agent.domain.promotion_codec import promotion_from_dict, promotion_to_dict
from edge_agent.errors import BoxMismatchError, CacheError, StoreMismatchError
from edge_agent.events import event_log

# The store's own counts of a code and its campaign (uses, last redemption, campaign counters),
# written once for both reads below so the hot path and a record held elsewhere cannot drift.
# What HQ's deltas say other boxes used (``edge_agent/follow/``) counts too: the code's uses
# there (``eu``) add to this box's, and its last redemption is the later of this box's (``r``)
# and the other boxes' latest (``el``), so a code redeemed at another store is refused
# ``ALREADY_REDEEMED`` naming that store; the other boxes' use of the campaign (``ce``) adds
# to its budget counters, and its store's other boxes' to the store's allocation. Both are
# empty unless the box follows a delta stream.
_COUNTS_COLUMNS = """coalesce(u.uses, 0) + coalesce(eu.uses, 0),
       CASE WHEN el.at_us > coalesce(r.redeemed_us, -1) THEN el.at_us ELSE r.redeemed_us END,
       CASE WHEN el.at_us > coalesce(r.redeemed_us, -1) THEN el.store_id ELSE r.store_id END,
       CASE WHEN el.at_us > coalesce(r.redeemed_us, -1)
            THEN coalesce(el.till_id, '') ELSE r.till_id END,
       CASE WHEN el.at_us > coalesce(r.redeemed_us, -1)
            THEN coalesce(el.transaction_id, '') ELSE r.transaction_id END,
       coalesce(cu.uses, 0) + coalesce(ce.redemptions, 0),
       coalesce(cu.money, 0) + coalesce(ce.discount, 0),
       coalesce(cu.store_uses, 0) + coalesce(ce.store_redemptions, 0)"""
_COUNTS_JOINS = """LEFT JOIN code_usage AS u ON u.code = c.code
LEFT JOIN redemptions AS r ON r.id = u.last_redemption_id
LEFT JOIN campaign_usage AS cu ON cu.campaign_id = c.campaign_id
LEFT JOIN (SELECT code, sum(uses) AS uses FROM uses_elsewhere WHERE code = ?1 AND uses > 0)
     AS eu ON eu.code = c.code
LEFT JOIN uses_elsewhere AS el ON el.code = c.code AND el.box_id = (
     SELECT box_id FROM uses_elsewhere WHERE code = ?1 AND uses > 0
     ORDER BY at_us DESC, box_id LIMIT 1)
LEFT JOIN campaign_elsewhere AS ce ON ce.campaign_id = c.campaign_id"""
# The hot path: the code row, its link overlay and its counts in one statement, and with them
# what would otherwise be four more round trips: the requesting member's profile (?2) and
# uses of the code (?3, when the request names a member), whether the code has any holds at
# all (almost never: the hold query is then skipped), and ``PRAGMA data_version`` (see
# ``_refresh``).
_CODE_SQL = f"""
SELECT c.campaign_id, c.member_id, c.status, c.channel, c.variant, c.issued_at, c.expires_at,
       coalesce(l.member_id, c.linked_member_id),
       {_COUNTS_COLUMNS},
       m.member_id IS NOT NULL, m.segment, m.tier, m.proximity_consent, mu.uses,
       EXISTS (SELECT 1 FROM reservations AS h WHERE h.code = c.code),
       (SELECT data_version FROM pragma_data_version)
FROM codes AS c
LEFT JOIN code_links AS l ON l.code = c.code
{_COUNTS_JOINS}
LEFT JOIN members AS m ON m.member_id = ?2
LEFT JOIN member_code_usage AS mu ON mu.code = c.code AND mu.member_id = ?3
WHERE c.code = ?1
"""  # noqa: S608 - constant fragments only
# The same counts for a record not (yet) in ``codes``: always exactly one row.
_COUNTS_SQL = f"""
SELECT {_COUNTS_COLUMNS}
FROM (SELECT ?1 AS code, ?2 AS campaign_id) AS c
{_COUNTS_JOINS}
"""  # noqa: S608 - constant fragments only
_PUT_CODE_SQL = "INSERT OR REPLACE INTO codes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_MEMBER_SQL = "SELECT segment, tier, proximity_consent FROM members WHERE member_id = ?"
_MEMBER_USES_SQL = "SELECT uses FROM member_code_usage WHERE code = ? AND member_id = ?"
_VELOCITY_SQL = (
    "SELECT redeemed_us FROM redemptions WHERE member_id = ? AND redeemed_us > ? "
    "AND fully_reversed = 0 ORDER BY redeemed_us DESC LIMIT ?"
)
_HOLDS_SQL = (
    "SELECT till_id, store_id, transaction_id, until_us FROM reservations "
    "WHERE code = ? AND until_us > ?"
)


@dataclass(frozen=True, slots=True)
class _Read:
    """What ``lookup``'s one statement read beside the code row (see ``_CODE_SQL``)."""

    member: Member | None
    member_uses: int  # the requesting member's uses of the code (0 without a member)
    any_holds: bool  # the code has rows in ``reservations``, live or not


class CodeCache:
    """One open cache file. Not thread-safe: use it from one thread at a time."""

    def __init__(self, *, db: sqlite_utils.Database, path: Path, store_id: str, box_id: str):
        self.db = db
        self.conn: sqlite3.Connection = db.conn
        self.path = path
        self.store_id = store_id
        self.box_id = box_id
        self._promotions: dict[str, Promotion] = {}
        self._data_version = self._read_data_version()
        self._generation = self._read_generation()

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        store_id: str,
        box_id: str | None = None,
        cache_kib: int = 16_384,
        busy_timeout_ms: int = 5_000,
    ) -> CodeCache:
        """Open (creating or upgrading) the cache of ``store_id`` at ``path``.

        ``box_id`` names the box whose event stream the file holds (config's ``store.box_id``,
        its broker username and topic level). A file made without one has a random id; a file
        with no event yet takes the given id, one that has events keeps its own, since every
        event already written names it and HQ's chain for that box starts there.

        Raises ``SchemaTooNewError`` for a file from a newer agent, ``StoreMismatchError`` for
        another store's file, ``BoxMismatchError`` for another box's events, ``CacheError`` for
        anything else unusable.
        """
        path = Path(path)
        db = schema.connect(path, cache_kib=cache_kib, busy_timeout_ms=busy_timeout_ms)
        try:
            schema.migrate(db)
            with transaction(db.conn) as conn:
                row = conn.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()
                if row is None:
                    conn.execute(
                        "INSERT INTO meta (key, value) VALUES ('store_id', ?)", (store_id,)
                    )
                box = str(conn.execute("SELECT value FROM meta WHERE key = 'box_id'").fetchone()[0])
                if box_id is not None and box != box_id:
                    written = conn.execute("SELECT 1 FROM events LIMIT 1").fetchone()
                    if written is not None:
                        raise BoxMismatchError(file_box=box, wanted=box_id)
                    conn.execute("UPDATE meta SET value = ? WHERE key = 'box_id'", (box_id,))
                    box = box_id
            if row is not None and row[0] != store_id:
                raise StoreMismatchError(file_store=str(row[0]), wanted=store_id)
        except sqlite3.DatabaseError as exc:
            db.close()
            raise CacheError(f"{path}: {exc}") from exc
        except BaseException:
            db.close()
            raise
        return cls(db=db, path=path, store_id=store_id, box_id=box)

    def close(self) -> None:
        self.db.close()

    def transaction(self) -> Transaction:
        """``with cache.transaction() as conn:`` one all-or-nothing write (``transaction.py``):
        BEGIN IMMEDIATE ... COMMIT, so a check-then-write inside cannot race another connection;
        inside ``group`` (or any open transaction) a savepoint of it, durable with its COMMIT."""
        return transaction(self.conn)

    @contextmanager
    def group(self) -> Iterator[Callable[[], Transaction]]:
        """Group commit: one BEGIN IMMEDIATE ... COMMIT (one fsync) around several operations.
        Yields a factory of per-operation savepoints: an operation that raises inside its own is
        rolled back alone. The COMMIT runs when the block ends; until it has returned, nothing
        done inside is durable, so answer no one before that (``DbThread`` does not). A group
        must be outermost: inside another transaction its end would be a RELEASE, durable
        only at someone else's COMMIT, and its answers would be sent too early."""
        if self.conn.in_transaction:
            raise RuntimeError("group cannot nest inside another transaction")
        with transaction(self.conn):
            yield self.transaction

    def checkpoint(self, *, truncate: bool = False) -> tuple[int, int, int]:
        """Copy the WAL into the database file; call it off the hot path (e.g. every few
        seconds when idle). Returns SQLite's (busy, wal frames, frames checkpointed)."""
        mode = "TRUNCATE" if truncate else "PASSIVE"
        busy, log, done = self.conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        return int(busy), int(log), int(done)

    # -- freshness ----------------------------------------------------------------------------

    def _read_data_version(self) -> int:
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def _read_generation(self) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return None if row is None else str(row[0])

    def _refresh(self, version: int | None = None) -> None:
        """Drop parsed promotions if another connection changed the HQ data since we parsed them
        (``edge-agent load-snapshot`` beside a running agent). ``PRAGMA data_version`` changes
        when any other connection commits to the file and costs well under a microsecond, so
        it is checked on every read (``version``: as the caller's statement just read it);
        only then is ``meta.generation`` (bumped by every change of campaigns) read, so the
        print worker's commits do not empty the cache."""
        if version is None:
            version = self._read_data_version()
        if version == self._data_version:
            return
        self._data_version = version
        generation = self._read_generation()
        if generation != self._generation:
            self._generation = generation
            self._promotions.clear()

    # -- meta ---------------------------------------------------------------------------------

    def minting_namespace(self) -> str | None:
        """The namespace HQ assigned this store for minting receipt coupons, recorded from the
        last snapshot loaded; None if it carried none (no receipt coupons then)."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'namespace'").fetchone()
        return None if row is None else str(row[0])

    def synced_at(self) -> datetime | None:
        """When this cache last heard from HQ (the loaded snapshot's creation time)."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'synced_at'").fetchone()
        return None if row is None else datetime.fromisoformat(str(row[0]))

    def set_synced_at(self, at: datetime) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('synced_at', ?)",
                (at.astimezone(UTC).isoformat(),),
            )

    # -- incremental upserts (tests, demo, HQ fan-out) ----------------------------------------

    def put_campaign(self, promotion: Promotion) -> None:
        body = json.dumps(promotion_to_dict(promotion), sort_keys=True)
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO campaigns (campaign_id, body) VALUES (?, ?)",
                (promotion.campaign_id, body),
            )
            snapshot_load.bump_generation(conn)
        self._promotions.pop(promotion.campaign_id, None)

    def campaigns_changed(self) -> None:
        """Drop the parsed promotions: a write on this connection changed campaigns (another
        connection's is noticed by ``_refresh`` on its own)."""
        self._promotions.clear()
        self._generation = self._read_generation()

    def put_member(self, member: Member) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO members VALUES (?, ?, ?, ?)",
                (member.member_id, member.segment, member.tier, int(member.proximity_consent)),
            )

    def put_codes(self, records: Iterable[CodeRecord]) -> int:
        rows = [
            (
                r.code,
                r.campaign_id,
                r.member_id,
                r.status.value,
                r.channel,
                r.variant,
                to_epoch_s(r.issued_at),
                to_epoch_s(r.expires_at),
                r.linked_member_id,
            )
            for r in records
        ]
        rows.sort()  # sorted inserts into a WITHOUT ROWID table are several times faster
        with self.transaction() as conn:
            conn.executemany(
                _PUT_CODE_SQL,
                rows,
            )
        return len(rows)

    def revoke(self, code: str) -> bool:
        """Mark a code revoked; False if the cache does not hold it."""
        with self.transaction() as conn:
            changed = conn.execute(
                "UPDATE codes SET status = 'revoked' WHERE code = ?", (code,)
            ).rowcount
        return changed > 0

    def load_snapshot(self, path: Path | str) -> snapshot_load.SnapshotInfo:
        """Replace codes, campaigns and members with a snapshot's; keep all mutable state.
        Raises ``SnapshotError`` (cache untouched) for a malformed or foreign snapshot."""
        try:
            return snapshot_load.load_snapshot(self.conn, Path(path), store_id=self.store_id)
        finally:
            self._promotions.clear()
            self._generation = self._read_generation()

    # -- reads --------------------------------------------------------------------------------

    def promotion(self, campaign_id: str, *, data_version: int | None = None) -> Promotion | None:
        """The parsed promotion, cached in memory until its campaign changes."""
        self._refresh(data_version)
        cached = self._promotions.get(campaign_id)
        if cached is not None:
            return cached
        row = self.conn.execute(
            "SELECT body FROM campaigns WHERE campaign_id = ?", (campaign_id,)
        ).fetchone()
        if row is None:
            return None
        promotion = promotion_from_dict(json.loads(row[0]))
        self._promotions[campaign_id] = promotion
        return promotion

    def promotions(self, campaign_ids: Iterable[str]) -> dict[str, Promotion]:
        """The cached promotions among ``campaign_ids`` (those HQ has not shipped are absent)."""
        found = {c: self.promotion(c) for c in sorted(set(campaign_ids))}
        return {c: p for c, p in found.items() if p is not None}

    def member(self, member_id: str) -> Member | None:
        row = self.conn.execute(_MEMBER_SQL, (member_id,)).fetchone()
        if row is None:
            return None
        return Member(
            member_id=member_id, segment=row[0], tier=row[1], proximity_consent=bool(row[2])
        )

    def lookup(self, code: str, member_id: str | None, now: datetime) -> CodeFacts | None:
        """Everything validation needs about canonical ``code``; None if the cache lacks it.

        Usage is attributed to the requesting member, else the member the code is linked or
        bound to: the same member a redemption would be recorded against.
        """
        # Usage is the requesting member's when there is one (else see ``_facts``).
        row = self.conn.execute(_CODE_SQL, (code, member_id, member_id or None)).fetchone()
        if row is None:
            return None
        campaign_id, bound, status, channel, variant, issued, expires, linked = row[:8]
        known, segment, tier, consent, member_uses, any_holds, version = row[16:]
        promotion = self.promotion(campaign_id, data_version=version)
        if promotion is None:
            return None  # a code whose campaign HQ has not shipped cannot be honoured
        record = CodeRecord(
            code=code,
            campaign_id=campaign_id,
            member_id=bound,
            status=CodeStatus(status),
            channel=channel,
            variant=variant,
            issued_at=from_epoch_s(issued),
            expires_at=from_epoch_s(expires),
            linked_member_id=linked,
        )
        member = None
        if known:
            assert member_id is not None
            member = Member(
                member_id=member_id, segment=segment, tier=tier, proximity_consent=bool(consent)
            )
        read = _Read(member=member, member_uses=member_uses or 0, any_holds=bool(any_holds))
        return self._facts(record, promotion, row[8:16], member_id, now, read=read)

    def facts_for(
        self, record: CodeRecord, member_id: str | None, now: datetime
    ) -> CodeFacts | None:
        """What ``lookup`` gives, for a ``record`` that does not come from ``codes`` (e.g. built
        from a signed token's claims, link overlay already applied); None if its campaign is not
        cached. The store's own usage of the code is read, so single use holds for it too."""
        promotion = self.promotion(record.campaign_id)
        if promotion is None:
            return None
        counts = self.conn.execute(_COUNTS_SQL, (record.code, record.campaign_id)).fetchone()
        return self._facts(record, promotion, counts, member_id, now)

    def _facts(
        self,
        record: CodeRecord,
        promotion: Promotion,
        counts: tuple[Any, ...],
        member_id: str | None,
        now: datetime,
        *,
        read: _Read | None = None,
    ) -> CodeFacts:
        """The facts of ``record``, given the ``_COUNTS_COLUMNS`` already read with it (the hot
        path reads them in the same statement as the code row, saving a query) and, from
        ``lookup``, what that statement read of the member and the holds (``read``)."""
        conn = self.conn
        code = record.code
        uses, last_us, last_store, last_till, last_txn, c_uses, c_money, c_store = counts
        if read is not None:
            member = read.member
        else:
            member = self.member(member_id) if member_id is not None else None
        subject = member_id or record.linked_member_id or record.member_id
        member_uses = 0
        recent: tuple[datetime, ...] = ()
        if subject is not None:
            if read is not None and member_id:  # read with the code row: subject is member_id
                member_uses = int(read.member_uses)
            else:
                got = conn.execute(_MEMBER_USES_SQL, (code, subject)).fetchone()
                member_uses = 0 if got is None else int(got[0])
            limit = promotion.limits.member_velocity_count
            if limit is not None:
                since = to_us(now - promotion.limits.member_velocity_window)
                # Only the newest ``limit`` decide (and date) a refusal; a margin keeps the
                # reported count honest for any plausible member.
                rows = conn.execute(_VELOCITY_SQL, (subject, since, max(100, limit + 1)))
                recent = tuple(from_us(us) for (us,) in rows)
        holds: tuple[Reservation, ...] = ()
        if read is None or read.any_holds:
            holds = tuple(
                Reservation(till_id=t, store_id=s, transaction_id=x, until=from_us(u))
                for t, s, x, u in conn.execute(_HOLDS_SQL, (code, to_us(now)))
            )
        last = (
            None
            if last_us is None
            else RedemptionInfo(
                at=from_us(last_us), store_id=last_store, till_id=last_till, transaction_id=last_txn
            )
        )
        usage = UsageFacts(
            code_uses=uses or 0,
            member_code_uses=member_uses,
            member_recent_redemptions=recent,
            campaign_uses=c_uses or 0,
            campaign_money=c_money or 0,
            store_campaign_uses=c_store or 0,
            reservations=holds,
            last_redemption=last,
        )
        return CodeFacts(record=record, promotion=promotion, member=member, usage=usage)

    # -- outbox -------------------------------------------------------------------------------

    def linked_codes(self, member_id: str, now: datetime) -> tuple[str, ...]:
        """Codes linked to ``member_id`` at a till that they have not used yet and that are
        still valid: the POS applies them at the member's next checkout (DOMAIN.md section 2).
        """
        rows = self.conn.execute(
            "SELECT l.code FROM code_links AS l JOIN codes AS c ON c.code = l.code "
            "LEFT JOIN member_code_usage AS m ON m.code = l.code AND m.member_id = l.member_id "
            "WHERE l.member_id = ? AND c.status = 'active' "
            "AND (c.expires_at IS NULL OR c.expires_at > ?) AND coalesce(m.uses, 0) = 0 "
            "ORDER BY l.linked_us",
            (member_id, to_epoch_s(now)),
        )
        return tuple(str(code) for (code,) in rows)

    def member_codes(self, member_id: str, now: datetime) -> tuple[tuple[str, str], ...]:
        """The codes ``member_id`` may apply at a till now, as (code, "bound" | "linked"):
        bound to them or linked to them, active, unexpired and not used by them (neither here
        nor, as HQ told it, at another box). The POS validates them against its basket."""
        rows = self.conn.execute(
            "SELECT c.code, 'bound', c.issued_at FROM codes AS c "
            "WHERE c.member_id = ?1 AND c.status = 'active' "
            "AND (c.expires_at IS NULL OR c.expires_at > ?2) "
            "AND NOT EXISTS (SELECT 1 FROM code_usage AS u WHERE u.code = c.code AND u.uses > 0) "
            "AND NOT EXISTS (SELECT 1 FROM uses_elsewhere AS e WHERE e.code = c.code) "
            "UNION ALL SELECT l.code, 'linked', l.linked_us / 1000000 FROM code_links AS l "
            "JOIN codes AS c ON c.code = l.code "
            "LEFT JOIN member_code_usage AS m ON m.code = l.code AND m.member_id = l.member_id "
            "WHERE l.member_id = ?1 AND c.status = 'active' "
            "AND (c.expires_at IS NULL OR c.expires_at > ?2) AND coalesce(m.uses, 0) = 0 "
            "ORDER BY 3, 1",
            (member_id, to_epoch_s(now)),
        )
        return tuple((str(code), str(kind)) for code, kind, _ in rows)

    def pending_outbox(self, limit: int = 100) -> tuple[event_log.OutboxItem, ...]:
        """Events not yet acknowledged by HQ, oldest first."""
        return event_log.pending(self.conn, limit)

    def ack_outbox(self, up_to_seq: int) -> int:
        """HQ has every event up to ``up_to_seq``: drop them from the outbox."""
        return event_log.ack(self.conn, up_to_seq)
