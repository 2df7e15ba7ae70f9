"""How many points the box may let a member spend: the offline bound.

Theory of operation
-------------------
The box cannot ask HQ at every checkout (it may be offline, and other stores may have posted
since). What it knows for sure is the member's balance as of the last sync plus the postings
it made itself and has not synced yet (earns positive, burns negative)::

    known     = synced_balance + sum(unsynced postings)
    available = max(0, known + offline_allowance)

The offline allowance is how far beyond the known balance the programme tolerates a spend (the
member may well have earned elsewhere since the sync): a configured risk, zero by default, so by
default nobody spends a point the box cannot account for. When a burn is cut by this bound, the
burn plan says whether the allowance was in play (``OFFLINE_ALLOWANCE_EXCEEDED``) or not
(``INSUFFICIENT_BALANCE``), with these numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Availability:
    synced_balance: int  # as of the last sync with HQ
    unsynced: int  # the net of this box's own postings since
    allowance: int  # the configured offline allowance
    known: int  # synced_balance + unsynced
    available: int  # max(0, known + allowance): the most a burn may take


def availability(
    *, synced_balance: int, unsynced_postings: Iterable[int], allowance: int
) -> Availability:
    if allowance < 0:
        raise ValueError(f"offline allowance must not be negative, got {allowance}")
    unsynced = sum(unsynced_postings)
    known = synced_balance + unsynced
    return Availability(
        synced_balance=synced_balance,
        unsynced=unsynced,
        allowance=allowance,
        known=known,
        available=max(0, known + allowance),
    )
