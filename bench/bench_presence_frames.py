"""Presence frames: filter + parse + resolve advertisements per second on one core.

The pure path the BLE driver's callback feeds (target >= 20,000 advertisements/s, issue 10):
``BeaconFilter.keep`` on every advertisement, then ``parse_advertisement`` and
``RotatingIdResolver.resolve`` on what is kept, with 10,000 members' keys. The stream is a
seeded mix of what a shop hears (phones' Continuity messages, other people's beacons, the
store's tags, members' phones, strangers running a lookalike app) and the clock moves through
several rotation periods, so the resolver's per-period refresh is part of the figure. A second
figure is the worst case: every advertisement a member frame to resolve. Also: building the
table for 10,000 members, one period's refresh, and the table's memory.
"""

from __future__ import annotations

import os
import random
import time
import tracemalloc
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from uuid import UUID

from bench.presence_loop_fixture import presence_loop
from bench.report import figure
from cloud_sync.contract import rotating_id as rid
from edge_agent.presence.ble_port import Advertisement
from edge_agent.presence.frames.beacon_filter import BeaconFilter
from edge_agent.presence.frames.eddystone import EDDYSTONE_SERVICE_UUID, EddystoneUid
from edge_agent.presence.frames.eddystone import encode_eddystone as eddystone_bytes
from edge_agent.presence.frames.ibeacon import IBeacon, encode_ibeacon
from edge_agent.presence.frames.parse import parse_advertisement, tag_identity
from edge_agent.presence.frames.refusal import Refusal
from edge_agent.presence.rotating_id_resolver import (
    EnrolledTag,
    MemberKey,
    Resolved,
    RotatingIdResolver,
)

MEMBERS = 10_000
STREAM = 200_000
SPACING = timedelta(milliseconds=5)  # 200 adverts/s of air time: 1,000 s, about 4 periods
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
STORE_UUID = UUID("426c7565-4368-6172-6d42-6561636f6e73")
NAMESPACE = bytes.fromhex("626c7565636861726d31")
Advert = tuple[Mapping[int, bytes], Mapping[str, bytes], list[str]]


def _keys(rng: random.Random) -> list[MemberKey]:
    return [
        MemberKey(member_id=f"M{n:08d}", key_id="k1", key=rng.randbytes(16)) for n in range(MEMBERS)
    ]


def _stream(rng: random.Random, keys: list[MemberKey], *, members_only: bool) -> list[Advert]:
    out: list[Advert] = []
    for i in range(STREAM):
        at = START + i * SPACING
        roll = 1.0 if members_only else rng.random()
        if roll < 0.40:  # an iPhone's Continuity message, headphones, a watch
            out.append(({0x004C: b"\x10\x05" + rng.randbytes(5)}, {}, []))
        elif roll < 0.55:  # someone else's iBeacon
            frame = IBeacon(UUID(int=rng.getrandbits(128)), 1, 2, -59)
            out.append(({0x004C: encode_ibeacon(frame)}, {}, []))
        elif roll < 0.65:  # the store's own beacon tags, some enrolled for members
            frame = IBeacon(STORE_UUID, 1, rng.randrange(200), -59)
            out.append(({0x004C: encode_ibeacon(frame)}, {}, []))
        elif roll < 0.70:
            uid = EddystoneUid(-18, NAMESPACE, rng.randbytes(6))
            out.append(({}, {EDDYSTONE_SERVICE_UUID: eddystone_bytes(uid)}, []))
        else:  # a phone with the member app: a member (a minute of clock skew), or a stranger
            skew = timedelta(seconds=rng.uniform(-60, 60))
            key = rng.choice(keys).key if rng.random() < 0.8 else rng.randbytes(16)
            identifier = rid.rotating_id(key, rid.counter_at(at + skew))
            payload = rid.encode_frame(identifier, -60)
            out.append(({}, {rid.MEMBER_SERVICE_UUID: payload}, [rid.MEMBER_SERVICE_UUID]))
    return out


def _run(
    stream: list[Advert], keep: BeaconFilter, resolver: RotatingIdResolver
) -> tuple[float, int]:
    resolved = 0
    started = time.perf_counter()
    for i, (manufacturer, service, uuids) in enumerate(stream):
        if not keep.keep(manufacturer, service, uuids):
            continue
        now = START + i * SPACING
        for frame in parse_advertisement(manufacturer, service, uuids):
            if not isinstance(frame, Refusal) and isinstance(
                resolver.resolve(frame, now), Resolved
            ):
                resolved += 1
    return time.perf_counter() - started, resolved


