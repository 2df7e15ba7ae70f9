"""The accounts of the points ledger.

Every member has one account per programme and points category (DOMAIN.md section 5): regular
points, promised points (awarded but not yet spendable, converted into regular later) and
trigger-based points. A programme has two accounts of its own, enough for every kind to
balance:

* ``LIABILITY`` (the issue account, deferred revenue): the other side of every point issued to
  or taken back from members. Its balance is minus what the programme owes its members, so
  issuing points debits it and burning them credits it back.
* ``BREAKAGE``: the other side of points that expired; what will never be redeemed, as booked.

Balances are signed ``credits - debits`` for every account, so across all accounts they sum to
zero at all times, and a member's balance is the points they hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Category(StrEnum):
    REGULAR = "regular"
    PROMISED = "promised"
    TRIGGER_BASED = "trigger_based"


class ProgrammeAccountKind(StrEnum):
    LIABILITY = "liability"
    BREAKAGE = "breakage"


@dataclass(frozen=True, slots=True, order=True)
class MemberAccount:
    programme: str
    member: str
    category: Category = Category.REGULAR

    def __str__(self) -> str:
        return f"member {self.member} / {self.programme} / {self.category}"


@dataclass(frozen=True, slots=True, order=True)
class ProgrammeAccount:
    programme: str
    kind: ProgrammeAccountKind

    def __str__(self) -> str:
        return f"programme {self.programme} / {self.kind}"


Account = MemberAccount | ProgrammeAccount


def liability(programme: str) -> ProgrammeAccount:
    return ProgrammeAccount(programme, ProgrammeAccountKind.LIABILITY)


def breakage(programme: str) -> ProgrammeAccount:
    return ProgrammeAccount(programme, ProgrammeAccountKind.BREAKAGE)
