"""One harness per ``BeaconScanner`` implementation, so the contract suite runs against both.

``BleakHarness`` drives the real driver through bleak's BlueZ backend over the private bus, with
the simulated bluetoothd doing what the test asks; ``TwinHarness`` injects the same steps into
the simulated scanner, with a sleep that never waits. Each is entered inside the test's own event
loop (``asyncio.run`` per test: bleak keeps one BlueZ manager per loop).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Protocol

from edge_agent.presence.ble_port import Advertisement, BeaconScanner, KeepFilter, Phase
from edge_agent.presence.ble_port import ScannerState as State
from hardware.ble.bleak_scanner import BleakBeaconScanner
from hardware.ble.sim_scanner import SimAdvert, SimBeaconScanner, SimEvent
from tests.ble.mock_bluez import MockBluez

WAIT_S = 8.0  # generous: the machine is shared; nothing here asserts a timing


def keep_all(_m: Mapping[int, bytes], _s: Mapping[str, bytes], _u: tuple[str, ...]) -> bool:
    return True


class Harness(Protocol):
    scanner: BeaconScanner
    watchdog_s: float

    async def beacon(
        self,
        address: str,
        rssi: int,
        *,
        manufacturer: dict[int, bytes] | None = None,
        service: dict[str, bytes] | None = None,
    ) -> None: ...
    async def silence(self, watchdogs: float) -> None: ...
    async def remove_adapter(self) -> None: ...
    async def add_adapter(self) -> None: ...
    async def stop_bluez(self) -> None: ...
    async def start_bluez(self) -> None: ...


async def next_advert(scanner: BeaconScanner, timeout: float = WAIT_S) -> Advertisement:
    return await asyncio.wait_for(scanner.adverts.get(), timeout)


async def wait_phase(scanner: BeaconScanner, phase: Phase, timeout: float = WAIT_S) -> State:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while scanner.state.phase is not phase:
        if loop.time() > deadline:
            raise AssertionError(f"never {phase.value}: {scanner.state}")
        await asyncio.sleep(0.005)
    return scanner.state


class BleakHarness:
    def __init__(
        self,
        mock: MockBluez,
        *,
        keep: KeepFilter,
        watchdog_s: float,
        failures_before_reset: int = 3,
        queue_size: int = 1024,
    ) -> None:
        self.mock = mock
        self.watchdog_s = watchdog_s
        self.scanner: BeaconScanner = BleakBeaconScanner(
            keep=keep,
            watchdog_s=watchdog_s,
            failures_before_reset=failures_before_reset,
            queue_size=queue_size,
            start_timeout_s=5.0,
            backoff_s=0.05,
            max_backoff_s=0.2,
            wait_poll_s=0.5,
            settle_s=0.05,
            reset_off_s=0.02,
        )
        self._known: set[str] = set()

    async def beacon(
        self,
        address: str,
        rssi: int,
        *,
        manufacturer: dict[int, bytes] | None = None,
        service: dict[str, bytes] | None = None,
    ) -> None:
        mfg, svc = manufacturer or {}, service or {}
        if address in self._known:
            await self.mock.advertise(address, rssi, mfg, svc)
        else:
            uuids = sorted(svc)
            await self.mock.add_beacon(address, rssi, mfg, svc, uuids)
            self._known.add(address)

    async def silence(self, watchdogs: float) -> None:
        await asyncio.sleep(self.watchdog_s * watchdogs)

    async def remove_adapter(self) -> None:
        await self.mock.remove_adapter()
        self._known.clear()  # BlueZ drops the adapter's devices with it

    async def add_adapter(self) -> None:
        await self.mock.add_adapter()

    async def stop_bluez(self) -> None:
        self.mock.kill()
        self._known.clear()

    async def start_bluez(self) -> None:
        await self.mock.start()


async def _no_wait(_seconds: float) -> None:
    await asyncio.sleep(0)


class TwinHarness:
    def __init__(self, *, keep: KeepFilter, watchdog_s: float) -> None:
        self.watchdog_s = watchdog_s
        self.twin = SimBeaconScanner(keep=keep, watchdog_s=watchdog_s, sleep=_no_wait)
        self.scanner: BeaconScanner = self.twin
        self.t = 0.0

    def _tick(self) -> float:
        self.t += 0.1
        return self.t

    async def beacon(
        self,
        address: str,
        rssi: int,
        *,
        manufacturer: dict[int, bytes] | None = None,
        service: dict[str, bytes] | None = None,
    ) -> None:
        svc = service or {}
        self.twin.inject(
            SimAdvert(
                t=self._tick(),
                device=address,
                rssi=rssi,
                manufacturer_data=manufacturer or {},
                service_data=svc,
                service_uuids=tuple(sorted(svc)),
            )
        )

    async def silence(self, watchdogs: float) -> None:
        self.t += self.watchdog_s * watchdogs

    async def _event(self, event: str) -> None:
        self.twin.inject(SimEvent(t=self._tick(), event=event))

    async def remove_adapter(self) -> None:
        await self._event("adapter_removed")

    async def add_adapter(self) -> None:
        await self._event("adapter_added")

    async def stop_bluez(self) -> None:
        await self._event("bluez_stopped")

    async def start_bluez(self) -> None:
        await self._event("bluez_started")
