"""The simulated NFC reader: the twin of ``nfcpy_reader.py`` for ``make demo`` and tests.

It replays a scenario of timed taps on the same ``TagReader`` port, with time through an
injectable ``sleep`` (``asyncio.sleep`` by default; a test passes one that returns at once), and
takes taps pushed by a test or the demo (``present``). The contract suite in ``tests/nfc`` runs
the same tests against this twin and against the real driver over nfcpy's UDP transport.

Scenario format (JSON, one object; unknown keys are errors)::

    {
      "reader_id": "till-3",                  optional; the constructor's wins if given
      "events": [                             in order; "after" is seconds since the previous
        {"after": 1.0, "uid": "a1b2c3d4"},                          a member card (Type 2)
        {"after": 2.5, "uid": "08ab12cd", "tag_type": "Type4Tag",   a phone: random UID and
         "records": [{"type": "urn:nfc:ext:storeside.io:member",    a member token record
                      "payload_hex": "01..."}]},
        {"after": 0.5, "unplugged_for": 3.0},                       the reader goes away, back
        {"after": 1.0, "lost_read": true}                           a tag pulled away mid-read
      ]
    }

A tap event has ``uid`` (hex, or omitted for none) and/or ``records`` (``type`` as ndeflib writes
it, optional ``name``, ``payload_hex``); ``tag_type`` defaults to ``Type2Tag`` without records
and ``Type4Tag`` with them. After the last event the reader waits for taps until stopped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from edge_agent.presence.nfc_port import (
    NdefFault,
    NdefRecord,
    ReaderHealth,
    ReaderState,
    Tap,
    TapCallback,
)

log = logging.getLogger(__name__)
Sleep = Callable[[float], Awaitable[None]]
_HEX = r"^([0-9a-fA-F]{2})*$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RecordSpec(_Model):
    type: str
    name: str = ""
    payload_hex: Annotated[str, Field(pattern=_HEX)] = ""


class EventSpec(_Model):
    after: Annotated[float, Field(ge=0, le=86_400)] = 0.0
    uid: Annotated[str | None, Field(pattern=_HEX, min_length=2, max_length=20)] = None
    records: tuple[RecordSpec, ...] = ()
    tag_type: str | None = None
    unplugged_for: Annotated[float | None, Field(gt=0, le=86_400)] = None
    lost_read: bool = False


class Scenario(_Model):
    reader_id: str | None = None
    events: tuple[EventSpec, ...] = ()

    @classmethod
    def load(cls, path: Path) -> Scenario:
        return cls.model_validate(json.loads(path.read_text()))


@dataclass(frozen=True, slots=True)
class _Present:
    uid: bytes | None
    records: tuple[NdefRecord, ...]
    tag_type: str
    ndef_fault: NdefFault | None = None


class SimulatedReader:
    """A ``TagReader`` in memory, replaying ``scenario`` and whatever ``present`` pushes."""

    def __init__(
        self,
        *,
        reader_id: str = "sim",
        scenario: Scenario | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader_id = reader_id
        self._scenario = scenario or Scenario()
        self._sleep = sleep
        self._clock = clock
        self._health = ReaderHealth(state=ReaderState.STARTING)
        self._stopping = False
        self._wake: asyncio.Event | None = None
        self._pushed: list[_Present] = []
        self.plugged_in = True  # a test flips it: absent while False
        self._loop: asyncio.AbstractEventLoop | None = None  # run()'s, for present_threadsafe

    @property
    def reader_id(self) -> str:
        return self._reader_id

    def health(self) -> ReaderHealth:
        return self._health

    def stop(self) -> None:
        self._stopping = True
        if self._wake is not None:
            self._wake.set()

    def present(
        self,
        *,
        uid: bytes | None = None,
        records: tuple[NdefRecord, ...] = (),
        tag_type: str | None = None,
        ndef_fault: NdefFault | None = None,
    ) -> None:
        """A card or phone enters the field now (call on the reader's loop)."""
        kind = tag_type or _default_type(records)
        self._pushed.append(_Present(uid, records, kind, ndef_fault))
        if self._wake is not None:
            self._wake.set()

    def present_threadsafe(
        self, *, uid: bytes | None = None, records: tuple[NdefRecord, ...] = ()
    ) -> None:
        """``present`` from another thread (the demo's story runs beside the agent's loop)."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("the simulated reader is not running")
        loop.call_soon_threadsafe(lambda: self.present(uid=uid, records=records))

    async def run(self, on_tap: TapCallback) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        try:
            if self._stopping:
                return
            self._health = replace(self._health, state=ReaderState.CONNECTED)
            replay = asyncio.ensure_future(self._replay(on_tap))
            try:
                while not self._stopping:
                    self._deliver_pushed(on_tap)
                    await self._wake.wait()
                    self._wake.clear()
                self._deliver_pushed(on_tap)  # what arrived with the stop still counts
            finally:
                replay.cancel()
                await asyncio.gather(replay, return_exceptions=True)
        finally:
            self._health = replace(self._health, state=ReaderState.STOPPED)
            self._stopping = False

    def lost_read(self) -> None:
        """A tag pulled away mid-read: counted and logged, no tap (as the real driver)."""
        log.info("nfc %s: tag removed mid-read: no tap", self._reader_id)
        self._health = replace(self._health, reads_lost=self._health.reads_lost + 1)

    def _deliver_pushed(self, on_tap: TapCallback) -> None:
        pushed, self._pushed = self._pushed, []
        for item in pushed:
            self._tap(on_tap, item)

    def _tap(self, on_tap: TapCallback, item: _Present) -> None:
        if not self.plugged_in:
            log.info("nfc %s: tap while the reader is unplugged: not read", self._reader_id)
            return
        tap = Tap(
            reader_id=self._reader_id,
            uid=item.uid,
            records=item.records,
            tag_type=item.tag_type,
            at=self._clock(),
            ndef_fault=item.ndef_fault,
        )
        self._health = replace(self._health, taps=self._health.taps + 1)
        on_tap(tap)

    async def _replay(self, on_tap: TapCallback) -> None:
        for event in self._scenario.events:
            await self._sleep(event.after)
            if event.unplugged_for is not None:
                await self._unplug(event.unplugged_for)
            elif event.lost_read:
                self.lost_read()
            else:
                records = tuple(
                    NdefRecord(r.type, r.name, bytes.fromhex(r.payload_hex)) for r in event.records
                )
                uid = None if event.uid is None else bytes.fromhex(event.uid)
                self._tap(on_tap, _Present(uid, records, event.tag_type or _default_type(records)))

    async def _unplug(self, seconds: float) -> None:
        h = self._health
        self._health = replace(
            h, state=ReaderState.ABSENT, disconnects=h.disconnects + 1, last_error="unplugged"
        )
        self.plugged_in = False
        await self._sleep(seconds)
        self.plugged_in = True
        self._health = replace(self._health, state=ReaderState.CONNECTED)


def _default_type(records: tuple[NdefRecord, ...]) -> str:
    return "Type4Tag" if records else "Type2Tag"
