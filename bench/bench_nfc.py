"""Tap to member identified: a phone presents its signed token to the nfcpy driver over UDP.

Each of ``TAPS`` taps: an emulated Type 4A phone (a random UID, the member token in its NDEF
file) enters the field of ``tests/nfc/card_field.py`` (the card answers from a process of its
own); the driver, in its own thread, activates it (RATS, ISO-DEP), reads the NDEF application,
hands the ``Tap`` to the loop, where ``identify`` verifies the token with HQ's key. Measured
from the reader's first command reaching the phone after anticollision (the card is then in the
field and answering) to ``Identified`` on the loop; target <= 200 ms. Also printed: from the
phone being put down, which adds the anticollision and, when the phone comes after the udp
driver's 1 s SENS_RES wait has mostly run (the field answers a SENS_REQ under 0.8 s old), up to
one poll of that driver (a real reader polls every few tens of ms).
"""

from __future__ import annotations

import asyncio
import time

from bench.report import figure, percentile
from edge_agent.presence.nfc_port import Tap
from edge_agent.presence.tap_identify import Identified, identify
from hardware.nfc.nfcpy_reader import NfcpyReader
from tests.nfc.card_field import CardField
from tests.nfc.factories import NOW, cards, token, token_message, trust

TAPS = 50


async def _run(field: CardField) -> tuple[list[float], list[float]]:
    reader = NfcpyReader(reader_id="bench", path=field.path, poll_interval=0.01)
    box_trust, enrolled = trust(), cards()
    identified: asyncio.Queue[float] = asyncio.Queue()

    def on_tap(tap: Tap) -> None:
        if isinstance(identify(tap, trust=box_trust, cards=enrolled, now=NOW), Identified):
            identified.put_nowait(time.monotonic())

    task = asyncio.create_task(reader.run(on_tap))
    octets = token_message(token())
    in_field: list[float] = []
    put_down: list[float] = []
    for i in range(TAPS):
        start = time.monotonic()
        await asyncio.to_thread(
            field.present, "phone", uid=bytes([0x08, i, 0x5A, 0xA5]), ndef=octets
        )
        done = await asyncio.wait_for(identified.get(), 10)
        stats = await asyncio.to_thread(field.remove)
        in_field.append(done - stats["entered_at"])
        put_down.append(done - start)
        while reader.health().tag_in_field:
            await asyncio.sleep(0.005)
    reader.stop()
    await task
    return in_field, put_down


def main() -> None:
    field = CardField()
    try:
        in_field, put_down = asyncio.run(_run(field))
    finally:
        field.close()
    ms = [s * 1000 for s in in_field]
    figure("nfc tap to identified p50", percentile(ms, 50), "ms")
    figure("nfc tap to identified p99", percentile(ms, 99), "ms", target="<= 200 ms")
    down = [s * 1000 for s in put_down]
    figure("nfc phone down to identified p50 (udp poll included)", percentile(down, 50), "ms")
    figure("nfc phone down to identified p99 (udp poll included)", percentile(down, 99), "ms")
    figure("nfc taps measured", len(ms), "taps")


if __name__ == "__main__":
    main()
