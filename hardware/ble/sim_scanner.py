"""The simulated BLE beacon scanner: the twin of ``bleak_scanner.py`` for ``make demo`` and tests.

It replays a scenario of timed steps on the same port (``BeaconScanner``), through the same
filter-then-queue step (``ScanBook``) and the same device tokens, so what the presence engine sees
cannot tell it from the real driver. Time goes through an injectable ``sleep``, so tests replay a
ten-minute visit instantly; ``make demo`` passes ``asyncio.sleep`` and watches it live.

Scenario format: JSON lines (``load_scenario``), one step per line, ``t`` in seconds from the
start of ``run()``, non-decreasing. Blank lines and lines starting with ``#`` are skipped.

    {"t": 0.0, "device": "anna-phone", "rssi": -71,
     "manufacturer_data": {"0x004c": "0215<uuid><major><minor><tx>"},
     "service_data": {"0000feaa-0000-1000-8000-00805f9b34fb": "00e7<namespace><instance>0000"},
     "service_uuids": ["0000feaa-0000-1000-8000-00805f9b34fb"], "tx_power": -59}
    {"t": 12.5, "event": "adapter_removed"}

An advertisement step needs ``t``, ``device`` (any name: it is hashed into a token like an address
is) and ``rssi``; ``manufacturer_data`` (company id, decimal or 0x-hex, -> hex payload),
``service_data`` (UUID -> hex payload), ``service_uuids`` and ``tx_power`` are optional. An event
step is one of ``adapter_removed``, ``adapter_added``, ``bluez_stopped``, ``bluez_started``: the
faults the real driver supervises, shown the same way in ``state`` (advertisements in between are
not heard). A gap of more than ``watchdog_s`` between advertisements counts one watchdog restart
per ``watchdog_s`` of silence, as the real driver would. A malformed file is refused with every
error listed (``ScenarioError``), never half-replayed.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from edge_agent.presence.ble_port import KeepFilter, Phase, ScannerState
from hardware.ble.device_token import device_token
from hardware.ble.scan_state import BookedScanner, ScanBook

EVENTS = ("adapter_removed", "adapter_added", "bluez_stopped", "bluez_started")


class ScenarioError(ValueError):
    """A scenario that cannot be replayed; ``errors`` lists every problem with its line."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True, slots=True, kw_only=True)
class SimAdvert:
    t: float
    device: str
    rssi: int
    manufacturer_data: dict[int, bytes] = field(default_factory=dict)
    service_data: dict[str, bytes] = field(default_factory=dict)
    service_uuids: tuple[str, ...] = ()
    tx_power: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SimEvent:
    t: float
    event: str


Step = SimAdvert | SimEvent


def _parse_step(obj: Any) -> Step:
    if not isinstance(obj, dict):
        raise ValueError("a step is a JSON object")
    t = obj.get("t")
    if not isinstance(t, (int, float)) or isinstance(t, bool) or not 0 <= t < math.inf:
        raise ValueError("t must be a finite number >= 0")
    if "event" in obj:
        if obj["event"] not in EVENTS:
            raise ValueError(f"event must be one of {', '.join(EVENTS)}")
        return SimEvent(t=float(t), event=obj["event"])
    device, rssi, tx = obj.get("device"), obj.get("rssi"), obj.get("tx_power")
    if not isinstance(device, str) or not device:
        raise ValueError("device must be a non-empty string")
    if not isinstance(rssi, int) or isinstance(rssi, bool) or not -127 <= rssi <= 20:
        raise ValueError("rssi must be an integer dBm in -127..20")
    if tx is not None and (not isinstance(tx, int) or isinstance(tx, bool)):
        raise ValueError("tx_power must be an integer or null")
    mfg, svc = obj.get("manufacturer_data", {}), obj.get("service_data", {})
    uuids = obj.get("service_uuids", [])
    if not isinstance(mfg, dict) or not isinstance(svc, dict) or not isinstance(uuids, list):
        raise ValueError("manufacturer_data/service_data are objects, service_uuids a list")
    manufacturer = {int(k, 0): bytes.fromhex(v) for k, v in mfg.items()}
    if any(not 0 <= k <= 0xFFFF for k in manufacturer):
        raise ValueError("company ids are 16-bit")
    return SimAdvert(
        t=float(t),
        device=device,
        rssi=rssi,
        manufacturer_data=manufacturer,
        service_data={str(k).lower(): bytes.fromhex(v) for k, v in svc.items()},
        service_uuids=tuple(str(u).lower() for u in uuids),
        tx_power=tx,
    )


