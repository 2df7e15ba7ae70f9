"""Whether an event may enter a ledger: the decision, apart from where the ledger is kept.

Theory of operation
-------------------
``admit`` reads what it needs through ``LedgerView`` (three lookups a store can answer from an
index: the event of an id, an account's balance, when an account was opened), so the in-memory
``Ledger``, the box's SQLite file and HQ's database decide alike. The checks, in order:

1. **Exactly once.** An id seen before: the same content is a ``Replayed`` no-op; other content
   raises ``EventConflictError`` (a till reusing a transaction id for a different sale must not
   win silently, nor lose what was booked first).
2. **Opening first.** An ``opening`` event must open accounts not yet open
   (``AccountAlreadyOpenError``); any other event may post only to open member accounts
   (``AccountNotOpenError``) and not before their opening (``BeforeOpeningError``). Programme
   accounts need no opening: they exist with the programme.
3. **No overdraft.** An event that would leave a member account below zero *and* lower than it
   was is ``Overdrawn``, with the shortfall, unless the policy allows that kind. An event that
   raises a negative balance (a credit, a merge moving a debt away) is always admitted. The
   check is against the balance now, in the order events are applied: a late event dated in
   the past is judged on what the member holds when it arrives.

Balance (postings summing to zero) is not checked here: a ``LedgerEvent`` that exists is
balanced (``event``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from edge_agent.domain.points.accounts import Account, MemberAccount
from edge_agent.domain.points.errors import (
    AccountAlreadyOpenError,
    AccountNotOpenError,
    BeforeOpeningError,
    EventConflictError,
)
from edge_agent.domain.points.event import EventKind, LedgerEvent

# Kinds that may take a member below zero by default: a refund after the points were spent, a
# debt moved by a merge, a migrated or imported debt, and a correction of what was booked.
# Burns, transfers, returns of referral awards and expiry may not.
DEFAULT_MAY_GO_NEGATIVE = frozenset(
    {
        EventKind.REFUND_RETURN,
        EventKind.MERGE,
        EventKind.OPENING,
        EventKind.IMPORT,
        EventKind.CORRECTION,
    }
)


@dataclass(frozen=True, slots=True)
class OverdraftPolicy:
    may_go_negative: frozenset[EventKind] = field(default=DEFAULT_MAY_GO_NEGATIVE)


@dataclass(frozen=True, slots=True)
class Admitted:
    event: LedgerEvent


@dataclass(frozen=True, slots=True)
class Replayed:
    event: LedgerEvent  # the one applied before (equal to the one offered)


@dataclass(frozen=True, slots=True)
class Overdrawn:
    """Refused: ``account`` holds ``balance`` and the event takes ``points`` net of it."""

    event_id: str
    account: MemberAccount
    balance: int
    points: int
    shortfall: int  # the points missing: how far below zero (or lower) the account would go


Admission = Admitted | Replayed | Overdrawn


class LedgerView(Protocol):
    def event(self, event_id: str) -> LedgerEvent | None: ...

    def balance(self, account: Account) -> int: ...

    def opened_at(self, account: MemberAccount) -> datetime | None: ...


def admit(event: LedgerEvent, view: LedgerView, policy: OverdraftPolicy) -> Admission:
    """The decision on ``event`` (raises for a conflict or an account out of its life)."""
    prior = view.event(event.event_id)
    if prior is not None:
        if prior != event:
            raise EventConflictError(event_id=event.event_id)
        return Replayed(prior)
    members = [a for a in event.accounts() if isinstance(a, MemberAccount)]
    for account in members:
        opened = view.opened_at(account)
        if event.kind is EventKind.OPENING:
            if opened is not None or sum(p.account == account for p in event.postings) > 1:
                raise AccountAlreadyOpenError(event_id=event.event_id, account=account)
        elif opened is None:
            raise AccountNotOpenError(event_id=event.event_id, account=account)
        elif event.at < opened:
            raise BeforeOpeningError(event_id=event.event_id, account=account, opened_at=opened)
    if event.kind in policy.may_go_negative:
        return Admitted(event)
    for account in members:
        before = view.balance(account)
        after = before + event.net(account)
        if after < 0 and after < before:
            return Overdrawn(
                event_id=event.event_id,
                account=account,
                balance=before,
                points=before - after,
                shortfall=min(-after, before - after),
            )
    return Admitted(event)
