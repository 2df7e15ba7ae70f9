"""The port the agent scans BLE beacons through, the scanner's health, and its typed failures.

A ``BeaconScanner`` scans until its ``run()`` task is cancelled and puts every advertisement its
``keep`` filter accepts on a bounded queue (``adverts``). The filter runs in the detection
callback, before anything is queued or copied, so advertisements of strangers' phones, headsets
and tags cost one function call and are gone. The real driver (``hardware/ble/bleak_scanner.py``,
bleak on BlueZ) and the simulated twin (``hardware/ble/sim_scanner.py``, a scenario replayed) both
implement it and pass one contract test suite (``tests/ble/``).

Privacy: ``Advertisement.device`` is an opaque token, a keyed hash of the BLE address with a
random salt made once per process (``hardware/ble/device_token.py``). The raw address never leaves
the driver, is never logged, and the token means nothing after a restart of the agent. (Phones
rotate their resolvable private address every few minutes anyway; members are recognised by the
rotating identifier in the payload, never by the address.)

``run()`` never raises a device failure: it reports it in ``state`` and recovers on its own
(restart the scan, back off, reset the adapter, wait for BlueZ or the adapter to come back). The
failures below are what the driver raises internally and maps foreign errors (bleak, dbus-fast,
OSError) to, at its boundary; ``ScannerState.reason`` carries the failure's ``reason`` code.

    ScannerError                    the scan cannot run now; the supervisor retries
    ├── AdapterMissingError         no such adapter (unplugged, not yet enumerated, no LE role)
    ├── AdapterPoweredOffError      the adapter is there but powered off (rfkill, a reset)
    ├── BluezUnavailableError       bluetoothd is not on the system bus (ServiceUnknown), or no bus
    ├── ScanInProgressError         org.bluez.Error.InProgress: a start/stop still under way
    ├── AdapterNotReadyError        org.bluez.Error.NotReady: adapter initialising or resetting
    ├── PassiveUnsupportedError     no AdvertisementMonitor (BlueZ < 5.56, no --experimental)
    └── ScanFailedError             any other BlueZ refusal, or a start that timed out
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Protocol

# keep(manufacturer_data, service_data, service_uuids) -> bool: True to queue the advertisement.
KeepFilter = Callable[[Mapping[int, bytes], Mapping[str, bytes], tuple[str, ...]], bool]

_EMPTY_MFG: Mapping[int, bytes] = MappingProxyType({})
_EMPTY_SVC: Mapping[str, bytes] = MappingProxyType({})


class ScannerError(Exception):
    """The scan cannot run now."""

    reason = "scanner_error"  # stable code, shown in health


class AdapterMissingError(ScannerError):
    reason = "adapter_missing"


class AdapterPoweredOffError(ScannerError):
    reason = "adapter_powered_off"


class BluezUnavailableError(ScannerError):
    reason = "bluez_unavailable"


class ScanInProgressError(ScannerError):
    reason = "in_progress"


class AdapterNotReadyError(ScannerError):
    reason = "not_ready"


class PassiveUnsupportedError(ScannerError):
    reason = "passive_unsupported"


class ScanFailedError(ScannerError):
    reason = "scan_failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Advertisement:
    """One advertisement the filter kept. Never carries the BLE address."""

    device: str  # opaque per-process token (keyed hash of the address), stable within a run
    rssi: int  # dBm as reported by the controller
    manufacturer_data: Mapping[int, bytes] = field(
        default_factory=lambda: _EMPTY_MFG
    )  # company id -> payload
    service_data: Mapping[str, bytes] = field(
        default_factory=lambda: _EMPTY_SVC
    )  # 128-bit UUID str -> payload
    service_uuids: tuple[str, ...] = ()
    tx_power: int | None = None  # advertised TX power level (dBm), when present
    at: float = 0.0  # time.monotonic() when the scanner received it


class Phase(StrEnum):
    STARTING = "starting"  # run() begun, first scan not yet started
    SCANNING = "scanning"
    RESTARTING = "restarting"  # a scan stopped or failed; backing off before the next start
    RESETTING = "resetting"  # power-cycling the adapter after repeated failures
    ADAPTER_MISSING = "adapter_missing"  # waiting for the adapter to (re)appear
    BLUEZ_UNAVAILABLE = "bluez_unavailable"  # waiting for bluetoothd to (re)appear
    FAILED = "failed"  # resets do not help; still retrying, slowly
    STOPPED = "stopped"  # run() ended (cancelled)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScannerState:
    """What health reports about the scanner. A new value on every change."""

    phase: Phase = Phase.STARTING
    reason: str = ""  # the ScannerError.reason (or "watchdog") behind the phase, if any
    mode: str = ""  # "passive" or "active" while scanning; why active in ``mode_note``
    mode_note: str = ""
    adverts_seen: int = 0  # every advertisement the detection callback got
    adverts_kept: int = 0  # queued
    dropped_by_filter: int = 0
    dropped_queue_full: int = 0  # kept by the filter, but the consumer is behind
    restarts: int = 0  # scan restarts (watchdog, failures, adapter/BlueZ back)
    resets: int = 0  # adapter power cycles
    since: float = 0.0  # monotonic time the phase began

    @property
    def healthy(self) -> bool:
        return self.phase is Phase.SCANNING


class BeaconScanner(Protocol):
    """A BLE beacon scanner on the agent's event loop."""

    @property
    def state(self) -> ScannerState: ...

    @property
    def adverts(self) -> asyncio.Queue[Advertisement]:
        """Kept advertisements, in arrival order; bounded (a full queue drops and counts)."""
        ...

    async def run(self) -> None:
        """Scan until cancelled. Device failures are reported in ``state``, never raised."""
        ...
