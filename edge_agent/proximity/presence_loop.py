"""The presence loop: what the scanners hear becomes members in zones, and zones become offers.

Theory of operation
-------------------
Everything here runs on the agent's one event loop, as a few supervised tasks sharing one
``PresenceLoop`` (no locks: asyncio never interleaves the synchronous steps):

* ``feed(source, scanner)``, one per scanner: takes what its filter kept off its queue and
  ``observe``\\s it: ``parse_advertisement`` (pure, refuses bad frames with a reason), then the
  resolver (a consenting member's rotating identifier or enrolled tag; anything else is counted
  by reason and forgotten), then a ``Sighting(member, source, rssi, at)`` for the tracker. The
  scanner's opaque device token is dropped here: members are recognised by their identifier,
  never by a radio address, and nothing about an unresolved advertisement is kept.
* ``tick_forever``: every ``tick_interval_s`` the tracker completes due enters, exits and dwell
  marks (``tracker.py``: the 1 s decision budget), and the resolver's table moves to the
  current period ahead of the next advertisement; the new period's identifiers are computed
  in a worker thread in the seconds before it starts (``RotatingIdResolver.upcoming``), so the
  move is dictionary inserts, not a pause of the loop.
* ``deliver_forever``: the tracker's ``Entered`` and ``Dwelled`` events that some rule is on
  become ``PresenceMoment``\\s on a bounded queue; this task hands them one at a time to the
  cache's thread (``ProximityService.consider``: decide, mint, record), so the scanners never
  wait for SQLite and a burst of members cannot pile work onto the tills' thread.
* ``follow_identities``: polls the cache's presence identities (HQ's deltas) and, when they
  changed, builds a new resolver in a worker thread (its table is one HMAC per member and
  period: about a second for 10,000 members, which must not stall the tills' requests on this
  loop) and swaps it in; a member who is no longer among them (consent withdrawn, keys
  revoked) is forgotten by the tracker and the visit book at once.

* ``taps_forever``: each NFC tap the readers hand over (``tap_heard``, on this loop) is
  identified (``tap_identify``: an HQ-signed member token, checked against HQ's keys as the
  cache holds them, or an enrolled card's salted UID digest). At a till's reader the member is
  named for that till (``TillMembers``, read by the POS through ``/v1/tills/{till}/member``); at
  a reader in a zone (the entrance) it is a check-in (``member.checked_in``), and on the first
  tap of a visit the rules on that zone at 0 s are asked, so a check-in reward is given at most
  once per visit. A tap that identifies nobody is counted and logged with its reason, never its
  UID.

A visit (``visits.py``) spans zones; its start is what the per-visit caps count from. Taps at an
entrance reader enter the same book (``tap``), so a tap and a later walk to the coffee zone are
one visit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Protocol

from edge_agent.presence.ble_port import Advertisement, BeaconScanner
from edge_agent.presence.frames.parse import parse_advertisement
from edge_agent.presence.frames.refusal import Refusal
from edge_agent.presence.nfc_port import Tap
from edge_agent.presence.proximity_rules import ProximityPolicy, Suppressed
from edge_agent.presence.rotating_id_resolver import (
    EnrolledTag,
    MemberKey,
    Resolved,
    RotatingIdResolver,
    Unresolved,
)
from edge_agent.presence.tap_identify import CardEnrolment, Identified, Unidentified, identify
from edge_agent.presence.tracker import (
    Dropped,
    Dwelled,
    Entered,
    Exited,
    ExitReason,
    PresenceEvent,
    PresenceTracker,
    Sighting,
)
from edge_agent.presence.visits import VisitBook
from edge_agent.presence.zones import TrackerConfig
from edge_agent.proximity.service import PresenceMoment, Recorded
from edge_agent.proximity.till_members import AtTill, TillMembers
from edge_agent.sync.hq_trust import HqTrust

log = logging.getLogger(__name__)

MOMENT_QUEUE = 1000  # moments waiting for the cache's thread; beyond, dropped and counted
PRECOMPUTE_LEAD_S = 10.0  # how long before a period starts its identifiers are computed
TAP_QUEUE = 100  # taps waiting to be identified (a reader gives a few a minute)
Ask = Callable[[PresenceMoment], Awaitable[tuple[Recorded, ...]]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Identities:
    """The resolver's and the tap identifier's input as the cache holds it, and its version."""

    version: int
    keys: tuple[MemberKey, ...]
    tags: tuple[EnrolledTag, ...]
    cards: CardEnrolment | None = None  # None: HQ has sent no card salt yet


@dataclass(frozen=True, slots=True, kw_only=True)
class ReaderPlace:
    """Where a reader stands: at a till, or in a zone (config ``presence.readers``)."""

    reader_id: str
    till: str | None = None
    zone: str | None = None


class CheckIn(Protocol):
    async def __call__(
        self, *, member_id: str, place: ReaderPlace, how: str, first_of_visit: bool
    ) -> None: ...


async def _no_check_in(
    *, member_id: str, place: ReaderPlace, how: str, first_of_visit: bool
) -> None:
    del member_id, place, how, first_of_visit


async def _no_trust() -> HqTrust:
    return HqTrust(MappingProxyType({}))


# make_resolver(keys, tags): the config's exponent and skew window over them
MakeResolver = Callable[[Iterable[MemberKey], Iterable[EnrolledTag]], RotatingIdResolver]
# poll(last_version) -> the identities when their version differs, else None
PollIdentities = Callable[[int | None], Awaitable[Identities | None]]


class PresenceLoop:
    """See the module docstring."""

    def __init__(
        self,
        *,
        tracker: TrackerConfig,
        policy: ProximityPolicy,
        make_resolver: MakeResolver,
        visit_gap_s: float,
        ask: Ask,
        clock: Callable[[], datetime],
        mono: Callable[[], float] = time.monotonic,
        on_recorded: Callable[[Recorded], None] | None = None,
        till_members: TillMembers | None = None,
        trust: Callable[[], Awaitable[HqTrust]] = _no_trust,
        check_in: CheckIn = _no_check_in,
    ) -> None:
        self.tracker = PresenceTracker(tracker)
        self.visits = VisitBook(gap_s=visit_gap_s)
        self._make_resolver = make_resolver
        self.resolver = make_resolver((), ())
        self._ask = ask
        self._clock = clock
        self._mono = mono
        self._on_recorded = on_recorded or log_recorded
        self._marks = frozenset((r.zone, r.min_dwell_s) for r in policy.rules)
        self._moments: asyncio.Queue[PresenceMoment] = asyncio.Queue(MOMENT_QUEUE)
        self._members: frozenset[str] | None = None  # of the identities last taken
        self.counts: Counter[str] = Counter()  # health: what happened to what was heard
        self.identities_version: int | None = None
        self.till_members = till_members or TillMembers(ttl=timedelta(minutes=3))
        self._trust = trust
        self._check_in = check_in
        self._cards = CardEnrolment(salt=b"", members={})
        self._taps: asyncio.Queue[tuple[ReaderPlace, Tap]] = asyncio.Queue(TAP_QUEUE)

    # -- synchronous steps (tests drive these directly) -----------------------------------------

    def observe(self, source: str, advert: Advertisement) -> None:
        """One kept advertisement heard by ``source``."""
        self.counts["adverts"] += 1
        now = self._clock()
        for frame in parse_advertisement(
            advert.manufacturer_data, advert.service_data, advert.service_uuids
        ):
            if isinstance(frame, Refusal):
                self.counts[f"refused:{frame.reason.value}"] += 1
                continue
            who = self.resolver.resolve(frame, now)
            if who is None:  # a frame without identity (TLM, URL)
                continue
            if isinstance(who, Unresolved):
                self.counts[f"unresolved:{who.reason.value}"] += 1
                continue
            self._sighting(who, source, advert)

    def tick(self) -> None:
        """Due enters, exits and dwell marks; the resolver's table kept current."""
        now = self._mono()
        self._handle(self.tracker.tick(now), now)
        self.resolver.advance(self._clock())
        self.visits.prune(now)

    def take_identities(
        self, identities: Identities, resolver: RotatingIdResolver | None = None
    ) -> int:
        """New keys and tags from the cache, with the resolver already built over them (else
        built here); returns how many members were forgotten."""
        self.resolver = resolver or self._make_resolver(identities.keys, identities.tags)
        members = frozenset(k.member_id for k in identities.keys) | frozenset(
            t.member_id for t in identities.tags
        )
        gone = (self._members or frozenset()) - members
        now = self._mono()
        for member_id in sorted(gone):
            self._handle(self.tracker.forget(member_id, now), now)
            self.visits.forget(member_id)
        self._members = members
        if identities.cards is not None:
            self._cards = identities.cards
        self.identities_version = identities.version
        if gone:
            log.info("presence: %d member(s) no longer have presence identities", len(gone))
        return len(gone)

    def tap(self, *, member_id: str, zone: str) -> bool:
        """A member's tap at a reader in ``zone``; True when it opened a new visit."""
        now = self._mono()
        opened = self.visits.observe(Entered(identity=member_id, zone=zone, at=now, rssi=0.0))
        # Out again at once: a tap places the member for an instant, not until a signal fades.
        self.visits.observe(
            Exited(identity=member_id, zone=zone, at=now, dwell_s=0.0, why=ExitReason.SIGNAL)
        )
        return opened

    def moment_for_tap(self, *, member_id: str, zone: str) -> PresenceMoment | None:
        """The moment a tap is for the rules on ``zone`` at 0 s (a check-in reward), if any."""
        if (zone, 0.0) not in self._marks:
            return None
        now = self._clock()
        return PresenceMoment(
            member_id=member_id, zone=zone, mark_s=0.0, dwell_s=0.0, visit_started_at=now, now=now
        )

    def take_policy(self, policy: ProximityPolicy, tracker: TrackerConfig) -> None:
        """New rules (a reconfigure). New dwell marks need a new tracker: who is in a zone is
        followed afresh from the next sighting (an offer already given still counts toward
        the caps, which the cache keeps); visits go on."""
        self._marks = frozenset((r.zone, r.min_dwell_s) for r in policy.rules)
        if tracker != self.tracker.config:
            self.tracker = PresenceTracker(tracker)
            log.info("presence: new rules; zones are followed afresh")

    def tap_heard(self, place: ReaderPlace, tap: Tap) -> None:
        """A reader's ``on_tap`` (on this loop): queued for ``taps_forever``."""
        try:
            self._taps.put_nowait((place, tap))
        except asyncio.QueueFull:
            self.counts["taps_dropped"] += 1
            log.warning("nfc %s: %d taps wait; one dropped", place.reader_id, TAP_QUEUE)

    async def handle_tap(self, place: ReaderPlace, tap: Tap) -> Identified | Unidentified:
        """Who tapped, and what that does where the reader stands (see the module docstring)."""
        now = self._clock()
        who = identify(tap, trust=await self._trust(), cards=self._cards, now=now)
        if isinstance(who, Unidentified):
            self.counts[f"tap_refused:{who.reason}"] += 1
            log.info("nfc %s: tap refused: %s %s", place.reader_id, who.reason, who.detail)
            return who
        self.counts["taps_identified"] += 1
        if place.till is not None:
            self.till_members.tapped(
                place.till,
                AtTill(member_id=who.member_id, how=who.how, reader=place.reader_id, at=now),
            )
            log.info("nfc %s: member %s at till %s", place.reader_id, who.member_id, place.till)
        if place.zone is not None:
            opened = self.tap(member_id=who.member_id, zone=place.zone)
            await self._check_in(
                member_id=who.member_id, place=place, how=who.how, first_of_visit=opened
            )
            moment = self.moment_for_tap(member_id=who.member_id, zone=place.zone)
            if opened and moment is not None:
                await self.deliver(moment)
        return who

    # -- tasks --------------------------------------------------------------------------------

    async def taps_forever(self) -> None:
        while True:
            place, tap = await self._taps.get()
            try:
                await self.handle_tap(place, tap)
            except Exception:  # a bug must not stop the readers: log it, drop this tap
                self.counts["errors"] += 1
                log.exception("nfc %s: a tap could not be handled", place.reader_id)

    async def feed(self, source: str, scanner: BeaconScanner) -> None:
        queue = scanner.adverts
        while True:
            advert = await queue.get()
            try:
                self.observe(source, advert)
            except Exception:  # a bug must not stop presence: log it, drop this advert
                self.counts["errors"] += 1
                log.exception("presence: an advertisement from %s could not be handled", source)

    async def tick_forever(self, every_s: float) -> None:
        preparing: asyncio.Task[None] | None = None
        while True:
            await asyncio.sleep(every_s)
            self.tick()
            entering = self.resolver.upcoming(self._clock(), lead_s=PRECOMPUTE_LEAD_S)
            if entering is not None and (preparing is None or preparing.done()):
                preparing = asyncio.create_task(self._prepare(self.resolver, entering))

    @staticmethod
    async def _prepare(resolver: RotatingIdResolver, counter: int) -> None:
        """The next period's identifiers, computed off the loop and handed to ``resolver``."""
        resolver.install(await asyncio.to_thread(resolver.precompute, counter))

    async def deliver_forever(self) -> None:
        while True:
            moment = await self._moments.get()
            await self.deliver(moment)

    async def deliver(self, moment: PresenceMoment) -> tuple[Recorded, ...]:
        recorded = await self._ask(moment)
        for r in recorded:
            self.counts["offers" if r.coupon is not None else "suppressed"] += 1
            self._on_recorded(r)
        return recorded

    async def follow_identities(self, poll: PollIdentities, every_s: float) -> None:
        while True:
            fresh = await poll(self.identities_version)
            if fresh is not None:
                resolver = await asyncio.to_thread(self._built, fresh)
                self.take_identities(fresh, resolver)
            await asyncio.sleep(every_s)

    # -- steps --------------------------------------------------------------------------------

    def _built(self, identities: Identities) -> RotatingIdResolver:
        """A resolver over ``identities`` with its table ready for now (worker thread)."""
        resolver = self._make_resolver(identities.keys, identities.tags)
        resolver.advance(self._clock())
        return resolver

    def _sighting(self, who: Resolved, source: str, advert: Advertisement) -> None:
        result = self.tracker.observe(
            Sighting(identity=who.member_id, source=source, rssi=advert.rssi, at=advert.at)
        )
        if isinstance(result, Dropped):
            self.counts[f"dropped:{result.reason.value}"] += 1
            return
        self.counts["sightings"] += 1
        self._handle(result, self._mono())

    def _handle(self, events: Iterable[PresenceEvent], now: float) -> None:
        for event in events:
            self.visits.observe(event)
            if isinstance(event, Exited):
                self.counts["exited"] += 1
                log.debug("presence: %s left %s (%s)", event.identity, event.zone, event.why)
                continue
            if isinstance(event, Entered):
                self.counts["entered"] += 1
                log.debug("presence: %s entered %s", event.identity, event.zone)
                mark, dwell = 0.0, 0.0
            else:
                mark, dwell = event.mark_s, event.dwell_s
            if (event.zone, mark) in self._marks:
                self._enqueue(event, mark, dwell, now)

    def _enqueue(self, event: Entered | Dwelled, mark: float, dwell: float, now: float) -> None:
        wall = self._clock()
        started = self.visits.started_at(event.identity, now)
        began = wall - timedelta(seconds=max(0.0, now - started)) if started is not None else wall
        moment = PresenceMoment(
            member_id=event.identity,
            zone=event.zone,
            mark_s=mark,
            dwell_s=dwell,
            visit_started_at=began,
            now=wall,
        )
        try:
            self._moments.put_nowait(moment)
        except asyncio.QueueFull:
            self.counts["moments_dropped"] += 1
            log.warning("presence: %d moments wait for the cache; one dropped", MOMENT_QUEUE)


def log_recorded(recorded: Recorded) -> None:
    outcome = recorded.outcome
    if recorded.coupon is not None:
        log.info(
            "proximity offer %s for member %s in %s: coupon %s (event %s)",
            outcome.rule_id,
            outcome.member_id,
            outcome.zone,
            recorded.coupon.display,
            recorded.event_id,
        )
    elif isinstance(outcome, Suppressed):
        log.info(
            "proximity rule %s gave no offer: %s (%s; event %s)",
            outcome.rule_id or "-",
            outcome.reason.value,
            outcome.message,
            recorded.event_id,
        )
