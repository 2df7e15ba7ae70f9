"""HQ's database: code format, namespace registry, campaigns, members and codes.

Theory of operation
-------------------
One SQLite file, opened by one HQ tool at a time (the CLI, a bench, a test). The schema is a
list of migrations applied in order and recorded in ``PRAGMA user_version``; a file written by
a newer version is refused instead of being half-understood.

The code format (prefix and lengths) is fixed when the file is created and stored in
``hq_meta``: changing it later would strand every namespace already handed out.

Global uniqueness of codes is structural, not checked at the stores:

* ``namespaces`` assigns each minter (HQ, and every store that mints offline) disjoint
  namespace blocks; HQ may hold several and moves to a fresh one when one gets dense.
* within a namespace, ``codes.code`` is the PRIMARY KEY, so a duplicate cannot be stored.

Schema, pragmas and migrations live in ``hq_schema``. Times are UTC epoch seconds.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from cloud_sync.hq import change_journal, identity_store
from cloud_sync.hq.change_journal import Kind
from cloud_sync.hq.errors import (
    CampaignExistsError,
    CodeExistsError,
    InputError,
    NamespaceExhaustedError,
    StoreFileError,
    UnknownCampaignError,
    UnknownCodeError,
    UnknownMemberError,
)
from cloud_sync.hq.hq_schema import connect, migrate, transaction
from cloud_sync.hq.literal_codes import (
    deletion_keys,
    literal_problem,
    mintable_neighbours,
    normalise_literal,
    one_edit_apart,
)
from edge_agent.domain.code_format import BASE, CodeFormat, namespace_string
from edge_agent.domain.code_record import CodeRecord, CodeStatus
from edge_agent.domain.promotion import Member, Promotion
from edge_agent.domain.promotion_codec import (
    PromotionFormatError,
    promotion_from_dict,
    promotion_to_dict,
)

HQ_MINTER = "hq"
_NEAR_BATCH = 5_000  # literals per lookup: ~12 keys and ~3 neighbours a character each
_UPSERT_MEMBER = (
    "INSERT INTO members (member_id, segment, tier, proximity_consent) "
    "VALUES (:id, coalesce(:segment, 'loyal'), coalesce(:tier, 'standard'), "
    "coalesce(:consent, 0)) "
    "ON CONFLICT (member_id) DO UPDATE SET segment = coalesce(:segment, segment), "
    "tier = coalesce(:tier, tier), proximity_consent = coalesce(:consent, proximity_consent)"
)


def to_epoch(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: times are aware UTC")
    return int(moment.timestamp())


def from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberRow:
    """One line of a member list; None leaves a known member's stored value as it is."""

    member_id: str
    segment: str | None = None
    tier: str | None = None
    proximity_consent: bool | None = None
    channel: str | None = None  # overrides the mint's channel for this member
    variant: str | None = None  # overrides the mint's variant (A/B tests)


@dataclass(frozen=True, slots=True, kw_only=True)
class NamespaceInfo:
    index: int
    namespace: str
    minter_id: str
    assigned_at: datetime
    issued: int  # codes HQ minted in it (stores report their own elsewhere)