def _loop_run(stream: list[Advert], keep: BeaconFilter, keys: list[MemberKey]) -> float:
    """The agent's own path, ``PresenceLoop.observe``: parse, resolve and track each kept
    advertisement, the tracker ticked every 0.25 s of air time; returns the seconds taken."""
    air = [0.0]
    loop = presence_loop(
        "bench",
        keys=tuple(keys),
        clock=lambda: START + timedelta(seconds=air[0]),
        mono=lambda: air[0],
    )
    loop.resolver.advance(START)
    step = SPACING.total_seconds()
    started = time.perf_counter()
    for i, (manufacturer, service, uuids) in enumerate(stream):
        air[0] = i * step
        if keep.keep(manufacturer, service, uuids):
            advert = Advertisement(
                device="d", rssi=-60, manufacturer_data=manufacturer, service_data=service,
                service_uuids=tuple(uuids), at=air[0],
            )  # fmt: skip
            loop.observe("bench", advert)
        if i % 50 == 0:
            loop.tick()
    return time.perf_counter() - started


def main() -> None:
    seed = int(os.environ.get("BENCH_SEED", "0")) or random.randrange(1, 2**31)
    print(f"seed: {seed} (BENCH_SEED={seed} repeats this run)", flush=True)
    rng = random.Random(seed)
    keys = _keys(rng)
    tags = [
        EnrolledTag(member_id=f"M{n:08d}", identity=identity)
        for n in range(50)
        if (identity := tag_identity(IBeacon(STORE_UUID, 1, n, -59))) is not None
    ]
    keep = BeaconFilter(ibeacon_uuids=[STORE_UUID], eddystone_namespaces=[NAMESPACE])

    started = time.perf_counter()
    resolver = RotatingIdResolver(keys, tags=tags)
    resolver.advance(START)  # builds the table
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    resolver.advance(START + timedelta(seconds=2**rid.DEFAULT_EXPONENT))
    refresh_s = time.perf_counter() - started
    # As the agent does it: the entering period computed ahead (off the loop), then the change.
    following = rid.period_start(
        rid.counter_at(START + timedelta(seconds=2**rid.DEFAULT_EXPONENT)) + 1
    )
    entering = resolver.upcoming(following - timedelta(seconds=5), lead_s=10)
    if entering is None:
        raise SystemExit("the next period's counter was not offered for computing ahead")
    started = time.perf_counter()
    resolver.install(resolver.precompute(entering))
    ahead_s = time.perf_counter() - started
    started = time.perf_counter()
    resolver.advance(following)
    change_s = time.perf_counter() - started
    tracemalloc.start()
    measured = RotatingIdResolver(keys, tags=tags)
    measured.advance(START)
    table_bytes = tracemalloc.get_traced_memory()[0]
    del measured
    tracemalloc.stop()
    figure("resolver table build, 10,000 members", build_s * 1000, "ms")
    figure("resolver table entries", resolver.table_size(), "ids")
    figure("resolver table memory", table_bytes / 2**20, "MiB")
    figure("resolver refresh, one period", refresh_s * 1000, "ms")
    figure("resolver next period computed ahead (worker thread)", ahead_s * 1000, "ms")
    figure("resolver period change after it (on the loop)", change_s * 1000, "ms")

    for name, members_only in (("mixed shop stream", False), ("member frames only", True)):
        stream = _stream(rng, keys, members_only=members_only)
        resolver = RotatingIdResolver(keys, tags=tags)
        resolver.advance(START)
        seconds, resolved = _run(stream, keep, resolver)
        figure(
            f"filter+parse+resolve, {name}",
            len(stream) / seconds,
            "adverts/s",
            target=">= 20,000",
        )
        figure(f"resolved, {name}", resolved / len(stream) * 100, "% of adverts")
        seconds = _loop_run(stream, keep, keys)
        figure(
            f"agent presence loop (parse, resolve, track), {name}",
            len(stream) / seconds,
            "adverts/s",
            target=">= 20,000",
        )


if __name__ == "__main__":
    main()
