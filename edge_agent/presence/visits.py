"""Store visits: when a member's current visit began, from presence events. Pure.

Theory of operation
-------------------
A visit is one stretch of a member being in the store: it begins at the member's first Entered
in any zone and ends when they have been in no zone for ``gap_s`` (a member who steps outside
for a call and comes back within the gap is still on the same visit; the entrance tap or the
till does not need to be seen). The per-visit caps of ``proximity_rules`` count a member's
triggers since ``started_at(member)``.

Times are the tracker's monotonic seconds. The rules take datetimes: the integrator converts
(``wall_now - timedelta(seconds=mono_now - started_at)``), or keeps the wall time of the
Entered for which ``observe`` returned True (a new visit began).
Memory: one entry per member seen within ``gap_s``; ``prune`` forgets the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge_agent.presence.tracker import Entered, Exited, PresenceEvent


@dataclass(slots=True)
class _Visit:
    started_at: float
    zones: set[str] = field(default_factory=set)
    left_at: float | None = None  # when the last zone was exited; None while in one


class VisitBook:
    def __init__(self, *, gap_s: float) -> None:
        if gap_s <= 0:
            raise ValueError("gap_s must be positive")
        self.gap_s = gap_s
        self._visits: dict[str, _Visit] = {}

    def observe(self, event: PresenceEvent) -> bool:
        """Record an event; True when it opened a new visit."""
        visit = self._visits.get(event.identity)
        if isinstance(event, Entered):
            opened = visit is None or (
                visit.left_at is not None and event.at - visit.left_at >= self.gap_s
            )
            if opened or visit is None:
                visit = self._visits[event.identity] = _Visit(started_at=event.at)
            visit.zones.add(event.zone)
            visit.left_at = None
            return opened
        if isinstance(event, Exited) and visit is not None:
            visit.zones.discard(event.zone)
            if not visit.zones:
                visit.left_at = event.at
        return False

    def started_at(self, identity: str, now: float) -> float | None:
        """When ``identity``'s current visit began, or None if they are on no visit now."""
        visit = self._visits.get(identity)
        if visit is None or (visit.left_at is not None and now - visit.left_at >= self.gap_s):
            return None
        return visit.started_at

    def prune(self, now: float) -> int:
        """Forget visits that ended over ``gap_s`` ago; returns how many."""
        gone = [
            k
            for k, v in self._visits.items()
            if v.left_at is not None and now - v.left_at >= self.gap_s
        ]
        for k in gone:
            del self._visits[k]
        return len(gone)

    def forget(self, identity: str) -> None:
        self._visits.pop(identity, None)
