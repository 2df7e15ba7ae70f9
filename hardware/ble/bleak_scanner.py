"""The real BLE beacon scanner: bleak on BlueZ, under a supervisor that never gives up.

Theory of operation. ``run()`` is a loop of scan sessions. A session probes the adapter over the
driver's own D-Bus connection (``bluez_bus.BluezBus``), starts a ``bleak.BleakScanner`` and
watches it; it ends when the scan goes silent or the adapter or bluetoothd goes away. What the
loop does next depends on why the session ended (the failures are
``edge_agent.presence.ble_port``'s tree, mapped from bleak's and dbus-fast's at the boundary):

    session ended by / failed with      phase shown             then
    ------------------------------      -------------------     ---------------------------------
    silence for watchdog_s              restarting (watchdog)   restart at once; after
                                                                silent_restarts_before_reset in
                                                                a row, reset the adapter
    InProgress, NotReady, other BlueZ   restarting (<reason>)   back off (backoff_s doubling up
      refusal, start timed out                                  to max_backoff_s); after
                                                                failures_before_reset in a row,
                                                                reset the adapter
    adapter powered off                 resetting               power it on
    adapter missing / removed           adapter_missing         wait for InterfacesAdded (or
                                                                poll), settle_s, start again
    bluetoothd gone (ServiceUnknown)    bluez_unavailable       wait for NameOwnerChanged (or
                                                                poll), settle_s, start again
    AdvertisementMonitor unsupported    (scanning, active)      fall back to active scanning
    resets that do not help             failed                  keep trying at max_backoff_s

A reset is ``Adapter1.Powered`` false, reset_off_s, true (``bluetoothctl power off/on``),
the cure habluetooth and field experience give for a controller stuck after a failed command.

Passive scanning (no SCAN_REQ sent, so the box does not make phones answer, and less airtime)
needs BlueZ's AdvertisementMonitor; bleak registers one with ``or_patterns``. The defaults match
iBeacon, AltBeacon and Eddystone frames (the integrator adds the member app's service); where the
adapter lacks the monitor API, the scan is active and ``ScannerState.mode_note`` says why. BlueZ
applies the patterns; ``keep`` is applied to everything either way.

Privacy: the BLE address is turned into ``device_token`` inside the detection callback and never
stored, logged or queued. bleak and dbus-fast log D-Bus object paths (which contain the address)
at DEBUG, so their loggers are held at WARNING or above by this driver.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Literal

from bleak import BleakScanner
from bleak.args.bluez import BlueZScannerArgs, OrPattern, OrPatternLike
from bleak.assigned_numbers import AdvertisementDataType
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from edge_agent.presence.ble_port import (
    AdapterMissingError,
    AdapterPoweredOffError,
    BluezUnavailableError,
    KeepFilter,
    PassiveUnsupportedError,
    Phase,
    ScannerError,
    ScannerState,
)
from hardware.ble.bluez_bus import BluezBus, map_error
from hardware.ble.device_token import device_token
from hardware.ble.scan_state import BookedScanner, ScanBook

logger = logging.getLogger(__name__)

_MFG = AdvertisementDataType.MANUFACTURER_SPECIFIC_DATA
DEFAULT_OR_PATTERNS: tuple[OrPattern, ...] = (
    # iBeacon: AD type 0xFF, company 0x004C little-endian, beacon type 0x02, length 0x15.
    OrPattern(0, _MFG, b"\x4c\x00\x02\x15"),
    # AltBeacon: any company id (2 bytes), then the beacon code 0xBEAC.
    OrPattern(2, _MFG, b"\xbe\xac"),
    # Eddystone (UID, URL, TLM, EID): service data for the 16-bit UUID 0xFEAA, little-endian.
    OrPattern(0, AdvertisementDataType.SERVICE_DATA_UUID16, b"\xaa\xfe"),
)
_NOISY_LIBRARY_LOGGERS = ("bleak", "dbus_fast")
_WATCHDOG = "watchdog"


def _hold_library_logs_at_warning() -> None:
    """bleak logs every D-Bus signal (device paths = addresses) at DEBUG: never let them out."""
    for name in _NOISY_LIBRARY_LOGGERS:
        lib = logging.getLogger(name)
        if lib.getEffectiveLevel() < logging.WARNING or lib.level < logging.WARNING:
            lib.setLevel(logging.WARNING)


class BleakBeaconScanner(BookedScanner):
    """A ``BeaconScanner`` on bleak's BlueZ backend. Create and run it on the agent's loop."""

    def __init__(
        self,
        *,
        keep: KeepFilter,
        adapter: str = "hci0",
        passive: bool = True,
        or_patterns: Sequence[OrPattern] = DEFAULT_OR_PATTERNS,
        watchdog_s: float = 30.0,
        start_timeout_s: float = 10.0,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        failures_before_reset: int = 3,
        silent_restarts_before_reset: int = 3,
        wait_poll_s: float = 5.0,
        settle_s: float = 1.0,
        reset_off_s: float = 0.5,
        queue_size: int = 1024,
        on_state: Callable[[ScannerState], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if watchdog_s <= 0 or backoff_s <= 0 or failures_before_reset < 1:
            raise ValueError("watchdog_s and backoff_s must be > 0, failures_before_reset >= 1")
        _hold_library_logs_at_warning()
        self._adapter = adapter
        self._want_passive = passive and bool(or_patterns)
        self._or_patterns: list[OrPatternLike] = list(or_patterns)
        self._watchdog_s = watchdog_s
        self._start_timeout_s = start_timeout_s
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._failures_before_reset = failures_before_reset
        self._silent_before_reset = silent_restarts_before_reset
        self._wait_poll_s = wait_poll_s
        self._settle_s = settle_s
        self._reset_off_s = reset_off_s
        self._clock = clock
        self._book = ScanBook(
            keep=keep, queue_size=queue_size, clock=clock, on_state=on_state, tokenize=device_token
        )
        self._bus = BluezBus(adapter)
        self._passive_broken = False
        self._failures = 0  # consecutive failed starts
        self._silent = 0  # consecutive sessions ended by the watchdog
        self._resets_in_a_row = 0  # resets with no successful start in between

    # -- the port --------------------------------------------------------------------------------

    async def run(self) -> None:
        self._book.set_phase(Phase.STARTING)
        try:
            while True:
                try:
                    await self._session()  # returns only when the watchdog fires
                except ScannerError as err:
                    await self._recover(err)
                except Exception as exc:
                    mapped = map_error(exc)
                    if mapped is None:
                        raise  # not a device failure: a bug, which must end the process
                    await self._recover(mapped)
                else:
                    await self._after_silence()
        finally:
            self._bus.close()
            self._book.set_phase(Phase.STOPPED)

    async def _after_silence(self) -> None:
        self._failures = 0
        self._resets_in_a_row = 0
        self._silent += 1
        self._book.set_phase(Phase.RESTARTING, reason=_WATCHDOG)
        self._book.count_restart()
        if self._silent >= self._silent_before_reset:
            self._silent = 0
            await self._reset(_WATCHDOG)

    async def _recover(self, error: ScannerError) -> None:
        self._silent = 0
        if isinstance(error, PassiveUnsupportedError):
            self._passive_broken = True  # the next session scans actively, at once
            return
        if isinstance(error, (AdapterMissingError, BluezUnavailableError)):
            self._failures = 0
            await self._wait_for_return(error)
            self._book.count_restart()
            return
        if isinstance(error, AdapterPoweredOffError):
            await self._reset(error.reason, off_first=False)
            return
        self._failures += 1
        if self._failures >= self._failures_before_reset:
            self._failures = 0
            self._resets_in_a_row += 1
            await self._reset(error.reason, failed=self._resets_in_a_row > 1)
            return
        self._book.set_phase(Phase.RESTARTING, reason=error.reason)
        await asyncio.sleep(self._backoff(self._failures))
        self._book.count_restart()

    # -- one session -----------------------------------------------------------------------------

    async def _session(self) -> None:
        info = await self._bus.probe()
        if not info.powered:
            raise AdapterPoweredOffError("adapter powered off")
        mode: Literal["active", "passive"] = "active"
        note = ""
        if self._want_passive and info.passive and not self._passive_broken:
            mode = "passive"
        elif self._want_passive:
            note = "passive scanning unavailable (BlueZ AdvertisementMonitor missing)"
        scanner = self._make_scanner(mode)
        try:
            async with asyncio.timeout(self._start_timeout_s):
                await scanner.start()
        except BaseException:
            await self._stop_quietly(scanner)
            raise
        self._book.last_advert_at = self._clock()  # silence is counted from the start
        self._book.set_phase(Phase.SCANNING, mode=mode, note=note)
        self._resets_in_a_row = 0
        try:
            await self._watch()
        finally:
            await self._stop_quietly(scanner)

    def _make_scanner(self, mode: Literal["active", "passive"]) -> BleakScanner:
        bluez: BlueZScannerArgs = {"adapter": self._adapter}
        if mode == "passive":
            bluez["or_patterns"] = self._or_patterns
        return BleakScanner(detection_callback=self._on_detect, scanning_mode=mode, bluez=bluez)

    def _on_detect(self, device: BLEDevice, adv: AdvertisementData) -> None:
        # device.address is used as the key and hashed in ScanBook; nothing else keeps it.
        self._book.offer(
            key=device.address,
            rssi=adv.rssi,
            manufacturer_data=adv.manufacturer_data,
            service_data=adv.service_data,
            service_uuids=tuple(adv.service_uuids),
            tx_power=adv.tx_power,
        )

    async def _watch(self) -> None:
        """Until the scan goes silent for watchdog_s (returns) or the adapter goes (raises)."""
        changed = self._bus.changed
        while True:
            changed.clear()
            remaining = self._watchdog_s - (self._clock() - self._book.last_advert_at)
            if remaining <= 0:
                logger.warning("BLE scan silent for %.1f s: restarting it", self._watchdog_s)
                return
            try:
                await asyncio.wait_for(changed.wait(), timeout=min(remaining, self._wait_poll_s))
            except TimeoutError:
                continue
            info = await self._bus.probe()  # raises AdapterMissing / BluezUnavailable
            if not info.powered:
                raise AdapterPoweredOffError("adapter powered off")

    async def _stop_quietly(self, scanner: BleakScanner) -> None:
        try:
            async with asyncio.timeout(self._start_timeout_s):
                await scanner.stop()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the adapter or bluetoothd may already be gone
            mapped = map_error(exc)
            logger.debug("BLE scan stop failed: %s", mapped.reason if mapped else type(exc))

    # -- recovery --------------------------------------------------------------------------------

    def _backoff(self, failures: int) -> float:
        return float(min(self._backoff_s * 2 ** (failures - 1), self._max_backoff_s))

    async def _wait_for_return(self, error: ScannerError) -> None:
        """Wait until the adapter and bluetoothd answer again, then let it settle."""
        changed = self._bus.changed
        while True:
            phase = (
                Phase.BLUEZ_UNAVAILABLE
                if isinstance(error, BluezUnavailableError)
                else Phase.ADAPTER_MISSING
            )
            self._book.set_phase(phase, reason=error.reason)
            changed.clear()
            try:
                await self._bus.probe()
            except (AdapterMissingError, BluezUnavailableError) as still:
                error = still
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), timeout=self._wait_poll_s)
                continue
            except ScannerError:
                pass  # there again, but not right: the session's start reports what is wrong
            self._book.set_phase(Phase.RESTARTING, reason=f"{error.reason} recovered")
            await asyncio.sleep(self._settle_s)
            return

    async def _reset(self, reason: str, *, off_first: bool = True, failed: bool = False) -> None:
        self._book.set_phase(Phase.RESETTING, reason=reason)
        try:
            if off_first:
                await self._bus.set_powered(False)
                await asyncio.sleep(self._reset_off_s)
            await self._bus.set_powered(True)
        except ScannerError as err:
            self._book.set_phase(Phase.FAILED, reason=f"reset failed: {err.reason}")
            await asyncio.sleep(self._max_backoff_s)
            return
        self._book.count_reset()
        if failed:
            # A reset already failed to help: say so, and stop hammering the controller.
            self._book.set_phase(Phase.FAILED, reason=f"{reason} after reset")
            await asyncio.sleep(self._max_backoff_s)
        else:
            await asyncio.sleep(self._settle_s)