class CentralStore:
    """HQ's database. Open with ``create`` (new file) or ``open`` (existing file)."""

    def __init__(self, *, conn: sqlite3.Connection, fmt: CodeFormat, path: Path) -> None:
        self.conn = conn
        self.fmt = fmt
        self.path = path

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, *, fmt: CodeFormat) -> Self:
        if path.exists():
            raise StoreFileError(f"{path} already exists")
        try:
            conn = connect(path)
        except sqlite3.OperationalError as exc:
            raise StoreFileError(f"{path}: cannot create it ({exc})") from exc
        migrate(conn, path, fresh=True)
        with transaction(conn):
            conn.executemany(
                "INSERT INTO hq_meta (key, value) VALUES (?, ?)",
                [
                    ("prefix", fmt.prefix),
                    ("namespace_length", str(fmt.namespace_length)),
                    ("random_length", str(fmt.random_length)),
                ],
            )
            identity_store.ensure_card_salt(conn)
        return cls(conn=conn, fmt=fmt, path=path)

    @classmethod
    def open(cls, path: Path) -> Self:
        if not path.is_file():
            raise StoreFileError(f"no HQ database at {path} (create one with `init`)")
        try:
            conn = connect(path)
        except sqlite3.DatabaseError as exc:
            raise StoreFileError(f"{path} is not an HQ database: {exc}") from exc
        try:
            migrate(conn, path, fresh=False)
            if identity_store.card_salt(conn) is None:  # a file from before identities
                with transaction(conn):
                    identity_store.ensure_card_salt(conn)
            meta = dict(conn.execute("SELECT key, value FROM hq_meta").fetchall())
            fmt = CodeFormat(
                prefix=meta["prefix"],
                namespace_length=int(meta["namespace_length"]),
                random_length=int(meta["random_length"]),
            )
        except (sqlite3.DatabaseError, KeyError, ValueError, StoreFileError) as exc:
            conn.close()
            if isinstance(exc, StoreFileError):
                raise
            raise StoreFileError(f"{path} is not a usable HQ database: {exc}") from exc
        return cls(conn=conn, fmt=fmt, path=path)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``hq_schema.transaction``), taken at BEGIN so a read-then-write
        cannot race another HQ. Nested use is a savepoint of the outer transaction, so a mint
        can create members and codes as one."""
        with transaction(self.conn):
            yield self.conn

    # -- namespaces ------------------------------------------------------------------------

    def assign_namespace(self, minter_id: str, *, now: datetime | None = None) -> str:
        """A store's (or other minter's) namespace, assigned on first call (idempotent)."""
        minter_id = _name(minter_id, "minter id")
        if minter_id == HQ_MINTER:
            # A store provisioned as "hq" would mint into HQ's own namespace.
            raise InputError(f"{HQ_MINTER!r} is reserved for HQ's own minting")
        return self._assign(minter_id, now=now)

    def hq_namespace(self, *, now: datetime | None = None) -> str:
        """HQ's first namespace, assigned on first call (idempotent)."""
        return self._assign(HQ_MINTER, now=now)

    def _assign(self, minter_id: str, *, now: datetime | None) -> str:
        with self.write():
            row = self.conn.execute(
                "SELECT namespace FROM namespaces WHERE minter_id = ? ORDER BY ns_index LIMIT 1",
                (minter_id,),
            ).fetchone()
            if row is not None:
                return str(row[0])
            return self._allocate(minter_id, now=now)

    def plan_hq_namespaces(
        self, count: int, *, max_fill: float, now: datetime
    ) -> list[tuple[str, int, int]]:
        """Where HQ mints ``count`` codes: ``(namespace, how many, already issued)`` rows.

        Call inside ``write()``. A namespace is filled to ``max_fill`` of its space at most: the
        fill is both the chance that one fresh draw collides (so redraws stay rare) and the
        chance that a guessed well-formed code hits a live one. Past it HQ takes a new namespace.
        """
        space = int(BASE**self.fmt.random_length)
        capacity = int(space * max_fill)
        if capacity < 1:
            raise InputError("the code format's random part is too short to mint in bulk")
        plan: list[tuple[str, int, int]] = []
        left = count
        rows = self.conn.execute(
            "SELECT namespace, issued FROM namespaces WHERE minter_id = ? ORDER BY ns_index",
            (HQ_MINTER,),
        ).fetchall()
        for namespace, issued in rows:
            take = min(left, capacity - int(issued))
            if take > 0:
                plan.append((str(namespace), take, int(issued)))
                left -= take
        while left > 0:
            take = min(left, capacity)
            plan.append((self._allocate(HQ_MINTER, now=now), take, 0))
            left -= take
        return plan

    def _allocate(self, minter_id: str, *, now: datetime | None) -> str:
        index = int(
            self.conn.execute("SELECT coalesce(max(ns_index) + 1, 0) FROM namespaces").fetchone()[0]
        )
        if index >= self.fmt.namespace_count():
            raise NamespaceExhaustedError(
                f"all {self.fmt.namespace_count()} namespaces are assigned; "
                "a format with a longer namespace is needed"
            )
        namespace = namespace_string(index, self.fmt)
        self.conn.execute(
            "INSERT INTO namespaces (ns_index, namespace, minter_id, assigned_at, issued) "
            "VALUES (?, ?, ?, ?, 0)",
            (index, namespace, minter_id, to_epoch(now or datetime.now(UTC))),
        )
        return namespace

    def namespaces(self, minter_id: str | None = None) -> list[NamespaceInfo]:
        sql = "SELECT ns_index, namespace, minter_id, assigned_at, issued FROM namespaces"
        args: tuple[str, ...] = ()
        if minter_id is not None:
            sql += " WHERE minter_id = ?"
            args = (minter_id,)
        return [
            NamespaceInfo(
                index=i, namespace=ns, minter_id=m, assigned_at=from_epoch(at), issued=issued
            )
            for i, ns, m, at, issued in self.conn.execute(sql + " ORDER BY ns_index", args)
        ]

    # -- campaigns -------------------------------------------------------------------------

    def create_campaign(
        self, promotion: Promotion, *, now: datetime, replace: bool = False
    ) -> None:
        body = json.dumps(promotion_to_dict(promotion), sort_keys=True)
        with self.write():
            exists = self.conn.execute(
                "SELECT 1 FROM campaigns WHERE campaign_id = ?", (promotion.campaign_id,)
            ).fetchone()
            if exists and not replace:
                raise CampaignExistsError(promotion.campaign_id)
            self.conn.execute(
                "INSERT OR REPLACE INTO campaigns "
                "(campaign_id, body, starts_at, ends_at, created_at) VALUES (?, ?, ?, ?, ?)",
                (
                    promotion.campaign_id,
                    body,
                    to_epoch(promotion.starts_at),
                    to_epoch(promotion.ends_at),
                    to_epoch(now),
                ),
            )
            change_journal.record(
                self.conn, Kind.CAMPAIGN, [promotion.campaign_id], at=to_epoch(now)
            )

    def campaign(self, campaign_id: str) -> Promotion:
        row = self.conn.execute(
            "SELECT body FROM campaigns WHERE campaign_id = ?", (campaign_id,)
        ).fetchone()
        if row is None:
            raise UnknownCampaignError(campaign_id)
        return _promotion(str(row[0]))

    def campaigns(self) -> list[Promotion]:
        rows = self.conn.execute("SELECT body FROM campaigns ORDER BY campaign_id")
        return [_promotion(str(body)) for (body,) in rows]

    def set_store_allocation(
        self, campaign_id: str, store_id: str, allocation: int, *, now: datetime | None = None
    ) -> None:
        if allocation < 0:
            raise InputError("allocation must not be negative")
        store_id = _name(store_id, "store id")
        with self.write():
            self.campaign(campaign_id)
            self.conn.execute(
                "INSERT OR REPLACE INTO store_allocations (campaign_id, store_id, allocation) "
                "VALUES (?, ?, ?)",
                (campaign_id, store_id, allocation),
            )
            # Only that store's copy of the campaign changes.
            change_journal.record(
                self.conn, Kind.CAMPAIGN, [campaign_id], at=_now(now), scope=store_id
            )

    def store_allocation(self, campaign_id: str, store_id: str) -> int | None:
        row = self.conn.execute(
            "SELECT allocation FROM store_allocations WHERE campaign_id = ? AND store_id = ?",
            (campaign_id, store_id),
        ).fetchone()
        return None if row is None else int(row[0])

    # -- members ---------------------------------------------------------------------------

    def upsert_members(self, rows: Sequence[MemberRow], *, now: datetime | None = None) -> None:
        """Create or update members; a None field keeps a known member's stored value.

        A member whose proximity consent changes gets their presence identities journalled
        too (the stores are sent the set, empty without consent); a withdrawn consent
        deletes them here, in the same transaction (``identity_store.forget``)."""
        given = {r.member_id: r.proximity_consent for r in rows if r.proximity_consent is not None}
        with self.write():
            before = identity_store.consenting(self.conn, given)
            self.conn.executemany(
                _UPSERT_MEMBER,
                [
                    {
                        "id": r.member_id,
                        "segment": r.segment,
                        "tier": r.tier,
                        "consent": None
                        if r.proximity_consent is None
                        else int(r.proximity_consent),
                    }
                    for r in rows
                ],
            )
            change_journal.record(self.conn, Kind.MEMBER, (r.member_id for r in rows), at=_now(now))
            changed = sorted(m for m, consent in given.items() if consent != (m in before))
            identity_store.forget(self.conn, (m for m in changed if not given[m]))
            change_journal.record(self.conn, Kind.IDENTITIES, changed, at=_now(now))

    def member(self, member_id: str) -> Member | None:
        row = self.conn.execute(
            "SELECT segment, tier, proximity_consent FROM members WHERE member_id = ?",
            (member_id,),
        ).fetchone()
        if row is None:
            return None
        return Member(
            member_id=member_id, segment=row[0], tier=row[1], proximity_consent=bool(row[2])
        )

    # -- single codes ----------------------------------------------------------------------

    def code(self, raw: str) -> CodeRecord | None:
        row = self.conn.execute(
            "SELECT code, campaign_id, member_id, status, channel, variant, issued_at, "
            "expires_at, linked_member_id FROM codes WHERE code = ?",
            (normalise_literal(raw),),
        ).fetchone()
        if row is None:
            return None
        return CodeRecord(
            code=row[0],
            campaign_id=row[1],
            member_id=row[2],
            status=CodeStatus(row[3]),
            channel=row[4],
            variant=row[5],
            issued_at=None if row[6] is None else from_epoch(row[6]),
            expires_at=None if row[7] is None else from_epoch(row[7]),
            linked_member_id=row[8],
        )

    def revoke(self, raw: str, *, now: datetime | None = None) -> str:
        """Revoke a code (idempotent); returns its canonical form."""
        code = normalise_literal(raw)
        with self.write():
            if (
                self.conn.execute(
                    "UPDATE codes SET status = ? WHERE code = ?", (CodeStatus.REVOKED.value, code)
                ).rowcount
                == 0
            ):
                raise UnknownCodeError(code)
            change_journal.record(self.conn, Kind.CODE, [code], at=_now(now))
        return code

    def link(self, raw: str, member_id: str, *, now: datetime | None = None) -> str:
        """Link a physical code to a member: it applies at their next checkout."""
        code = normalise_literal(raw)
        with self.write():
            if self.member(member_id) is None:
                raise UnknownMemberError(member_id)
            row = self.conn.execute(
                "SELECT member_id FROM codes WHERE code = ?", (code,)
            ).fetchone()
            if row is None:
                raise UnknownCodeError(code)
            if row[0] is not None and row[0] != member_id:
                raise InputError(f"code {code!r} is bound to another member")
            self.conn.execute(
                "UPDATE codes SET linked_member_id = ? WHERE code = ?", (member_id, code)
            )
            change_journal.record(self.conn, Kind.CODE, [code], at=_now(now))
        return code

    def create_generic(
        self,
        campaign_id: str,
        raw: str,
        *,
        now: datetime,
        channel: str = "influencer",
        variant: str = "A",
        expires_at: datetime | None = None,
    ) -> str:
        """A literal shared code (``HOLIMAN100``); its use limits are the campaign's."""
        code = normalise_literal(raw)
        problem = literal_problem(code, self.fmt)
        if problem is not None:
            raise CodeExistsError(code, problem)
        with self.write():
            self.campaign(campaign_id)
            if self.conn.execute("SELECT 1 FROM codes WHERE code = ?", (code,)).fetchone():
                raise CodeExistsError(code, "it already exists")
            near = self.near_codes([code]).get(code)
            if near is not None:
                raise CodeExistsError(code, near)
            run_id = self.new_run(campaign_id, kind="generic", namespaces="", created=1, now=now)
            self.conn.execute(
                "INSERT INTO codes (code, campaign_id, member_id, status, channel, variant, "
                "issued_at, expires_at, linked_member_id, run_id) "
                "VALUES (?, ?, NULL, 'active', ?, ?, ?, ?, NULL, ?)",
                (
                    code,
                    campaign_id,
                    channel,
                    variant,
                    to_epoch(now),
                    None if expires_at is None else to_epoch(expires_at),
                    run_id,
                ),
            )
            self.add_literals([code])
            change_journal.record(self.conn, Kind.CODE, [code], at=to_epoch(now))
        return code

    def near_codes(self, codes: Sequence[str]) -> dict[str, str]:
        """For each of ``codes`` one mistype away from a code HQ holds: why, naming that code.

        Minted codes: the literal's well-formed neighbours (a few a character) are looked up.
        Literals: its deletion keys are looked up in ``literal_keys`` and the hits confirmed.
        Both are primary-key probes, a batch of literals at a time; nothing is scanned.
        """
        found: dict[str, str] = {}
        for start in range(0, len(codes), _NEAR_BATCH):
            batch = codes[start : start + _NEAR_BATCH]
            minted = {c: mintable_neighbours(c, self.fmt, self.fmt.prefix) for c in batch}
            keys = {c: deletion_keys(c) for c in batch}
            held = {
                str(c): str(campaign)
                for c, campaign in self.conn.execute(
                    "SELECT c.code, c.campaign_id FROM json_each(?) AS j "
                    "CROSS JOIN codes AS c ON c.code = j.value",
                    (json.dumps(list({n for ns in minted.values() for n in ns})),),
                )
            }
            by_key: dict[str, list[str]] = {}
            for key, code in self.conn.execute(
                "SELECT k.key, k.code FROM json_each(?) AS j "
                "CROSS JOIN literal_keys AS k ON k.key = j.value",
                (json.dumps(list({k for ks in keys.values() for k in ks})),),
            ):
                by_key.setdefault(str(key), []).append(str(code))
            literal_hits = {
                code: {o for k in keys[code] for o in by_key.get(k, ()) if one_edit_apart(o, code)}
                for code in batch
            }
            for code in batch:
                near = sorted({n for n in minted[code] if n in held} | literal_hits[code])
                if near:
                    other = near[0]
                    campaign = held.get(other) or self._campaign_of(other)
                    found[code] = (
                        f"it is one mistype away from {other} (campaign {campaign}), "
                        "so a typo of one would be taken for the other"
                    )
        return found

    def _campaign_of(self, code: str) -> str:
        row = self.conn.execute("SELECT campaign_id FROM codes WHERE code = ?", (code,)).fetchone()
        return "?" if row is None else str(row[0])

    def add_literals(self, codes: Sequence[str]) -> None:
        """Record stored literal codes for the mistype checks; call inside ``write()``."""
        self.conn.executemany("INSERT INTO literal_codes (code) VALUES (?)", ((c,) for c in codes))
        self.conn.executemany(
            "INSERT OR IGNORE INTO literal_keys (key, code) VALUES (?, ?)",
            ((k, c) for c in codes for k in deletion_keys(c)),
        )

    def literals_near_length(self, length: int) -> list[str]:
        """Literals within one character of ``length``: those minting must keep clear of."""
        return [
            str(c)
            for (c,) in self.conn.execute(
                "SELECT code FROM literal_codes WHERE length(code) BETWEEN ? AND ?",
                (length - 1, length + 1),
            )
        ]

    def new_run(
        self, campaign_id: str, *, kind: str, namespaces: str, created: int, now: datetime
    ) -> int:
        """Record an issue run; call inside a write transaction."""
        cur = self.conn.execute(
            "INSERT INTO issue_runs (campaign_id, kind, namespaces, created, at) "
            "VALUES (?, ?, ?, ?, ?)",
            (campaign_id, kind, namespaces, created, to_epoch(now)),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def count_codes(self, campaign_id: str | None = None) -> int:
        if campaign_id is None:
            return int(self.conn.execute("SELECT count(*) FROM codes").fetchone()[0])
        return int(
            self.conn.execute(
                "SELECT count(*) FROM codes WHERE campaign_id = ?", (campaign_id,)
            ).fetchone()[0]
        )


def _promotion(body: str) -> Promotion:
    try:
        return promotion_from_dict(json.loads(body))
    except (PromotionFormatError, ValueError) as exc:  # written by us: a corrupt row
        raise StoreFileError(f"a stored campaign no longer parses: {exc}") from exc


def _now(now: datetime | None) -> int:
    return to_epoch(now or datetime.now(UTC))


def _name(value: str, what: str) -> str:
    value = value.strip()
    if not value:
        raise InputError(f"{what} must not be empty")
    return value
