"""What the bleak driver and its twin share: the filter-then-queue step and the state counters.

Both scanners hand every advertisement to ``ScanBook.offer`` from their detection path. It runs
the ``keep`` filter first (a filter that raises counts as a drop: a malformed frame must never
stop the scan), then puts the kept advertisement on the bounded queue without waiting (a full
queue drops the newest and counts it: the consumer is behind, and an RSSI sample a second late is
worth less than the loop's time). Phase changes go through ``set_phase`` so ``on_state`` sees
each one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType

from edge_agent.presence.ble_port import Advertisement, KeepFilter, Phase, ScannerState

logger = logging.getLogger(__name__)


class ScanBook:
    """The counters, the phase and the queue of one scanner. Loop-confined: no locks."""

    def __init__(
        self,
        *,
        keep: KeepFilter,
        queue_size: int,
        clock: Callable[[], float],
        on_state: Callable[[ScannerState], None] | None,
        tokenize: Callable[[str], str],
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self._keep = keep
        self._clock = clock
        self._on_state = on_state
        self._tokenize = tokenize
        self.queue: asyncio.Queue[Advertisement] = asyncio.Queue(maxsize=queue_size)
        self._state = ScannerState(since=clock())
        # Counters live outside the frozen state so the hot path does no allocation per drop.
        self._seen = 0
        self._kept = 0
        self._filtered = 0
        self._full = 0
        self.last_advert_at = clock()
        self._filter_errors_logged = False

    @property
    def state(self) -> ScannerState:
        return dataclasses.replace(
            self._state,
            adverts_seen=self._seen,
            adverts_kept=self._kept,
            dropped_by_filter=self._filtered,
            dropped_queue_full=self._full,
        )

    @property
    def phase(self) -> Phase:
        return self._state.phase

    def set_phase(
        self, phase: Phase, *, reason: str = "", mode: str | None = None, note: str | None = None
    ) -> None:
        current = self._state
        changes: dict[str, object] = {"phase": phase, "reason": reason}
        if mode is not None:
            changes["mode"] = mode
        if note is not None:
            changes["mode_note"] = note
        if phase is not current.phase:
            changes["since"] = self._clock()
        new = dataclasses.replace(current, **changes)  # type: ignore[arg-type]
        if new == current:
            return
        self._state = new
        logger.info(
            "BLE scanner %s%s%s",
            phase.value,
            f" ({reason})" if reason else "",
            f" [{new.mode}]" if phase is Phase.SCANNING and new.mode else "",
        )
        self._notify()

    def count_restart(self) -> None:
        self._state = dataclasses.replace(self._state, restarts=self._state.restarts + 1)
        self._notify()

    def count_reset(self) -> None:
        self._state = dataclasses.replace(self._state, resets=self._state.resets + 1)
        self._notify()

    def _notify(self) -> None:
        if self._on_state is not None:
            self._on_state(self.state)

    def offer(
        self,
        *,
        key: str,
        rssi: int,
        manufacturer_data: Mapping[int, bytes],
        service_data: Mapping[str, bytes],
        service_uuids: tuple[str, ...],
        tx_power: int | None,
    ) -> None:
        """Filter, then queue. Called once per advertisement the stack reports.

        ``key`` is what identifies the device to the stack (the BLE address for bleak, the
        scenario's name for the twin); only its token leaves this method.
        """
        self._seen += 1
        now = self._clock()
        self.last_advert_at = now
        try:
            wanted = self._keep(manufacturer_data, service_data, service_uuids)
        except Exception as exc:  # a filter bug must not stop the scan; the frame is dropped
            wanted = False
            if not self._filter_errors_logged:  # once: a noisy beacon would flood the log
                self._filter_errors_logged = True
                logger.error("BLE keep filter raised %s; dropping such frames", type(exc).__name__)
        if not wanted:
            self._filtered += 1
            return
        # No address -> token cache: that would be a store of raw addresses. The HMAC costs ~2 us,
        # and runs only for the few advertisements the filter keeps.
        advert = Advertisement(
            device=self._tokenize(key),
            rssi=rssi,
            manufacturer_data=MappingProxyType(dict(manufacturer_data)),
            service_data=MappingProxyType(dict(service_data)),
            service_uuids=service_uuids,
            tx_power=tx_power,
            at=now,
        )
        try:
            self.queue.put_nowait(advert)
        except asyncio.QueueFull:
            self._full += 1
            return
        self._kept += 1


class BookedScanner:
    """The port's two properties, read from a ``ScanBook`` (the driver and the twin share it)."""

    _book: ScanBook

    @property
    def state(self) -> ScannerState:
        return self._book.state

    @property
    def adverts(self) -> asyncio.Queue[Advertisement]:
        return self._book.queue
