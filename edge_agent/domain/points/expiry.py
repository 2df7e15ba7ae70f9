"""Expiry: the points of a member account older than the programme's validity, taken when run.

Theory of operation
-------------------
Points live for ``validity`` after they were credited (FIFO lots, see ``lots``). An expiry run
at ``now`` (DOMAIN.md: booked when it is actually run, typically early the next day) debits
every point of a lot credited at or before ``now - validity`` that spending has not yet taken,
and credits them to the programme's breakage account. The event is dated ``now``; entries
dated after ``now`` (a till's clock ahead of HQ's) are not read, except that the debit never
exceeds the account's balance over all its entries, so an expiry never overdraws.

Running it again at the same ``now`` finds nothing (the debit took exactly those lots), and
the caller's event id (e.g. ``expiry:<programme>:<member>:<day>``) makes a replayed run a
no-op in the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from edge_agent.domain.points.accounts import MemberAccount, breakage
from edge_agent.domain.points.event import Entry, EventKind, LedgerEvent, Origin, Posting, Side
from edge_agent.domain.points.lots import age


def expiring(entries: Sequence[Entry], *, now: datetime, validity: timedelta) -> int:
    """How many points of the account whose ``entries`` these are expire at ``now``."""
    cutoff = now - validity
    due = sum(lot.points for lot in age(entries, as_of=now).lots if lot.at <= cutoff)
    return min(due, max(sum(e.posting.signed for e in entries), 0))


def expiry(
    *,
    event_id: str,
    now: datetime,
    origin: Origin,
    account: MemberAccount,
    entries: Sequence[Entry],
    validity: timedelta,
) -> LedgerEvent | None:
    """The expiry event of ``account`` at ``now`` (``entries``: ``Ledger.entries(account)``),
    or None when nothing is due."""
    points = expiring(entries, now=now, validity=validity)
    if points == 0:
        return None
    return LedgerEvent(
        event_id=event_id,
        kind=EventKind.EXPIRY,
        at=now,
        programme=account.programme,
        origin=origin,
        postings=(
            Posting(account, Side.DEBIT, points),
            Posting(breakage(account.programme), Side.CREDIT, points),
        ),
    )
