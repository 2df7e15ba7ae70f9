"""Per-till throttling of failed validations (brute force, DOMAIN.md section 4). Pure: no I/O.

Theory of operation
-------------------
Each till has a sliding window of the times of its recent *guess-like* failures (a code that is
malformed, unknown, or someone else's). When a till reaches ``max_failures`` inside ``window``
it is blocked for ``cooldown``: every validation from it is refused with TILL_THROTTLED until
then, and ``record_failures`` returns a ``Flag`` exactly once per block so the caller can log it
and write a fraud event. Other refusals (minimum spend, expired...) are honest mistakes of a
real customer and do not count. State lives in memory only; a restart forgets it, which at
worst gives an attacker one more window. A change of limits while the agent runs keeps it
(``carry_over``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from edge_agent.domain.decision import Reason

GUESS_REASONS = frozenset({Reason.MALFORMED, Reason.NOT_FOUND, Reason.WRONG_MEMBER})


@dataclass(frozen=True, slots=True, kw_only=True)
class ThrottleConfig:
    max_failures: int = 10
    window: timedelta = timedelta(minutes=1)
    cooldown: timedelta = timedelta(minutes=5)
    counted: frozenset[Reason] = GUESS_REASONS

    def __post_init__(self) -> None:
        if self.max_failures < 1:
            raise ValueError("max_failures must be at least 1")
        if self.window <= timedelta(0) or self.cooldown <= timedelta(0):
            raise ValueError("window and cooldown must be positive")


@dataclass(frozen=True, slots=True, kw_only=True)
class Flag:
    """Raised once when a till gets blocked."""

    till_id: str
    failures: int
    since: datetime  # the oldest failure in the window
    blocked_until: datetime


@dataclass(slots=True)
class _TillState:
    failures: deque[datetime] = field(default_factory=deque)
    blocked_until: datetime | None = None


class TillThrottle:
    def __init__(self, *, config: ThrottleConfig | None = None) -> None:
        self.config = config or ThrottleConfig()
        self._tills: dict[str, _TillState] = {}

    def blocked_until(self, till_id: str, now: datetime) -> datetime | None:
        """When the block on ``till_id`` ends, or None if it may validate now."""
        state = self._tills.get(till_id)
        if state is None or state.blocked_until is None:
            return None
        if now >= state.blocked_until:
            state.blocked_until = None
            return None
        return state.blocked_until

    def record_failures(self, till_id: str, reasons: list[Reason], now: datetime) -> Flag | None:
        """Count the guess-like refusals of one request; return a Flag if this blocks the till."""
        counted = sum(1 for r in reasons if r in self.config.counted)
        if counted == 0:
            return None
        state = self._tills.setdefault(till_id, _TillState())
        horizon = now - self.config.window
        while state.failures and state.failures[0] <= horizon:
            state.failures.popleft()
        state.failures.extend([now] * counted)
        if len(state.failures) < self.config.max_failures:
            return None
        if state.blocked_until is not None and now < state.blocked_until:
            return None  # already blocked; flagged when the block started
        state.blocked_until = now + self.config.cooldown
        flag = Flag(
            till_id=till_id,
            failures=len(state.failures),
            since=state.failures[0],
            blocked_until=state.blocked_until,
        )
        state.failures.clear()  # a fresh window after the cool-down
        return flag

    def carry_over(self, previous: TillThrottle) -> None:
        """Take over ``previous``'s tills when the limits change while the agent runs: the
        failures already counted still count against the new limit and window (so a change
        of config never hands a guessing till a fresh window), and a block in force lasts
        this config's cooldown from when it began."""
        shift = self.config.cooldown - previous.config.cooldown
        for till_id, state in previous._tills.items():
            blocked = None if state.blocked_until is None else state.blocked_until + shift
            self._tills[till_id] = _TillState(failures=deque(state.failures), blocked_until=blocked)

    def forget_idle(self, now: datetime) -> None:
        """Drop tills with nothing in their window and no block (bounds memory)."""
        horizon = now - self.config.window
        for till_id in [
            t
            for t, s in self._tills.items()
            if (not s.failures or s.failures[-1] <= horizon)
            and (s.blocked_until is None or s.blocked_until <= now)
        ]:
            del self._tills[till_id]
