"""Booking a ledger event into HQ's database: the pure ledger's decision, stored.

Theory of operation
-------------------
``book(tx, event, ...)`` asks ``edge_agent.domain.points.admission.admit`` through
``TxLedgerView`` (the event of an id, an account's balance, when it was opened: three primary
key lookups), so HQ decides exactly as the in-memory reference ``Ledger`` the tests fold.
When the event is admitted it writes, in the caller's transaction (schema version 6,
``cloud_sync/hq/ingest/schema.py``):

* the event (``ledger_events``: its ``pos`` is its place in booking order) with its codec
  text, which is what a replay is compared with (by value, through ``codec.decode``);
* one ``ledger_entries`` row per posting, append-only, carrying the columns the ledger API
  filters on;
* each account's running balance (``ledger_accounts``; an opening entry sets ``opened_at``)
  and its net for the entry's UTC day (``ledger_daily``);
* for a member posting, the member in ``points_balance_queue``: the stores must hear the new
  balance (``member.points``).

A ``Replayed`` or ``Overdrawn`` answer writes nothing; ``EventConflictError`` and the account
errors propagate, and the caller's transaction decides what becomes of them. ``book`` never
commits: a group of events is all-or-nothing with whatever else the transaction does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

from cloud_sync.contract import wire_json
from cloud_sync.hq.ingest.event_store import Row, Tx, from_micros, to_micros
from edge_agent.domain.points import codec
from edge_agent.domain.points.accounts import Account, MemberAccount
from edge_agent.domain.points.admission import Admission, Admitted, OverdraftPolicy, admit
from edge_agent.domain.points.event import EventKind, LedgerEvent

PROGRAMME_HOLDER: Final = ""  # ``holder`` of the programme's own accounts
DAY_US: Final = 86_400 * 1_000_000


def holder_and_category(account: Account) -> tuple[str, str]:
    """The (holder, category) columns of ``account``."""
    if isinstance(account, MemberAccount):
        return account.member, account.category.value
    return PROGRAMME_HOLDER, account.kind.value


class TxLedgerView:
    """``admission.LedgerView`` over one open transaction."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    def event(self, event_id: str) -> LedgerEvent | None:
        rows = self.tx.query("SELECT body FROM ledger_events WHERE event_id = ?", (event_id,))
        return decode_text(str(rows[0][0])) if rows else None

    def balance(self, account: Account) -> int:
        row = self._account(account)
        return int(row[0]) if row else 0

    def opened_at(self, account: MemberAccount) -> datetime | None:
        row = self._account(account)
        return None if row is None or row[1] is None else from_micros(int(row[1]))

    def _account(self, account: Account) -> Row | None:
        holder, category = holder_and_category(account)
        rows = self.tx.query(
            "SELECT balance, opened_at FROM ledger_accounts "
            "WHERE programme = ? AND holder = ? AND category = ?",
            (account.programme, holder, category),
        )
        return rows[0] if rows else None


def codec_text(event: LedgerEvent) -> str:
    """The event's stored text: canonical JSON of its codec object, one text per event."""
    return wire_json.CANONICAL.encode(codec.encode(event))


def decode_text(text: str) -> LedgerEvent:
    """The event of a stored (or received) text; ``LedgerCodecError`` if it is none."""
    return codec.decode(wire_json.load(text, malformed=codec.LedgerCodecError))


def book(
    tx: Tx,
    event: LedgerEvent,
    *,
    policy: OverdraftPolicy,
    booked_at: datetime,
    source: tuple[str, int] | None = None,
) -> Admission:
    """Admit ``event`` and, if admitted, store it (module docstring). ``source`` is the
    (box_id, seq) of the box event it came in."""
    decision = admit(event, TxLedgerView(tx), policy)
    if isinstance(decision, Admitted):
        store_admitted(tx, [(event, source)], booked_at=booked_at)
    return decision


