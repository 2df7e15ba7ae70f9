"""What a box may send next: a pure window over its event sequence, as HQ's acks move it.

The box's outbox pump (``edge_agent/sync/outbox_pump.py``) and HQ's fleet simulator
(``cloud_sync/fleet_sim/``) both send by these rules, so it lives with the acks it reads.

Theory of operation
-------------------
The outbox holds every event HQ has not acknowledged, in seq order; HQ's ``Ack`` names
``stored_through``, the seq up to which it durably holds every event (``contract/ack.py``),
and the ``missing`` ranges it knows of above it. The window keeps three numbers and a list:

    acked       the highest stored_through seen (never goes back: acks are cumulative)
    cursor      the next seq to send
    in_flight   the batches sent and not yet covered by an ack: (first, last, sent_at)

``next_send`` answers the seq to read from, or None when ``in_flight`` is full: that bound is
the whole of the pump's back-pressure (paho queues whatever it is handed, PERFORMANCE.md), so
a backlog of a million events costs a few batches of memory. An ack drops the batches it
covers and moves ``acked``; an ack that moves ``cursor``'s way nothing but lists ``missing``
ranges HQ cannot fill from batches in flight (a batch lost or quarantined on the way) rewinds
the cursor to the first missing seq. So does ``expired`` when the oldest batch in flight has
waited ``ack_timeout_s``, and ``rewind`` after a reconnect: HQ stores events idempotently, so
sending a range twice costs bandwidth, never a duplicate, and going back to the last ack is
always safe.

``TokenBucket`` is the drain's rate limit: events per second with a burst of one second's
worth, so a box back from an outage catches up at a steady pace instead of starving the
tills' thread and HQ.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cloud_sync.contract.ack import Ack


@dataclass(frozen=True, slots=True, kw_only=True)
class InFlight:
    first: int
    last: int
    sent_at: float  # monotonic seconds


@dataclass(slots=True, kw_only=True)
class SendWindow:
    acked: int  # every seq <= acked is at HQ
    max_in_flight: int
    cursor: int = 0  # the next seq to send; set from acked when 0
    in_flight: list[InFlight] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.cursor = max(self.cursor, self.acked + 1)

    def next_send(self) -> int | None:
        """The seq the next batch starts at, or None while the window is full."""
        if len(self.in_flight) >= self.max_in_flight:
            return None
        return self.cursor

    def sent(self, first: int, last: int, *, now: float) -> None:
        if first != self.cursor or last < first:
            raise ValueError(f"batch {first}..{last} does not start at the cursor {self.cursor}")
        self.in_flight.append(InFlight(first=first, last=last, sent_at=now))
        self.cursor = last + 1

    def on_ack(self, ack: Ack) -> bool:
        """Take HQ's ack; True if it acknowledged anything new (the outbox can shrink)."""
        if ack.stored_through < self.acked:
            # Overtaken: a later ack (from another ingest worker, say) has been taken; the
            # holes this one names may be filled already, so rewinding for them would resend
            # a whole window for nothing.
            return False
        moved = ack.stored_through > self.acked
        if moved:
            self.acked = ack.stored_through
            self.in_flight = [b for b in self.in_flight if b.last > self.acked]
            self.cursor = max(self.cursor, self.acked + 1)
        if ack.missing:
            first_missing = ack.missing[0].first
            covered = any(b.first <= first_missing <= b.last for b in self.in_flight)
            if not covered and first_missing < self.cursor:
                self._rewind_to(first_missing)
        return moved

    def expired(self, *, now: float, timeout_s: float) -> bool:
        """Rewind to the last ack if the oldest batch in flight has waited too long."""
        if self.in_flight and now - self.in_flight[0].sent_at >= timeout_s:
            self.rewind()
            return True
        return False

    def rewind(self, to: int | None = None) -> None:
        """Send again from ``to`` (a resend request's first seq), by default from the last
        ack (after a reconnect, or when acks stopped coming); never from below the ack."""
        self._rewind_to(self.acked + 1 if to is None else to)

    def _rewind_to(self, seq: int) -> None:
        self.cursor = max(seq, self.acked + 1)
        self.in_flight = [b for b in self.in_flight if b.last < self.cursor]


@dataclass(slots=True, kw_only=True)
class TokenBucket:
    """``rate`` tokens a second, at most ``rate`` banked (one second's burst)."""

    rate: float
    tokens: float = 0.0
    at: float = 0.0  # monotonic seconds of the last refill

    def wait_s(self, want: int, *, now: float) -> float:
        """Seconds until ``want`` tokens can be taken (0: take them now with ``take``)."""
        self._refill(now)
        need = min(float(want), self.rate) - self.tokens  # a batch over a second's worth waits 1 s
        return 0.0 if need <= 0 else need / self.rate

    def take(self, count: int, *, now: float) -> None:
        self._refill(now)
        self.tokens -= count  # may go negative for a batch over the burst: it is paid back

    def _refill(self, now: float) -> None:
        if now > self.at:
            self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
            self.at = now
