"""How points age: lots, first in first out by the time they were credited.

Theory of operation
-------------------
Expiry takes the oldest points first, so a member account is read as a queue of *lots*. Its
entries up to ``as_of`` are taken in time order (entries at the same instant in the order they
were applied) and:

* a credit first pays off any *deficit* (points the account is below zero), and the rest
  becomes a lot dated at the credit's time;
* a debit takes points from the oldest lots first; what the lots cannot cover becomes deficit.

Every credit starts a lot at its own time, whatever it is: points that arrive by transfer,
conversion, merge or a burn reversal are aged from the day they arrived, not from when some
other account first earned them. That is the simple, auditable rule; it can only make points
live longer, never expire early.

The lots always add up to ``max(balance, 0)`` of the entries read, so expiry can never debit
more than the member holds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from edge_agent.domain.points.event import Entry


@dataclass(frozen=True, slots=True)
class Lot:
    at: datetime  # when these points were credited
    points: int  # how many of them are left


@dataclass(frozen=True, slots=True)
class Aging:
    lots: tuple[Lot, ...]  # oldest first
    deficit: int  # points the account is below zero (then ``lots`` is empty)


def age(entries: Iterable[Entry], *, as_of: datetime) -> Aging:
    """The lots of one account's ``entries`` (in the order they were applied) as of ``as_of``."""
    ordered = sorted((e for e in entries if e.at <= as_of), key=lambda e: e.at)
    lots: deque[Lot] = deque()
    deficit = 0
    for entry in ordered:
        amount = entry.posting.signed
        if amount >= 0:
            paid = min(amount, deficit)
            deficit -= paid
            if amount > paid:
                lots.append(Lot(entry.at, amount - paid))
            continue
        wanted = -amount
        while wanted and lots:
            oldest = lots.popleft()
            taken = min(wanted, oldest.points)
            wanted -= taken
            if taken < oldest.points:
                lots.appendleft(Lot(oldest.at, oldest.points - taken))
        deficit += wanted
    return Aging(lots=tuple(lots), deficit=deficit)
