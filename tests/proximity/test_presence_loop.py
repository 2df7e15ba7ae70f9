"""The presence loop on a real cache: a consenting member's phone lingering in the coffee zone
gets one offer, a stranger's phone and a replayed identifier are counted and forgotten, a member
whose identities HQ withdrew is forgotten at once, and a tap opens the same visit."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

from cloud_sync.contract.rotating_id import (
    MEMBER_SERVICE_UUID,
    counter_at,
    encode_frame,
    rotating_id,
)
from edge_agent.domain.promotion import Member
from edge_agent.presence.ble_port import Advertisement
from edge_agent.presence.rotating_id_resolver import MemberKey, RotatingIdResolver
from edge_agent.proximity.presence_loop import Identities, PresenceLoop
from edge_agent.proximity.service import PresenceMoment, Recorded
from tests.issuing.factories import NOW
from tests.proximity.factories import member_id, open_cache, presence, service

CFG = presence()
POLICY = CFG.to_policy()
ANNA = member_id("loyal", held_out=False, pol=POLICY)
ANNA_KEY = bytes(range(16))
STRANGER_KEY = bytes(range(16, 32))


class Clock:
    """One fake time for the scanner's monotonic clock and the wall clock."""

    def __init__(self) -> None:
        self.t = 0.0

    def mono(self) -> float:
        return self.t

    def wall(self) -> datetime:
        return NOW + timedelta(seconds=self.t)


def advert(
    key: bytes, at: float, *, rssi: int = -60, when: datetime | None = None
) -> Advertisement:
    instant = when if when is not None else NOW + timedelta(seconds=at)
    frame = encode_frame(rotating_id(key, counter_at(instant)))
    return Advertisement(
        device="opaque", rssi=rssi, service_data={MEMBER_SERVICE_UUID: frame}, at=at
    )


def make_loop(tmp_path: Path, clock: Clock) -> tuple[PresenceLoop, list[Recorded]]:
    cache = open_cache(
        tmp_path / "cache.db",
        members=(Member(member_id=ANNA, segment="loyal", tier="gold", proximity_consent=True),),
    )
    svc = service(cache, POLICY)
    seen: list[Recorded] = []

    async def ask(moment: PresenceMoment) -> tuple[Recorded, ...]:
        return svc.consider(moment)

    loop = PresenceLoop(
        tracker=CFG.to_tracker_config(),
        policy=POLICY,
        make_resolver=lambda keys, tags: RotatingIdResolver(keys, tags=tags),
        visit_gap_s=CFG.visit_gap_min * 60,
        ask=ask,
        clock=clock.wall,
        mono=clock.mono,
        on_recorded=seen.append,
    )
    loop.take_identities(
        Identities(version=1, keys=(MemberKey(member_id=ANNA, key_id="k1", key=ANNA_KEY),), tags=())
    )
    return loop, seen


def walk(loop: PresenceLoop, clock: Clock, key: bytes, seconds: float, source: str) -> None:
    """Advertise every 0.5 s and tick every 0.25 s for ``seconds``."""
    end = clock.t + seconds
    while clock.t < end:
        clock.t = round(clock.t + 0.25, 2)
        if clock.t % 0.5 == 0:
            loop.observe(source, advert(key, clock.t))
        loop.tick()


async def deliver_all(loop: PresenceLoop) -> None:
    while not loop._moments.empty():
        await loop.deliver(loop._moments.get_nowait())


def test_a_member_lingering_in_the_coffee_zone_gets_one_offer(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        loop, seen = make_loop(tmp_path, clock)
        walk(loop, clock, ANNA_KEY, 30, "coffee-scanner")
        walk(loop, clock, STRANGER_KEY, 5, "coffee-scanner")
        await deliver_all(loop)
        assert [r.outcome.rule_id for r in seen] == ["coffee-dwell"]
        assert seen[0].coupon is not None and seen[0].outcome.member_id == ANNA
        assert loop.counts["entered"] == 1 and loop.counts["unresolved:unknown"] == 10
        assert loop.tracker.present()["coffee"] == {ANNA}  # still there, offered once

    asyncio.run(scenario())


def test_passing_by_the_entrance_gives_nothing_and_a_replay_is_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        loop, seen = make_loop(tmp_path, clock)
        walk(loop, clock, ANNA_KEY, 30, "entrance-scanner")  # no rule on the entrance
        clock.t += 1
        old = NOW - timedelta(minutes=30)
        loop.observe("coffee-scanner", advert(ANNA_KEY, clock.t, when=old))
        await deliver_all(loop)
        assert seen == []
        assert loop.counts["unresolved:stale"] == 1

    asyncio.run(scenario())


def test_withdrawn_identities_forget_the_member_at_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        loop, seen = make_loop(tmp_path, clock)
        walk(loop, clock, ANNA_KEY, 10, "coffee-scanner")
        assert ANNA in loop.tracker.present()["coffee"]
        assert loop.take_identities(Identities(version=2, keys=(), tags=())) == 1
        assert ANNA not in loop.tracker.present()["coffee"]
        walk(loop, clock, ANNA_KEY, 25, "coffee-scanner")
        await deliver_all(loop)
        assert seen == [] and loop.counts["unresolved:unknown"] > 0

    asyncio.run(scenario())


def test_a_tap_opens_the_visit_a_later_walk_continues(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        loop, _ = make_loop(tmp_path, clock)
        assert loop.tap(member_id=ANNA, zone="entrance") is True
        walk(loop, clock, ANNA_KEY, 5, "coffee-scanner")
        assert loop.tap(member_id=ANNA, zone="entrance") is False

    asyncio.run(scenario())
