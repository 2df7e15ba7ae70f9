"""The real bleak path's cost: advertisements from a simulated bluetoothd (python-dbusmock on a
private dbus-daemon) through D-Bus, bleak's BlueZ manager and scanner, the store's beacon filter
and into its queue, then the agent's presence loop (parse, resolve the enrolled beacon tag to its
member among 1,000, track the member in the zone), all in this process.

Figures: this process's CPU time per second of wall time (``time.process_time``, as % of one
core) while 200 advertisements/s flow (target < 10 %; the mock daemon and dbus-daemon run in
processes of their own and are not counted), and the advertisements/s the path sustains when the
mock sends as fast as it can.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from datetime import UTC, datetime
from uuid import UUID

from bench.presence_loop_fixture import presence_loop
from bench.report import figure
from edge_agent.presence.ble_port import Phase
from edge_agent.presence.frames.beacon_filter import BeaconFilter
from edge_agent.presence.frames.parse import TagIdentity
from edge_agent.presence.frames.refusal import FrameKind
from edge_agent.presence.rotating_id_resolver import EnrolledTag
from hardware.ble.bleak_scanner import BleakBeaconScanner
from tests.ble.harness import wait_phase
from tests.ble.mock_bluez import MockBluez, PrivateBus

IBEACON = bytes.fromhex("0215e2c56db5dffb48d2b060d0f5a71096e000010002c5")
ADDRESS = "C4:7C:8D:6A:11:01"


UUID_ = UUID(bytes=IBEACON[2:18])
SOURCE = "bench-scanner"


def enrolled_tags() -> tuple[EnrolledTag, ...]:
    """1,000 members' beacon tags of the store's UUID (major n, minor 2)."""
    return tuple(
        EnrolledTag(
            member_id=f"member-{n}",
            identity=TagIdentity(
                FrameKind.IBEACON, UUID_.bytes + n.to_bytes(2, "big") + (2).to_bytes(2, "big")
            ),
        )
        for n in range(1000)
    )


async def _run(bus_address: str) -> None:

    async with MockBluez(bus_address) as mock:
        await mock.start()
        keep = BeaconFilter(ibeacon_uuids=[UUID_]).keep
        scanner = BleakBeaconScanner(keep=keep, watchdog_s=60.0)
        task = asyncio.create_task(scanner.run())
        await wait_phase(scanner, Phase.SCANNING)
        received = 0
        last_at = 0.0
        loop = presence_loop(SOURCE, tags=enrolled_tags(), clock=lambda: datetime.now(UTC))

        async def consume() -> None:
            nonlocal received, last_at
            queue = scanner.adverts
            while True:
                loop.observe(SOURCE, await queue.get())
                received += 1
                last_at = time.perf_counter()

        consumer = asyncio.create_task(consume())
        await mock.add_beacon(ADDRESS, -60, {0x004C: IBEACON}, {}, [])
        await asyncio.sleep(0.2)

        rate, seconds = 200.0, 10.0
        start_n = received
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await mock.flood(ADDRESS, int(rate * seconds), rate, {0x004C: IBEACON})
        await asyncio.sleep(0.1)  # the last signals in flight
        cpu1, wall1 = time.process_time(), time.perf_counter()
        got = received - start_n
        figure(
            "bleak path CPU at 200 adverts/s (this process)",
            100 * (cpu1 - cpu0) / (wall1 - wall0),
            "% of one core",
            target="< 10",
        )
        figure("bleak path adverts delivered at 200/s", got, f"of {int(rate * seconds)}")

        count = 5000
        start_n = received
        wall0 = time.perf_counter()
        cpu0 = time.process_time()
        await mock.flood(ADDRESS, count, 0.0, {0x004C: IBEACON})
        for _ in range(200):  # drain what is still in flight
            if received - start_n >= count:
                break
            await asyncio.sleep(0.01)
        got = received - start_n
        elapsed = last_at - wall0
        figure("bleak path sustained throughput", got / elapsed, "adverts/s")
        figure(
            "bleak path CPU per advert (flat out)",
            1e6 * (time.process_time() - cpu0) / max(got, 1),
            "us",
        )
        state = scanner.state
        figure("bleak path dropped (queue full)", state.dropped_queue_full, "adverts")
        figure("presence loop sightings of the enrolled member", loop.counts["sightings"], "")
        if loop.tracker.present().get("bench") != {"member-1"}:
            raise SystemExit(f"the member was not tracked: {dict(loop.counts)}")
        for t in (consumer, task):
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t


def main() -> None:
    bus = PrivateBus()
    os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = bus.address
    try:
        asyncio.run(_run(bus.address))
    finally:
        bus.close()


if __name__ == "__main__":
    main()
