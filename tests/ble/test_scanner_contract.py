"""One contract, two implementations: the bleak driver (bleak's real BlueZ backend over a private
D-Bus, python-dbusmock as bluetoothd) and the simulated twin must behave the same."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping

import pytest

from edge_agent.presence.ble_port import Advertisement, KeepFilter, Phase
from tests.ble.harness import (
    BleakHarness,
    Harness,
    TwinHarness,
    keep_all,
    next_advert,
    wait_phase,
)
from tests.ble.mock_bluez import MockBluez

pytestmark = pytest.mark.timeout(60)

KINDS = ["bleak", "twin"]
EDDYSTONE = "0000feaa-0000-1000-8000-00805f9b34fb"
# iBeacon (Apple, company 0x004C): 02 15, proximity UUID (Apple's AirLocate sample
# E2C56DB5-DFFB-48D2-B060-D0F5A71096E0), major 1, minor 2, measured power -59 dBm.
IBEACON = bytes.fromhex("0215e2c56db5dffb48d2b060d0f5a71096e000010002c5")
# Eddystone-UID: frame 0x00, ranging data -18 dBm, 10-byte namespace, 6-byte instance, 2 RFU.
EDDYSTONE_UID = bytes.fromhex("00ee" + "edd1ebeac04e5defa017" + "0bdb87c58ca2" + "0000")
TAG = "C4:7C:8D:6A:11:01"  # a fixed iBeacon tag
PHONE = "5E:12:9A:44:B0:07"  # a member's phone (random address) sending Eddystone
STRANGER = "D0:03:DF:21:77:5A"  # someone's headset


Body = Callable[[Harness], Awaitable[None]]


def run_contract(
    kind: str,
    system_bus: str,
    body: Body,
    *,
    keep: KeepFilter = keep_all,
    watchdog_s: float = 30.0,
    bluez: bool = True,
    adapter: bool = True,
) -> None:
    async def drive(h: Harness) -> None:
        task = asyncio.create_task(h.scanner.run())
        try:
            await body(h)
            assert not task.done(), "run() ended on a device failure"
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert h.scanner.state.phase is Phase.STOPPED

    async def main() -> None:
        if kind == "twin":
            twin = TwinHarness(keep=keep, watchdog_s=watchdog_s)
            if not bluez:
                await twin.stop_bluez()
            elif not adapter:
                await twin.remove_adapter()
            await drive(twin)
            return
        async with MockBluez(system_bus) as mock:
            if bluez:
                await mock.start(adapter=adapter)
            await drive(BleakHarness(mock, keep=keep, watchdog_s=watchdog_s))

    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_ibeacon_and_eddystone_arrive_with_rssi_updates_in_order(
    kind: str, system_bus: str
) -> None:
    sent = [(TAG, -80), (PHONE, -75), (TAG, -70), (TAG, -61), (PHONE, -66), (TAG, -58)]

    async def body(h: Harness) -> None:
        await wait_phase(h.scanner, Phase.SCANNING)
        for address, rssi in sent:
            if address == TAG:
                await h.beacon(address, rssi, manufacturer={0x004C: IBEACON})
            else:
                await h.beacon(address, rssi, service={EDDYSTONE: EDDYSTONE_UID})
        got = [await next_advert(h.scanner) for _ in sent]
        assert [a.rssi for a in got] == [rssi for _, rssi in sent]
        tag_tokens = {a.device for a in got if 0x004C in a.manufacturer_data}
        phone_tokens = {a.device for a in got if EDDYSTONE in a.service_data}
        assert len(tag_tokens) == 1 and len(phone_tokens) == 1 and tag_tokens != phone_tokens
        for advert in got:
            if advert.device in tag_tokens:
                assert advert.manufacturer_data[0x004C] == IBEACON
            else:
                assert advert.service_data[EDDYSTONE] == EDDYSTONE_UID
                assert EDDYSTONE in advert.service_uuids
        assert [a.at for a in got] == sorted(a.at for a in got)
        state = h.scanner.state
        assert state.adverts_kept == len(sent) and state.dropped_by_filter == 0

    run_contract(kind, system_bus, body)


@pytest.mark.parametrize("kind", KINDS)
def test_the_filter_drops_before_anything_is_queued(kind: str, system_bus: str) -> None:
    seen_by_filter: list[bool] = []

    def keep(mfg: Mapping[int, bytes], _svc: Mapping[str, bytes], _uuids: tuple[str, ...]) -> bool:
        wanted = mfg.get(0x004C, b"").startswith(b"\x02\x15")
        seen_by_filter.append(wanted)
        return wanted

    async def body(h: Harness) -> None:
        await wait_phase(h.scanner, Phase.SCANNING)
        await h.beacon(STRANGER, -50, manufacturer={0x0075: b"\x42\x04\x01"})  # Samsung
        await h.beacon(STRANGER, -52, manufacturer={0x0075: b"\x42\x04\x02"})
        await h.beacon(TAG, -70, manufacturer={0x004C: IBEACON})
        first = await next_advert(h.scanner)
        assert first.manufacturer_data[0x004C] == IBEACON
        assert h.scanner.adverts.empty()
        state = h.scanner.state
        assert state.dropped_by_filter == 2 and state.adverts_kept == 1
        assert state.adverts_seen == 3
        assert seen_by_filter == [False, False, True]

    run_contract(kind, system_bus, body, keep=keep)


@pytest.mark.parametrize("kind", KINDS)
def test_no_adapter_is_adapter_missing_until_one_appears(kind: str, system_bus: str) -> None:
    async def body(h: Harness) -> None:
        state = await wait_phase(h.scanner, Phase.ADAPTER_MISSING)
        assert state.reason == "adapter_missing" and not state.healthy
        await h.add_adapter()
        await wait_phase(h.scanner, Phase.SCANNING)
        await h.beacon(TAG, -70, manufacturer={0x004C: IBEACON})
        assert (await next_advert(h.scanner)).rssi == -70

    run_contract(kind, system_bus, body, adapter=False)


@pytest.mark.parametrize("kind", KINDS)
def test_bluetoothd_not_running_says_so_and_recovers_when_it_starts(
    kind: str, system_bus: str
) -> None:
    async def body(h: Harness) -> None:
        state = await wait_phase(h.scanner, Phase.BLUEZ_UNAVAILABLE)
        assert state.reason == "bluez_unavailable"
        await h.start_bluez()
        await wait_phase(h.scanner, Phase.SCANNING)
        await h.beacon(TAG, -64, manufacturer={0x004C: IBEACON})
        assert (await next_advert(h.scanner)).rssi == -64

    run_contract(kind, system_bus, body, bluez=False)


@pytest.mark.parametrize("kind", KINDS)
def test_bluetoothd_dying_mid_scan_and_coming_back(kind: str, system_bus: str) -> None:
    async def body(h: Harness) -> None:
        await wait_phase(h.scanner, Phase.SCANNING)
        await h.beacon(TAG, -70, manufacturer={0x004C: IBEACON})
        await next_advert(h.scanner)
        await h.stop_bluez()
        await wait_phase(h.scanner, Phase.BLUEZ_UNAVAILABLE)
        await h.start_bluez()
        await wait_phase(h.scanner, Phase.SCANNING)
        await h.beacon(TAG, -60, manufacturer={0x004C: IBEACON})
        assert (await next_advert(h.scanner)).rssi == -60
        assert h.scanner.state.restarts >= 1

    run_contract(kind, system_bus, body)


@pytest.mark.parametrize("kind", KINDS)
def test_adapter_removed_and_added_back_resumes_the_scan(kind: str, system_bus: str) -> None:
    async def body(h: Harness) -> None:
        await wait_phase(h.scanner, Phase.SCANNING)
        await h.beacon(PHONE, -72, service={EDDYSTONE: EDDYSTONE_UID})
        first = await next_advert(h.scanner)
        await h.remove_adapter()
        await wait_phase(h.scanner, Phase.ADAPTER_MISSING)
        await h.add_adapter()
        await wait_phase(h.scanner, Phase.SCANNING)
        await h.beacon(PHONE, -55, service={EDDYSTONE: EDDYSTONE_UID})
        again = await next_advert(h.scanner)
        assert again.rssi == -55 and again.device == first.device  # same token within a run
        assert h.scanner.state.restarts >= 1

    run_contract(kind, system_bus, body)


@pytest.mark.parametrize("kind", KINDS)
def test_the_watchdog_restarts_a_silent_scan(kind: str, system_bus: str) -> None:
    async def body(h: Harness) -> None:
        await wait_phase(h.scanner, Phase.SCANNING)
        await h.beacon(TAG, -70, manufacturer={0x004C: IBEACON})
        await next_advert(h.scanner)
        assert h.scanner.state.restarts == 0
        await h.silence(2.5)
        await wait_phase(h.scanner, Phase.SCANNING)
        await h.beacon(TAG, -66, manufacturer={0x004C: IBEACON})
        assert (await next_advert(h.scanner)).rssi == -66
        assert h.scanner.state.restarts >= 1

    run_contract(kind, system_bus, body, watchdog_s=0.4)


@pytest.mark.parametrize("kind", KINDS)
def test_addresses_never_reach_logs_or_advertisements(
    kind: str, system_bus: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    got: list[Advertisement] = []

    async def body(h: Harness) -> None:
        await wait_phase(h.scanner, Phase.SCANNING)
        await h.beacon(TAG, -70, manufacturer={0x004C: IBEACON})
        await h.beacon(PHONE, -70, service={EDDYSTONE: EDDYSTONE_UID})
        got.extend([await next_advert(h.scanner), await next_advert(h.scanner)])
        await h.remove_adapter()
        await wait_phase(h.scanner, Phase.ADAPTER_MISSING)
        await h.add_adapter()
        await wait_phase(h.scanner, Phase.SCANNING)
        await h.stop_bluez()
        await wait_phase(h.scanner, Phase.BLUEZ_UNAVAILABLE)
        await h.start_bluez()
        await wait_phase(h.scanner, Phase.SCANNING)
        await h.beacon(TAG, -60, manufacturer={0x004C: IBEACON})
        got.append(await next_advert(h.scanner))

    run_contract(kind, system_bus, body)
    assert "BLE scanner" in caplog.text  # the log was captured at all
    text = caplog.text.upper() + " ".join(repr(a) for a in got).upper()
    for address in (TAG, PHONE):
        for form in (address, address.replace(":", "_"), address.replace(":", "")):
            assert form not in text
    assert len({a.device for a in got}) == 2