def load_scenario(lines: Iterable[str]) -> list[Step]:
    """Parse JSON-lines scenario text; raise ``ScenarioError`` listing every bad line."""
    steps: list[Step] = []
    errors: list[str] = []
    last_t = 0.0
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            step = _parse_step(json.loads(text))
        except (ValueError, TypeError, AttributeError) as exc:
            errors.append(f"line {number}: {exc}")
            continue
        if step.t < last_t:
            errors.append(f"line {number}: t goes backwards ({step.t} < {last_t})")
            continue
        last_t = step.t
        steps.append(step)
    if errors:
        raise ScenarioError(errors)
    return steps


class SimBeaconScanner(BookedScanner):
    """A ``BeaconScanner`` replaying steps; ``inject`` adds steps while it runs."""

    def __init__(
        self,
        *,
        keep: KeepFilter,
        scenario: Iterable[Step] = (),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        watchdog_s: float = 30.0,
        settle_s: float = 1.0,
        mode: str = "passive",
        queue_size: int = 1024,
        on_state: Callable[[ScannerState], None] | None = None,
    ) -> None:
        self._book = ScanBook(
            keep=keep, queue_size=queue_size, clock=clock, on_state=on_state, tokenize=device_token
        )
        self._steps: asyncio.Queue[Step] = asyncio.Queue()
        for step in scenario:
            self._steps.put_nowait(step)
        self._sleep = sleep
        self._clock = clock
        self._watchdog_s = watchdog_s
        self._settle_s = settle_s
        self._mode = mode
        self._now = 0.0  # scenario time reached
        self._last_heard = 0.0
        self._adapter = True
        self._bluez = True
        self._loop: asyncio.AbstractEventLoop | None = None  # run()'s, for inject_threadsafe

    @property
    def scenario_time(self) -> float:
        return self._now

    def inject(self, step: Step) -> None:
        """Add a step (its ``t`` is scenario time; one in the past is applied at once)."""
        self._steps.put_nowait(step)

    def inject_threadsafe(self, step: Step) -> None:
        """``inject`` from another thread (the demo's story runs beside the agent's loop)."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("the simulated scanner is not running")
        loop.call_soon_threadsafe(self.inject, step)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._book.set_phase(Phase.STARTING)
        self._scanning()  # a simulated adapter starts at once
        try:
            while True:
                step = await self._steps.get()
                await self._advance_to(step.t)
                if isinstance(step, SimEvent):
                    await self._apply(step.event)
                elif self._book.phase is Phase.SCANNING:
                    self._last_heard = self._now
                    self._book.offer(
                        key=step.device,
                        rssi=step.rssi,
                        manufacturer_data=step.manufacturer_data,
                        service_data=step.service_data,
                        service_uuids=step.service_uuids,
                        tx_power=step.tx_power,
                    )
        finally:
            self._book.set_phase(Phase.STOPPED)

    async def _advance_to(self, t: float) -> None:
        gap = t - self._now
        if gap <= 0:
            return
        if self._book.phase is Phase.SCANNING:
            # The real driver restarts a scan silent for watchdog_s; count those restarts.
            for _ in range(int((t - self._last_heard) // self._watchdog_s)):
                self._book.set_phase(Phase.RESTARTING, reason="watchdog")
                self._book.count_restart()
                self._scanning()
            if t - self._last_heard >= self._watchdog_s:
                self._last_heard = t
        await self._sleep(gap)
        self._now = t

    def _scanning(self) -> None:
        self._last_heard = self._now
        if self._adapter and self._bluez:
            self._book.set_phase(Phase.SCANNING, mode=self._mode, note="")
        elif not self._bluez:
            self._book.set_phase(Phase.BLUEZ_UNAVAILABLE, reason="bluez_unavailable")
        else:
            self._book.set_phase(Phase.ADAPTER_MISSING, reason="adapter_missing")

    async def _apply(self, event: str) -> None:
        was_up = self._adapter and self._bluez
        if event in ("adapter_removed", "adapter_added"):
            self._adapter = event == "adapter_added"
        else:
            self._bluez = event == "bluez_started"
        if self._adapter and self._bluez and not was_up:
            self._book.set_phase(Phase.RESTARTING, reason=f"{event} recovered")
            await self._sleep(self._settle_s)
            self._book.count_restart()
        self._scanning()
