"""The points ledger as an in-memory fold of its events.

Theory of operation
-------------------
``Ledger.apply`` asks ``admission.admit`` and, when the event is admitted, appends it: its
entries go to the end of each account's list and the account's running balance moves by the
posting. Nothing applied is ever changed or removed; ``events`` returns them in the order they
were applied. A ``Replayed`` or ``Overdrawn`` answer, or an exception, leaves the ledger as it
was.

``balance(account)`` is the running total; ``balance(account, as_of=t)`` folds the entries
dated at or before ``t``, so a balance can be asked at any point in time (including events
that arrived late with an earlier date). Both are ``credits - debits``; over all accounts
they sum to zero.

This is the reference the stores are tested against and what the pure rules (expiry, merge)
read; it holds everything in memory, so it is not HQ's store of millions of members.
"""

from __future__ import annotations

from datetime import datetime

from edge_agent.domain.points.accounts import Account, Category, MemberAccount
from edge_agent.domain.points.admission import (
    Admission,
    Admitted,
    OverdraftPolicy,
    admit,
)
from edge_agent.domain.points.event import Entry, EventKind, LedgerEvent


class Ledger:
    def __init__(self, *, policy: OverdraftPolicy | None = None) -> None:
        self.policy = policy or OverdraftPolicy()
        self._events: dict[str, LedgerEvent] = {}  # in the order applied
        self._entries: dict[Account, list[Entry]] = {}
        self._balances: dict[Account, int] = {}
        self._opened: dict[MemberAccount, datetime] = {}

    def apply(self, event: LedgerEvent) -> Admission:
        decision = admit(event, self, self.policy)
        if not isinstance(decision, Admitted):
            return decision
        self._events[event.event_id] = event
        for entry in event.entries():
            account = entry.posting.account
            self._entries.setdefault(account, []).append(entry)
            self._balances[account] = self._balances.get(account, 0) + entry.posting.signed
            if event.kind is EventKind.OPENING and isinstance(account, MemberAccount):
                self._opened[account] = event.at
        return decision

    # -- LedgerView ---------------------------------------------------------------------------

    def event(self, event_id: str) -> LedgerEvent | None:
        return self._events.get(event_id)

    def balance(self, account: Account, *, as_of: datetime | None = None) -> int:
        if as_of is None:
            return self._balances.get(account, 0)
        return sum(e.posting.signed for e in self._entries.get(account, ()) if e.at <= as_of)

    def opened_at(self, account: MemberAccount) -> datetime | None:
        return self._opened.get(account)

    # -- reading ------------------------------------------------------------------------------

    @property
    def events(self) -> tuple[LedgerEvent, ...]:
        return tuple(self._events.values())

    def entries(self, account: Account) -> tuple[Entry, ...]:
        """``account``'s entries in the order applied (its opening entry first)."""
        return tuple(self._entries.get(account, ()))

    def accounts(self) -> tuple[Account, ...]:
        return tuple(self._entries)

    def member_balances(self, programme: str, member: str) -> dict[Category, int]:
        """The member's balance per category in ``programme`` (open accounts only)."""
        return {
            c: self._balances[a]
            for c in Category
            if (a := MemberAccount(programme, member, c)) in self._opened
        }
