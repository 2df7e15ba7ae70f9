"""The bleak driver's supervisor against BlueZ errors the twin has no equivalent for: InProgress
and NotReady from StartDiscovery / RegisterMonitor, adapter resets, no AdvertisementMonitor, a
full queue, no system bus at all."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import pytest

from edge_agent.presence.ble_port import Phase
from hardware.ble.bleak_scanner import DEFAULT_OR_PATTERNS, BleakBeaconScanner
from tests.ble.harness import BleakHarness, keep_all, next_advert, wait_phase
from tests.ble.mock_bluez import MockBluez
from tests.ble.test_scanner_contract import IBEACON, TAG

pytestmark = pytest.mark.timeout(60)


def run_bleak(
    system_bus: str,
    body: Callable[[BleakHarness], Awaitable[None]],
    *,
    before_start: Callable[[MockBluez], Awaitable[None]] | None = None,
    monitor_api: bool = True,
    failures_before_reset: int = 3,
    queue_size: int = 1024,
) -> None:
    async def main() -> None:
        async with MockBluez(system_bus, monitor_api=monitor_api) as mock:
            await mock.start()
            if before_start is not None:
                await before_start(mock)
            h = BleakHarness(
                mock,
                keep=keep_all,
                watchdog_s=30.0,
                failures_before_reset=failures_before_reset,
                queue_size=queue_size,
            )
            task = asyncio.create_task(h.scanner.run())
            try:
                await body(h)
                assert not task.done()
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    asyncio.run(main())


def test_in_progress_backs_off_and_retries_without_a_reset(system_bus: str) -> None:
    async def fail(mock: MockBluez) -> None:
        await mock.fail_starts("org.bluez.Error.InProgress", 2)

    async def body(h: BleakHarness) -> None:
        state = await wait_phase(h.scanner, Phase.SCANNING)
        assert state.restarts == 2 and state.resets == 0
        await h.beacon(TAG, -70, manufacturer={0x004C: IBEACON})
        assert (await next_advert(h.scanner)).rssi == -70

    run_bleak(system_bus, body, before_start=fail, failures_before_reset=3)


def test_repeated_not_ready_resets_the_adapter_through_powered(system_bus: str) -> None:
    powered: list[list[bool]] = []

    async def watch_and_fail(mock: MockBluez) -> None:
        powered.append(await mock.watch_powered())  # filled as the adapter is power-cycled
        await mock.fail_starts("org.bluez.Error.NotReady", 2)

    async def body(h: BleakHarness) -> None:
        state = await wait_phase(h.scanner, Phase.SCANNING)
        assert state.resets == 1
        await h.beacon(TAG, -70, manufacturer={0x004C: IBEACON})
        assert (await next_advert(h.scanner)).rssi == -70

    run_bleak(system_bus, body, before_start=watch_and_fail, failures_before_reset=2)
    assert powered[0][:2] == [False, True]  # a power cycle: off, then on


def test_without_advertisement_monitor_it_scans_actively_and_says_why(system_bus: str) -> None:
    async def body(h: BleakHarness) -> None:
        state = await wait_phase(h.scanner, Phase.SCANNING)
        assert state.mode == "active" and "passive" in state.mode_note
        await h.beacon(TAG, -70, manufacturer={0x004C: IBEACON})
        assert (await next_advert(h.scanner)).rssi == -70

    run_bleak(system_bus, body, monitor_api=False)


def test_with_advertisement_monitor_it_scans_passively(system_bus: str) -> None:
    async def body(h: BleakHarness) -> None:
        state = await wait_phase(h.scanner, Phase.SCANNING)
        assert state.mode == "passive" and state.mode_note == ""

    run_bleak(system_bus, body)


def test_a_full_queue_drops_and_counts(system_bus: str) -> None:
    async def body(h: BleakHarness) -> None:
        await wait_phase(h.scanner, Phase.SCANNING)
        for rssi in range(-80, -75):
            await h.beacon(TAG, rssi, manufacturer={0x004C: IBEACON})
        for _ in range(200):
            if h.scanner.state.adverts_seen == 5:
                break
            await asyncio.sleep(0.01)
        state = h.scanner.state
        assert state.adverts_kept == 2 and state.dropped_queue_full == 3
        assert [(await next_advert(h.scanner)).rssi for _ in range(2)] == [-80, -79]

    run_bleak(system_bus, body, queue_size=2)


def test_no_system_bus_at_all_is_bluez_unavailable(
    system_bus: str, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/no-such-socket")

    async def main() -> None:
        scanner = BleakBeaconScanner(keep=keep_all, wait_poll_s=0.1)
        task = asyncio.create_task(scanner.run())
        state = await wait_phase(scanner, Phase.BLUEZ_UNAVAILABLE)
        assert "system bus" in state.reason or state.reason == "bluez_unavailable"
        assert not task.done()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())


def _ad_structure_matches(pattern: tuple[int, int, bytes], ad_type: int, data: bytes) -> bool:
    """BlueZ's or_pattern rule (doc/org.bluez.AdvertisementMonitor.rst): an AD structure of
    that type whose data, from start_position, begins with the content."""
    start, kind, content = pattern
    return kind == ad_type and data[start : start + len(content)] == content


@pytest.mark.parametrize(
    ("ad_type", "data", "expected"),
    [
        (0xFF, b"\x4c\x00" + IBEACON, True),  # iBeacon: company id LE, then 02 15
        (0xFF, b"\x18\x01\xbe\xac" + bytes(24), True),  # AltBeacon (Radius Networks 0x0118)
        (0x16, b"\xaa\xfe\x00\xee" + bytes(18), True),  # Eddystone-UID service data
        (0x16, b"\xaa\xfe\x20\x00" + bytes(12), True),  # Eddystone-TLM service data
        (0xFF, b"\x4c\x00\x10\x05\x01", False),  # Apple "nearby" (not a beacon)
        (0xFF, b"\x75\x00\x42\x04", False),  # Samsung
        (0x16, b"\x6f\xfd" + bytes(20), False),  # exposure notification service data
    ],
)
def test_default_passive_patterns_match_beacon_frames_only(
    ad_type: int, data: bytes, expected: bool
) -> None:
    matched = any(
        _ad_structure_matches(
            (p.start_position, int(p.ad_data_type), p.content_of_pattern), ad_type, data
        )
        for p in DEFAULT_OR_PATTERNS
    )
    assert matched is expected
