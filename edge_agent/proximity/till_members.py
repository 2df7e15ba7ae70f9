"""Who is at each till: the member whose card or phone was tapped on the till's reader.

A tap names the member for that till for ``ttl`` (config ``presence.till_member_ttl_s``), long
enough to finish a sale and short enough that the next customer is not taken for them; the POS
clears it when the sale is done (``DELETE /v1/tills/{till}/member``). A newer tap at the same
till replaces the older. Held in memory on the agent's loop: a restart forgets who stood at a
till minutes ago, which is what a till expects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True, kw_only=True)
class AtTill:
    member_id: str
    how: str  # "token" (a phone's or card's signed member token) or "card" (an enrolled UID)
    reader: str
    at: datetime


class TillMembers:
    def __init__(self, *, ttl: timedelta) -> None:
        if ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        self.ttl = ttl
        self._at: dict[str, AtTill] = {}

    def tapped(self, till_id: str, who: AtTill) -> None:
        self._at[till_id] = who

    def at(self, till_id: str, now: datetime) -> AtTill | None:
        who = self._at.get(till_id)
        if who is not None and now - who.at >= self.ttl:
            del self._at[till_id]
            return None
        return who

    def clear(self, till_id: str) -> bool:
        return self._at.pop(till_id, None) is not None
