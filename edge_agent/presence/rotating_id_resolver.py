"""Who an advertisement is: rotating member identifiers and enrolled beacon tags, offline.

Theory of operation
-------------------
HQ syncs to a store the keys of its consenting members only (``MemberKey``: member, key id,
16-byte key, optional validity window). A phone advertises ``rotating_id(key, counter, K)``
(``cloud_sync.contract.rotating_id``), new every 2^K seconds. Given an observed identifier
and ``now``, the resolver answers the member in O(1) from a table it precomputes:

* **Accept window.** Counters ``c-N .. c+N`` around ``c = counter_at(now)``, where N is
  ``skew_periods``: a phone whose clock is up to about N periods off is still recognised.
* **Stale band.** Counters ``c-N-L .. c-N-1`` (L = ``stale_periods``) are also in the table,
  only to tell a replayed old identifier (STALE) from a stranger's (UNKNOWN) in the logs; a
  stale identifier is never resolved, and the refusal names no member.
* **Refresh.** When ``now`` moves into a new period the table drops the counters that left
  the band and adds the one that entered it (one HMAC per member per period, not a rebuild);
  a clock step of more than the band rebuilds it. ``advance`` does it ahead of time.
* **Ahead of time.** The period's one new counter costs one HMAC per member (about 70 ms for
  10,000 members), which would stall the agent's loop at every period change. ``upcoming``
  names that counter a little before it is due, ``precompute`` makes its entries off the loop
  (a worker thread: it only reads), and ``install`` hands them over, so the change itself is
  dictionary inserts. Entries computed for an older set of keys are dropped (``replace``).
* **Validity.** A key contributes only to periods that overlap its window, so HQ can rotate a
  member's key with an overlap and a withdrawn key stops resolving at its ``valid_until``.
* **Collisions.** 64-bit identifiers: with 10,000 members and an 11-period band the chance
  that two entries collide is about 3e-10; if they ever do, the answer is AMBIGUOUS, never a
  guess.

Fixed beacon tags enrolled for a member (``EnrolledTag``: an iBeacon UUID+major+minor, an
AltBeacon id or an Eddystone-UID namespace+instance) are a dictionary lookup.

``resolve(frame, now)`` takes a parsed frame: the member app's frame and Eddystone-EID frames
go through the rotating table (a phone may advertise its identifier in either), fixed frames
through the tags, and a frame with no identity (TLM, URL) answers None. Nothing here does
I/O; ``now`` is always an argument; nothing is kept about an identifier that did not resolve.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from cloud_sync.contract.rotating_id import (
    DEFAULT_EXPONENT,
    ID_BYTES,
    KEY_BYTES,
    check_exponent,
    counter_at,
    rotating_id,
)
from edge_agent.presence.frames.eddystone import EddystoneEid
from edge_agent.presence.frames.member import MemberRotatingId
from edge_agent.presence.frames.parse import Frame, TagIdentity, tag_identity

DEFAULT_SKEW_PERIODS: Final = 2
DEFAULT_STALE_PERIODS: Final = 6


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberKey:
    member_id: str
    key_id: str
    key: bytes  # KEY_BYTES
    valid_from: datetime | None = None
    valid_until: datetime | None = None  # exclusive


@dataclass(frozen=True, slots=True, kw_only=True)
class EnrolledTag:
    member_id: str
    identity: TagIdentity


class Via(StrEnum):
    ROTATING_ID = "rotating_id"
    TAG = "tag"


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolved:
    member_id: str
    via: Via
    key_id: str | None = None  # rotating ids: which key matched
    counter: int | None = None  # rotating ids: the period it was made for
    skew_periods: int = 0  # counter minus the box's current counter


class UnresolvedReason(StrEnum):
    UNKNOWN = "unknown"  # no consenting member's key or tag
    STALE = "stale"  # an identifier from a period already past the skew window (a replay)
    AMBIGUOUS = "ambiguous"  # two members' entries collide: refuse rather than guess


@dataclass(frozen=True, slots=True)
class Unresolved:
    reason: UnresolvedReason


@dataclass(frozen=True, slots=True)
class _Entry:
    member_id: str
    key_id: str
    counter: int


@dataclass(frozen=True, slots=True)
class _Key:
    member_id: str
    key_id: str
    key: bytes
    first_counter: int  # first period the key is valid in (inclusive)
    last_counter: int | None  # last period (inclusive); None: open-ended


class RotatingIdResolver:
    """Resolves rotating identifiers and enrolled tags to members; see the module docstring."""

    def __init__(
        self,
        keys: Iterable[MemberKey],
        *,
        tags: Iterable[EnrolledTag] = (),
        exponent: int = DEFAULT_EXPONENT,
        skew_periods: int = DEFAULT_SKEW_PERIODS,
        stale_periods: int = DEFAULT_STALE_PERIODS,
    ) -> None:
        check_exponent(exponent)
        if skew_periods < 0 or stale_periods < 0:
            raise ValueError("skew_periods and stale_periods are >= 0")
        self._exponent = exponent
        self._skew = skew_periods
        self._stale = stale_periods
        self._keys: list[_Key] = []
        self._tags: dict[TagIdentity, str] = {}
        self._ids: dict[bytes, tuple[_Entry, ...]] = {}
        self._by_counter: dict[int, list[bytes]] = {}
        self._center: int | None = None
        self._generation = 0  # grows with every replace(): precomputed entries carry it
        self._ready: dict[int, list[tuple[bytes, _Entry]]] = {}  # install()ed, not yet added
        self.replace(keys, tags)

    def replace(self, keys: Iterable[MemberKey], tags: Iterable[EnrolledTag]) -> None:
        """Take a new set of keys and tags (an HQ delta); the table is rebuilt on next use."""
        self._keys = [self._key(k) for k in keys]
        self._tags = {tag.identity: tag.member_id for tag in tags}
        self._ids.clear()
        self._by_counter.clear()
        self._center = None
        self._generation += 1
        self._ready.clear()

    def resolve(self, frame: Frame, now: datetime) -> Resolved | Unresolved | None:
        """Who ``frame`` is, or why not; None for a frame that carries no identity."""
        if isinstance(frame, MemberRotatingId):
            return self.resolve_id(frame.rotating_id, now)
        if isinstance(frame, EddystoneEid):
            return self.resolve_id(frame.eid, now)
        identity = tag_identity(frame)
        if identity is None:
            return None
        member_id = self._tags.get(identity)
        if member_id is None:
            return Unresolved(UnresolvedReason.UNKNOWN)
        return Resolved(member_id=member_id, via=Via.TAG)

    def resolve_id(self, identifier: bytes, now: datetime) -> Resolved | Unresolved:
        """Who advertised the 8-byte ``identifier`` at ``now``, within the skew window."""
        center = self.advance(now)
        entries = self._ids.get(identifier) if len(identifier) == ID_BYTES else None
        if not entries:
            return Unresolved(UnresolvedReason.UNKNOWN)
        accepted = [e for e in entries if abs(e.counter - center) <= self._skew]
        if not accepted:
            return Unresolved(UnresolvedReason.STALE)
        if len({e.member_id for e in accepted}) > 1:
            return Unresolved(UnresolvedReason.AMBIGUOUS)
        entry = min(accepted, key=lambda e: abs(e.counter - center))
        return Resolved(
            member_id=entry.member_id,
            via=Via.ROTATING_ID,
            key_id=entry.key_id,
            counter=entry.counter,
            skew_periods=entry.counter - center,
        )

    def advance(self, now: datetime) -> int:
        """Bring the table to ``now``'s period (``resolve`` does it too) and answer its counter.

        A refresh costs one HMAC per member (about 10 ms per 1,000 members on a laptop core):
        a housekeeping timer can call this just after each period starts, so no advertisement
        waits for it.
        """
        center = counter_at(now, self._exponent)
        if center != self._center:
            self._move_to(center)
        return center

    def upcoming(self, now: datetime, *, lead_s: float) -> int | None:
        """The counter the next period change will add, if that change is within ``lead_s``
        of ``now`` and its entries are neither in the table nor ready; else None."""
        center = counter_at(now, self._exponent)
        period_end = (center + 1) << self._exponent
        if self._center != center or period_end - now.timestamp() > lead_s:
            return None
        entering = center + 1 + self._skew
        if entering in self._by_counter or entering in self._ready:
            return None
        return entering

    def precompute(self, counter: int) -> tuple[int, int, list[tuple[bytes, _Entry]]]:
        """The entries of ``counter`` for the keys held now; reads only (call it off the loop).
        Pass the result to ``install``."""
        generation, keys = self._generation, self._keys
        return (
            generation,
            counter,
            [
                (
                    rotating_id(k.key, counter, self._exponent),
                    _Entry(k.member_id, k.key_id, counter),
                )
                for k in keys
                if k.first_counter <= counter
                and (k.last_counter is None or counter <= k.last_counter)
            ],
        )

    def install(self, computed: tuple[int, int, list[tuple[bytes, _Entry]]]) -> bool:
        """Keep ``precompute``'s entries for when their counter enters; False (dropped) if the
        keys were replaced meanwhile."""
        generation, counter, entries = computed
        if generation != self._generation:
            return False
        self._ready[counter] = entries
        return True

    def table_size(self) -> int:
        """How many identifiers the table holds now (for health and the benchmark)."""
        return len(self._ids)

    def _key(self, key: MemberKey) -> _Key:
        if len(key.key) != KEY_BYTES:
            raise ValueError(f"member key {key.key_id}: {len(key.key)} bytes, not {KEY_BYTES}")
        first = 0 if key.valid_from is None else counter_at(key.valid_from, self._exponent)
        last = None
        if key.valid_until is not None:
            # valid_until is exclusive: the last period is the one holding the instant before it.
            last = (int(key.valid_until.timestamp()) - 1) >> self._exponent
        return _Key(key.member_id, key.key_id, bytes(key.key), first, last)

    def _move_to(self, center: int) -> None:
        wanted = range(max(0, center - self._skew - self._stale), center + self._skew + 1)
        for counter in [c for c in self._by_counter if c not in wanted]:
            self._drop(counter)
        for counter in wanted:
            if counter not in self._by_counter:
                self._add(counter)
        self._center = center

    def _add(self, counter: int) -> None:
        ready = self._ready.pop(counter, None)
        entries = ready if ready is not None else self.precompute(counter)[2]
        added = []
        for identifier, entry in entries:
            self._ids[identifier] = (*self._ids.get(identifier, ()), entry)
            added.append(identifier)
        self._by_counter[counter] = added
        for stale in [c for c in self._ready if c < counter - self._skew - self._stale]:
            del self._ready[stale]

    def _drop(self, counter: int) -> None:
        for identifier in self._by_counter.pop(counter):
            rest = tuple(e for e in self._ids.get(identifier, ()) if e.counter != counter)
            if rest:
                self._ids[identifier] = rest
            else:
                self._ids.pop(identifier, None)
