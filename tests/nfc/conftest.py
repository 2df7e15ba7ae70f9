"""Rigs for the NFC contract suite: the nfcpy driver over UDP with emulated cards, and the twin.

Each rig runs its reader on the test's loop and offers the same few moves: a card or phone
enters the field (``present``), leaves (``remove``), or is pulled away mid-read. The real rig's
cards answer from a field process of their own (``card_field.py``), started once per session
and reset for each test; its reader is a new ``NfcpyReader`` per test, polling only 106A (Type 2
and Type 4A are both NFC-A), since every empty poll of a technology costs a second in nfcpy's
udp driver.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from edge_agent.presence.ndef_message import NdefError, decode_message
from edge_agent.presence.nfc_port import TagReader, Tap
from hardware.nfc.nfcpy_reader import NfcpyReader
from hardware.nfc.sim_reader import SimulatedReader
from tests.nfc.card_field import CardField

TAP_TIMEOUT_S = 10.0  # a tap takes tens of ms; this only bounds a test that went wrong


async def until(check: Callable[[], object], seconds: float = 10.0) -> None:
    """Return once ``check()`` holds; fail after ``seconds``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition never held")
        await asyncio.sleep(0.005)


class Rig:
    reader: TagReader

    def __init__(self) -> None:
        self.taps: asyncio.Queue[Tap] = asyncio.Queue()
        self.threads: list[int] = []
        self._task: asyncio.Task[None] | None = None

    def _on_tap(self, tap: Tap) -> None:
        self.threads.append(threading.get_ident())
        self.taps.put_nowait(tap)

    async def start(self) -> None:
        self._task = asyncio.create_task(self.reader.run(self._on_tap))

    async def stop(self) -> None:
        self.reader.stop()
        assert self._task is not None
        await asyncio.wait_for(self._task, 10)

    async def next_tap(self, timeout: float = TAP_TIMEOUT_S) -> Tap:
        return await asyncio.wait_for(self.taps.get(), timeout)

    async def present(self, kind: str, uid: bytes, octets: bytes, **kw: Any) -> None:
        raise NotImplementedError

    async def remove(self) -> None:
        raise NotImplementedError


class UdpRig(Rig):
    def __init__(self, field: CardField) -> None:
        super().__init__()
        self.field = field
        self.reader = NfcpyReader(reader_id="till-3", path=field.path, retry_initial=0.05)
        self.in_field = False

    async def present(self, kind: str, uid: bytes, octets: bytes, **kw: Any) -> None:
        await self.remove()
        await asyncio.to_thread(self.field.present, kind, uid=uid, ndef=octets, **kw)
        self.in_field = True

    async def remove(self) -> None:
        if self.in_field:
            await asyncio.to_thread(self.field.remove)
            self.in_field = False
            # Wait for the reader's presence check to notice, so what a test sees next (no
            # second tap, the health) is after the release.
            await until(lambda: not self.reader.health().tag_in_field)


class SimRig(Rig):
    def __init__(self) -> None:
        super().__init__()
        self.sim = SimulatedReader(reader_id="till-3")
        self.reader = self.sim

    async def present(self, kind: str, uid: bytes, octets: bytes, **kw: Any) -> None:
        if kw.get("answer_limit") is not None:
            self.sim.lost_read()
            return
        parsed = decode_message(octets) if octets else ()
        records = () if isinstance(parsed, NdefError) else parsed
        fault = parsed.fault if isinstance(parsed, NdefError) else None
        tag_type = "Type2Tag" if kind == "card" else "Type4Tag"
        self.sim.present(uid=uid, records=records, tag_type=tag_type, ndef_fault=fault)

    async def remove(self) -> None:
        return None


Body = Callable[[Rig], Awaitable[None]]


def drive(make: Callable[[], Rig], body: Body) -> None:
    """Run ``body`` against a started rig on a fresh loop, and stop the rig after it."""

    async def main() -> None:
        made = make()
        await made.start()
        try:
            await body(made)
        finally:
            await made.remove()
            await made.stop()

    asyncio.run(main())


@pytest.fixture(scope="session")
def shared_field() -> Iterator[CardField]:
    field = CardField()
    try:
        yield field
    finally:
        field.close()


@pytest.fixture
def card_field(shared_field: CardField) -> CardField:
    """The session's field process, emptied: no card, no poll left from another test."""
    shared_field.reset()
    return shared_field


@pytest.fixture(params=["nfcpy-udp", "sim"])
def make_rig(request: pytest.FixtureRequest) -> Callable[[], Rig]:
    if request.param == "sim":
        return SimRig
    field: CardField = request.getfixturevalue("card_field")
    return lambda: UdpRig(field)
