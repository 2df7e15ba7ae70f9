"""The nfcpy driver survives its reader going away: a path that fails to open, then opens; an
open reader whose device dies under it. Also the twin's scenario replay."""

from __future__ import annotations

import asyncio
import errno
import json
from pathlib import Path
from typing import Any

import nfc
import pytest

from edge_agent.presence.nfc_port import ReaderState, Tap
from hardware.nfc.nfcpy_reader import NfcpyReader
from hardware.nfc.sim_reader import Scenario, SimulatedReader
from tests.nfc.card_field import CardField
from tests.nfc.conftest import until
from tests.nfc.factories import CARD_UID

pytestmark = pytest.mark.timeout(60)


def test_a_reader_absent_at_start_is_retried_until_it_is_plugged_in(card_field: CardField) -> None:
    plugged = {"in": False}
    opened: list[Any] = []

    def open_frontend(path: str) -> Any:
        if not plugged["in"]:  # what nfc.ContactlessFrontend("usb") raises with no reader
            raise OSError(errno.ENODEV, "No such device")
        opened.append(nfc.ContactlessFrontend(path))
        return opened[-1]

    async def main() -> None:
        reader = NfcpyReader(
            reader_id="door", path=card_field.path, retry_initial=0.02, retry_max=0.1,
            open_frontend=open_frontend,
        )  # fmt: skip
        taps: list[Tap] = []
        task = asyncio.create_task(reader.run(taps.append))
        await until(lambda: reader.health().open_failures >= 3)
        assert reader.health().state is ReaderState.ABSENT
        assert "not_found" in (reader.health().last_error or "")
        plugged["in"] = True
        await until(lambda: reader.health().state is ReaderState.CONNECTED)
        await asyncio.to_thread(card_field.present, "card", uid=CARD_UID)
        await until(lambda: bool(taps))
        assert taps[0].uid == CARD_UID
        await asyncio.to_thread(card_field.remove)
        reader.stop()
        await asyncio.wait_for(task, 10)

    asyncio.run(main())


def test_a_reader_that_dies_while_open_is_reopened_and_reads_again(card_field: CardField) -> None:
    opened: list[Any] = []

    def open_frontend(path: str) -> Any:
        opened.append(nfc.ContactlessFrontend(path))
        return opened[-1]

    async def main() -> None:
        reader = NfcpyReader(
            reader_id="till", path=card_field.path, retry_initial=0.02,
            open_frontend=open_frontend,
        )  # fmt: skip
        taps: list[Tap] = []
        task = asyncio.create_task(reader.run(taps.append))
        await until(lambda: opened and opened[0].device is not None)
        # Unplugged: from now on every transfer to the device fails with an OSError inside
        # connect(), as a USB reader's do once it is gone (nfcpy's usb transport raises IOError).
        # Here the udp device's next send goes to the broadcast address: EACCES. (Closing its
        # socket instead races nfcpy's reader thread: a select() entered on the closed socket
        # raises ValueError, which no real unplug does.)
        opened[0].device.addr = ("255.255.255.255", card_field.port)
        await until(lambda: reader.health().disconnects >= 1)
        assert (reader.health().last_error or "").startswith("unplugged")
        await until(lambda: len(opened) >= 2 and reader.health().state is ReaderState.CONNECTED)
        await asyncio.to_thread(card_field.present, "card", uid=CARD_UID)
        await until(lambda: bool(taps))
        assert taps[0].uid == CARD_UID
        await asyncio.to_thread(card_field.remove)
        reader.stop()
        await asyncio.wait_for(task, 10)

    asyncio.run(main())


def test_the_twin_replays_a_scenario_file_without_waiting(tmp_path: Path) -> None:
    path = tmp_path / "taps.json"
    path.write_text(json.dumps({"events": [
        {"after": 30, "uid": "a1b2c3d4e5f601"},
        {"after": 60, "unplugged_for": 120},
        {"after": 1, "lost_read": True},
        {"after": 5, "uid": "08aabbcc",
         "records": [{"type": "urn:nfc:wkt:T", "payload_hex": "02656e6869"}]},
    ]}))  # fmt: skip
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await asyncio.sleep(0)

    async def main() -> None:
        sim = SimulatedReader(reader_id="demo", scenario=Scenario.load(path), sleep=sleep)
        taps: list[Tap] = []
        task = asyncio.create_task(sim.run(taps.append))
        await until(lambda: len(taps) == 2)
        sim.stop()
        await task
        assert [t.tag_type for t in taps] == ["Type2Tag", "Type4Tag"]
        assert taps[1].records[0].payload == b"\x02enhi"
        health = sim.health()
        assert (health.taps, health.reads_lost, health.disconnects) == (2, 1, 1)
        assert slept == [30, 60, 120, 1, 5]

    asyncio.run(main())
