"""Till postings as a box sends them (``points.posted`` envelopes), and checks of HQ's ledger
against the in-memory reference ``Ledger``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from cloud_sync.contract import event_envelope as envelope
from cloud_sync.contract.event_envelope import EventEnvelope, EventType
from cloud_sync.hq.ingest.event_store import EventStore, Row, Tx, to_micros
from cloud_sync.hq.ledger.book import holder_and_category
from edge_agent.domain.points import codec, kinds
from edge_agent.domain.points.accounts import Account, Category, MemberAccount
from edge_agent.domain.points.event import Channel, LedgerEvent, Origin
from edge_agent.domain.points.ledger import Ledger
from tests.contract.streams import event
from tests.hq.ingest.builders import AT, BOX_A, STORE

PROGRAMME = "main"
TILL = Origin(Channel.IN_STORE, store=STORE, till="till-1")


def acct(member: str, category: Category = Category.REGULAR) -> MemberAccount:
    return MemberAccount(PROGRAMME, member, category)


def earn(event_id: str, member: str, points: int, *, hours: float = 0) -> LedgerEvent:
    at = AT + timedelta(hours=hours)
    return kinds.earn(event_id=event_id, at=at, origin=TILL, account=acct(member), points=points)


def burn(event_id: str, member: str, points: int, *, hours: float = 0) -> LedgerEvent:
    at = AT + timedelta(hours=hours)
    return kinds.burn(event_id=event_id, at=at, origin=TILL, account=acct(member), points=points)


def line(
    n: int, side: str, points: int, *, band: str = "A", campaign: str | None = None
) -> dict[str, Any]:
    return {
        "line": n,
        "sku": f"sku-{n}",
        "band": band,
        "campaign_id": campaign,
        "side": side,
        "points": points,
    }


def posted(
    seq: int,
    ledger: LedgerEvent | None,
    *,
    box: str = BOX_A,
    lines: Sequence[dict[str, Any]] = (),
    details: dict[str, Any] | None = None,
) -> EventEnvelope:
    """Box event ``seq`` carrying ``ledger`` (or ``details`` as given, for a broken one)."""
    e = event(seq, prev_hash=None, box=box)
    member = None
    if ledger is not None:
        member = next(a.member for a in ledger.accounts() if isinstance(a, MemberAccount))
        details = details or {
            "ledger": codec.encode(ledger),
            "lines": list(lines),
            "rules_version": "r1",
            "variant": None,
        }
    return replace(
        e,
        event_id=envelope.event_id(e.occurred_at, f"{box}{seq}".encode().ljust(10, b"-")[:10]),
        type=EventType.POINTS_POSTED,
        code=None,
        amount=0,
        attribution=replace(e.attribution, member_id=member),
        details=details or {},
    )


def balance_at(store: EventStore, account: Account, at: datetime | None = None) -> int:
    """HQ's balance of ``account``: the sum of its entries dated at or before ``at``."""
    holder, category = holder_and_category(account)
    sql = (
        "SELECT COALESCE(SUM(signed), 0) FROM ledger_entries "
        "WHERE programme = ? AND holder = ? AND category = ?"
    )
    params: list[object] = [account.programme, holder, category]
    if at is not None:
        sql += " AND at <= ?"
        params.append(to_micros(at))
    return int(store.run(lambda tx: tx.query(sql, params))[0][0])


def _query(tx: Tx, *, sql: str, params: Sequence[object]) -> list[Row]:
    return tx.query(sql, params)


def assert_matches(store: EventStore, reference: Ledger, times: Sequence[datetime]) -> None:
    """Every account's running balance, and its fold at each of ``times``, equal the
    reference's; every event's entries sum to zero."""
    for account in reference.accounts():
        holder, category = holder_and_category(account)
        params = (account.programme, holder, category)
        running = store.run(
            partial(
                _query,
                sql="SELECT balance FROM ledger_accounts "
                "WHERE programme = ? AND holder = ? AND category = ?",
                params=params,
            )
        )
        assert int(running[0][0]) == reference.balance(account), account
        assert balance_at(store, account) == reference.balance(account), account
        for t in times:
            assert balance_at(store, account, t) == reference.balance(account, as_of=t), (
                account,
                t,
            )
    unbalanced = store.run(
        lambda tx: tx.query("SELECT pos FROM ledger_entries GROUP BY pos HAVING SUM(signed) <> 0")
    )
    assert unbalanced == []
    booked = store.run(lambda tx: tx.query("SELECT event_id FROM ledger_events ORDER BY pos"))
    assert [str(r[0]) for r in booked] == [e.event_id for e in reference.events]