def store_admitted(
    tx: Tx,
    events: Sequence[tuple[LedgerEvent, tuple[str, int] | None]],
    *,
    booked_at: datetime,
) -> list[int]:
    """Store ``events`` (each with its source), which ``admit`` admitted in this order
    against the ledger as it stands plus the ones before it, in a few statements whatever
    their number (the expiry run books a page of members' at once); their ``pos``."""
    if not events:
        return []
    rows = []
    for event, source in events:
        o = event.origin
        box_id, box_seq = source if source is not None else (None, None)
        rows.append(
            (event.event_id, event.kind.value, to_micros(event.at), event.programme,
             o.channel.value, o.store, o.till, event.campaign, codec_text(event),
             to_micros(booked_at), box_id, box_seq)
        )  # fmt: skip
    tx.insert_many("ledger_events", EVENT_COLUMNS, rows)
    ids = [e.event_id for e, _ in events]
    pos_of: dict[str, int] = {}
    for start in range(0, len(ids), ID_CHUNK):
        chunk = ids[start : start + ID_CHUNK]
        marks = ", ".join("?" * len(chunk))
        pos_of.update(
            (str(i), int(p))
            for i, p in tx.query(
                f"SELECT event_id, pos FROM ledger_events WHERE event_id IN ({marks})",  # noqa: S608
                chunk,
            )
        )
    entries: list[Sequence[object]] = []
    change: dict[tuple[str, str, str], int] = {}
    opened: dict[tuple[str, str, str], int | None] = {}
    last: dict[tuple[str, str, str], int] = {}
    daily: dict[tuple[str, str, str, int], int] = {}
    members: set[tuple[str, str]] = set()
    for event, _ in events:
        pos, at, o = pos_of[event.event_id], to_micros(event.at), event.origin
        opening = event.kind is EventKind.OPENING
        for idx, p in enumerate(event.postings):
            holder, category = holder_and_category(p.account)
            entries.append(
                (pos, idx, event.programme, holder, category, p.side.value, p.points, p.signed,
                 at, event.kind.value, o.channel.value, o.store, o.till, event.campaign)
            )  # fmt: skip
            key = (event.programme, holder, category)
            change[key] = change.get(key, 0) + p.signed
            last[key] = pos
            if opening and holder != PROGRAMME_HOLDER:
                opened[key] = at
            else:
                opened.setdefault(key, None)
            day = (event.programme, holder, category, at // DAY_US)
            daily[day] = daily.get(day, 0) + p.signed
            if holder != PROGRAMME_HOLDER:
                members.add((event.programme, holder))
    tx.insert_many("ledger_entries", ENTRY_COLUMNS, entries)
    tx.execute_many(
        "INSERT INTO ledger_accounts (programme, holder, category, balance, opened_at, "
        "last_pos) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (programme, holder, category) "
        "DO UPDATE SET balance = ledger_accounts.balance + excluded.balance, "
        "opened_at = COALESCE(ledger_accounts.opened_at, excluded.opened_at), "
        "last_pos = excluded.last_pos",
        [(*key, change[key], opened[key], last[key]) for key in sorted(change)],
    )
    tx.execute_many(
        "INSERT INTO ledger_daily (programme, holder, category, day, net) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (programme, holder, category, day) "
        "DO UPDATE SET net = ledger_daily.net + excluded.net",
        [(*key, net) for key, net in sorted(daily.items())],
    )
    tx.execute_many(
        "INSERT INTO points_balance_queue (programme, member_id) VALUES (?, ?) "
        "ON CONFLICT (programme, member_id) DO NOTHING",
        sorted(members),
    )
    return [pos_of[i] for i in ids]


ID_CHUNK: Final = 500  # event ids per lookup: well inside SQLite's parameter limit
EVENT_COLUMNS: Final = (
    "event_id",
    "kind",
    "at",
    "programme",
    "channel",
    "store_id",
    "till_id",
    "campaign_id",
    "body",
    "booked_at",
    "box_id",
    "box_seq",
)
ENTRY_COLUMNS: Final = (
    "pos",
    "idx",
    "programme",
    "holder",
    "category",
    "side",
    "points",
    "signed",
    "at",
    "kind",
    "channel",
    "store_id",
    "till_id",
    "campaign_id",
)
