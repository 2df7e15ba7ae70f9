"""Rigs for the NFC contract suite: the nfcpy driver over UDP with emulated cards, and the twin.

Each rig runs its reader on the test's loop and offers the same few moves: a card or phone
enters the field (``present``), leaves (``remove``), or is pulled away mid-read. The real rig
polls only 106A (Type 2 and Type 4A are both NFC-A), since every empty poll of a technology
costs a second in nfcpy's udp driver.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from edge_agent.presence.ndef_message import NdefError, decode_message
from edge_agent.presence.nfc_port import TagReader, Tap
from hardware.nfc.nfcpy_reader import NfcpyReader
from hardware.nfc.sim_reader import SimulatedReader
from tests.nfc.card_emulators import Type2Sticker, Type4Phone, free_udp_port


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

    async def next_tap(self, timeout: float = 15.0) -> Tap:
        # Generous: under load a phone can miss several 1 s polls of the udp driver (an ATS
        # later than nfcpy's 30 ms RATS timeout means a new activation).  See bench_nfc.
        return await asyncio.wait_for(self.taps.get(), timeout)

    async def present(self, kind: str, uid: bytes, octets: bytes, **kw: Any) -> None:
        raise NotImplementedError

    async def remove(self) -> None:
        raise NotImplementedError


class UdpRig(Rig):
    def __init__(self) -> None:
        super().__init__()
        self.port = free_udp_port()
        self.reader = NfcpyReader(
            reader_id="till-3", path=f"udp:127.0.0.1:{self.port}", retry_initial=0.05
        )
        self.card: Type2Sticker | Type4Phone | None = None

    async def present(self, kind: str, uid: bytes, octets: bytes, **kw: Any) -> None:
        await self.remove()
        cls = Type2Sticker if kind == "card" else Type4Phone
        self.card = cls(port=self.port, uid=uid, ndef=octets, **kw)
        await asyncio.to_thread(self.card.present)

    async def remove(self) -> None:
        if self.card is not None:
            await asyncio.to_thread(self.card.remove)
            self.card = None
            # Until the reader's presence check notices, its frames would reach the next card
            # (nfcpy's udp listen side skips the ISO 14443-3 IDLE state): wait for the release.
            for _ in range(200):
                if not self.reader.health().tag_in_field:
                    return
                await asyncio.sleep(0.01)


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


@pytest.fixture(params=["nfcpy-udp", "sim"])
def make_rig(request: pytest.FixtureRequest) -> Callable[[], Rig]:
    return UdpRig if request.param == "nfcpy-udp" else SimRig
