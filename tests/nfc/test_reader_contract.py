"""One contract for every NFC reader: the nfcpy driver over its UDP transport, and the twin.

The real rig's cards are emulated on nfcpy's udp driver (``card_emulators.py``, answering from
the field process of ``card_field.py``); the reader side is stock nfcpy: sensing,
anticollision, activation, NDEF discovery, presence checks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import ndef
import pytest

from cloud_sync.contract import member_token
from edge_agent.presence.nfc_port import NdefFault, ReaderState
from edge_agent.presence.tap_identify import Identified, Unidentified, identify
from tests.nfc.conftest import Rig, drive, until
from tests.nfc.factories import (
    CARD_MEMBER,
    CARD_UID,
    NOW,
    PHONE_MEMBER,
    cards,
    hq_key,
    message,
    token,
    token_message,
    trust,
)

pytestmark = pytest.mark.timeout(60)
PHONE_UIDS = [bytes.fromhex(h) for h in ("08a1b2c3", "08d4e5f6", "081a2b3c", "08ffee01")]


def who(tap: object) -> Identified | Unidentified:
    return identify(tap, trust=trust(), cards=cards(), now=NOW)  # type: ignore[arg-type]


def test_a_member_card_is_one_tap_on_the_loop_and_identified(make_rig: Callable[[], Rig]) -> None:
    async def body(rig: Rig) -> None:
        await rig.present("card", CARD_UID, message(ndef.TextRecord("hello")))
        tap = await rig.next_tap()
        assert (tap.reader_id, tap.uid, tap.tag_type) == ("till-3", CARD_UID, "Type2Tag")
        assert tap.records[0].type == "urn:nfc:wkt:T"
        assert rig.threads == [threading.get_ident()]  # delivered on the loop's thread
        assert who(tap) == Identified(CARD_MEMBER, "card")
        await rig.remove()
        assert rig.taps.empty()  # held in the field: still one tap
        assert rig.reader.health().state is ReaderState.CONNECTED
        assert rig.reader.health().taps == 1

    drive(make_rig, body)


def test_a_phone_is_identified_by_its_signed_token_whatever_its_uid(
    make_rig: Callable[[], Rig],
) -> None:
    async def body(rig: Rig) -> None:
        for uid in PHONE_UIDS[:2]:
            await rig.present("phone", uid, token_message(token()))
            tap = await rig.next_tap()
            assert tap.uid == uid and tap.tag_type == "Type4Tag"
            assert tap.records[0].type == member_token.RECORD_TYPE
            assert who(tap) == Identified(PHONE_MEMBER, "token")
            await rig.remove()

    drive(make_rig, body)


def test_bad_tokens_are_refused_with_a_reason_and_the_reader_keeps_going(
    make_rig: Callable[[], Rig],
) -> None:
    good = token()
    forged = good[:-1] + bytes([good[-1] ^ 0x55])
    cases = [
        (forged, "forged"),
        (token(issued=NOW.replace(year=2025)), "expired"),
        (good[:20], "malformed"),
        (token(key=hq_key(3)), "unknown_key"),
    ]

    async def body(rig: Rig) -> None:
        for (payload, reason), uid in zip(cases, PHONE_UIDS, strict=True):
            await rig.present("phone", uid, token_message(payload))
            found = who(await rig.next_tap())
            assert isinstance(found, Unidentified) and found.reason == reason, found
            await rig.remove()
        await rig.present("phone", PHONE_UIDS[0], token_message(good))
        assert who(await rig.next_tap()) == Identified(PHONE_MEMBER, "token")

    drive(make_rig, body)


def test_an_unknown_card_and_a_garbled_message_are_unidentified(
    make_rig: Callable[[], Rig],
) -> None:
    async def body(rig: Rig) -> None:
        await rig.present("card", bytes.fromhex("11223344556677"), b"")
        assert who(await rig.next_tap()) == Unidentified("unknown_card")
        await rig.present("card", bytes.fromhex("11223344556678"), b"\xd1\x01\x09T")
        tap = await rig.next_tap()
        assert tap.records == () and tap.ndef_fault is NdefFault.TRUNCATED
        assert who(tap) == Unidentified("malformed_ndef", "truncated")

    drive(make_rig, body)


def test_a_tag_pulled_away_mid_read_is_no_tap_and_the_next_one_reads(
    make_rig: Callable[[], Rig],
) -> None:
    async def body(rig: Rig) -> None:
        await rig.present("card", CARD_UID, message(ndef.TextRecord("x" * 100)), answer_limit=2)
        await until(lambda: rig.reader.health().reads_lost >= 1)
        assert rig.taps.empty()
        await rig.remove()
        await rig.present("card", CARD_UID, b"")
        assert who(await rig.next_tap()) == Identified(CARD_MEMBER, "card")

    drive(make_rig, body)


def test_stop_ends_run_and_says_so(make_rig: Callable[[], Rig]) -> None:
    async def body(rig: Rig) -> None:
        await rig.present("card", CARD_UID, b"")
        await rig.next_tap()

    made: list[Rig] = []

    def make() -> Rig:
        made.append(make_rig())
        return made[0]

    drive(make, body)
    assert made[0].reader.health().state is ReaderState.STOPPED
