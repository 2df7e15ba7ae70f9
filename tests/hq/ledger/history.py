"""A varied, deterministic points history for the ledger API and finance tests, booked at HQ
and folded by the in-memory reference ``Ledger`` at once, so every answer can be checked
against the reference.

Three members over twenty days from ``T0``: earns and burns at two stores' tills and online,
promised points and their conversion, transfers, refunds that return and restore at once,
a bulk award, and several events at the very same instant (the keyset's tie-break on
booking order is exercised). Events the reference refuses (an overdraft) are not booked.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from cloud_sync.hq.ingest.event_store import EventStore, Tx
from cloud_sync.hq.ledger.book import book
from edge_agent.domain.points import kinds
from edge_agent.domain.points.accounts import Category, MemberAccount
from edge_agent.domain.points.admission import Admitted, OverdraftPolicy
from edge_agent.domain.points.event import Channel, LedgerEvent, Origin
from edge_agent.domain.points.ledger import Ledger
from tests.points.factories import HQ, T0, P, acct

MEMBERS = ("ann", "bob", "cy")
ORIGINS = (
    Origin(Channel.IN_STORE, store="S001", till="T1"),
    Origin(Channel.IN_STORE, store="S001", till="T2"),
    Origin(Channel.IN_STORE, store="S002", till="T1"),
    Origin(Channel.E_COMMERCE),
    Origin(Channel.APP),
)
POLICY = OverdraftPolicy()


@dataclass(frozen=True)
class History:
    ledger: Ledger
    booked: list[LedgerEvent]  # in booking order


def _candidates(rng: random.Random, n: int) -> list[LedgerEvent]:
    out: list[LedgerEvent] = []
    for m in MEMBERS:
        for c in (Category.REGULAR, Category.PROMISED):
            out.append(
                kinds.opening(event_id=f"open-{m}-{c}", at=T0, origin=HQ, account=acct(m, c))
            )
    at = T0
    for i in range(n):
        if rng.random() < 0.7:  # else: the same instant as the event before
            at += timedelta(minutes=rng.randrange(1, 600))
        m = rng.choice(MEMBERS)
        o = rng.choice(ORIGINS)
        a = acct(m)
        roll = rng.random()
        eid = f"ev-{i:04d}"
        pts = rng.randrange(1, 500)
        if roll < 0.35:
            campaign = rng.choice([None, "SPRING"])
            out.append(kinds.earn(event_id=eid, at=at, origin=o, account=a, points=pts,
                                  campaign=campaign))  # fmt: skip
        elif roll < 0.55:
            out.append(kinds.burn(event_id=eid, at=at, origin=o, account=a, points=pts // 2 + 1))
        elif roll < 0.62:
            promised = acct(m, Category.PROMISED)
            out.append(kinds.earn(event_id=eid, at=at, origin=HQ, account=promised, points=pts))
        elif roll < 0.68:
            out.append(kinds.conversion(event_id=eid, at=at, origin=HQ, programme=P, member=m,
                                        points=pts // 5 + 1))  # fmt: skip
        elif roll < 0.78:
            other = acct(rng.choice([x for x in MEMBERS if x != m]))
            out.append(kinds.transfer(event_id=eid, at=at, origin=Origin(Channel.WEB), sender=a,
                                      recipient=other, points=pts // 6 + 1))  # fmt: skip
        elif roll < 0.9:
            out.append(kinds.refund_return(event_id=eid, at=at, origin=o, account=a,
                                           returned=pts // 10, restored=pts // 12 + 1))  # fmt: skip
        elif roll < 0.95:
            out.append(kinds.burn_reversal(event_id=eid, at=at, origin=o, account=a,
                                           points=pts // 16 + 1))  # fmt: skip
        else:
            everyone = [acct(x) for x in MEMBERS]
            out.append(kinds.bulk_award(event_id=eid, at=at, origin=HQ, campaign="BULK",
                                        accounts=everyone, points=25))  # fmt: skip
    return out


def build(store: EventStore, *, seed: int = 11, n: int = 160) -> History:
    """Book the history into ``store`` (one transaction) and fold it into a reference."""
    ledger = Ledger(policy=POLICY)
    booked = [
        e for e in _candidates(random.Random(seed), n) if isinstance(ledger.apply(e), Admitted)
    ]

    def write(tx: Tx) -> None:
        for event in booked:
            assert isinstance(book(tx, event, policy=POLICY, booked_at=T0), Admitted)

    store.run(write)
    return History(ledger=ledger, booked=booked)


def end_of_history(history: History) -> datetime:
    return max(e.at for e in history.booked)


def member_accounts(member: str) -> list[MemberAccount]:
    return [MemberAccount(P, member, c) for c in Category]
