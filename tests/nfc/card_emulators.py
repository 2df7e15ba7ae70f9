"""Cards for the NFC tests: a Type 2 sticker and a Type 4A phone (HCE), answering reader frames.

A card here is pure: ``frame(data)`` takes one frame from the reader and returns the card's
answer (or None: the card stays silent). ``card_field.py`` carries the frames to and from
nfcpy's udp driver in a process of its own; the reader side is stock nfcpy.

ISO/IEC 14443-3 type A, as the reader sees it: a card in the field is IDLE until SENS_REQ (26h)
or ALL_REQ (52h), answers SENS_RES and is READY; anticollision then takes one cascade level per
4 UID bytes (SDD_REQ 93h/95h/97h 20h is answered with that level's UID bytes and BCC, SEL_REQ
93h/95h/97h 70h + those 5 bytes with SEL_RES, the cascade bit 04h set while a level follows);
after the last level the card is ACTIVE and every other frame goes to its command set. A frame
that makes no sense to a READY card sends it back to IDLE. Two leniencies, both what a reader
that just turned its field off and on again would see: a SENS_REQ / ALL_REQ is answered in
any state, and ``field_off()`` (nfcpy's udp driver sends RFOFF when the reader mutes) powers the
card down to IDLE. ``answer_limit`` makes the card go silent after that many commands once
ACTIVE, for good: a tag pulled away mid-read.

Type 2 (NFC Forum T2T 1.0): READ (30h page) answers 16 bytes from page ``page``, WRITE (A2h)
stores 4 bytes and ACKs (Ah); a NAK sends the tag back to IDLE (T2T 1.0 section 5.4). The UID's
first byte is not 04h (NXP), so nfcpy does not probe NTAG commands. Memory: pages 0-2 UID/BCC/
lock, page 3 the capability container, then the NDEF TLV (03h), then the terminator TLV (FEh).

Type 4A (ISO 14443-4, NFC Forum T4T 3.0): RATS (E0h) is answered with an ATS (FSCI 8, FWI 10);
then I-blocks carry APDUs: SELECT AID D2760000850101, SELECT E103h (capability container) and
E104h (NDEF file), READ BINARY. An R(NAK) carrying the card's own block number asks for its last
I-block again (ISO 14443-4 7.5.4.2, rule 11: the reader missed the answer); any other R(NAK) is
nfcpy's presence check and gets R(ACK). The UID is random, as a phone's.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from functools import reduce
from operator import xor
from typing import Any

NDEF_AID = bytes.fromhex("D2760000850101")
SW_OK = b"\x90\x00"
SW_NOT_FOUND = b"\x6a\x82"
SW_UNSUPPORTED = b"\x6d\x00"
WAKE = (b"\x26", b"\x52")  # SENS_REQ, ALL_REQ
SEL_CMDS = b"\x93\x95\x97"  # cascade levels 1, 2, 3


class CardState(Enum):
    IDLE = "idle"
    READY = "ready"  # answered SENS_RES; in anticollision
    ACTIVE = "active"  # selected: frames go to the command set
    SILENT = "silent"  # pulled away mid-read (answer_limit reached)


def cascade(uid: bytes) -> list[bytes]:
    """The SDD_RES of each cascade level: 4 UID bytes (88h, the cascade tag, and 3 UID bytes
    while more follow) and their BCC (ISO 14443-3 6.5.4)."""
    assert len(uid) in (4, 7, 10), "a single, double or triple size UID"
    rest, levels = uid, []
    while rest:
        chunk, rest = (rest, b"") if len(rest) == 4 else (b"\x88" + rest[:3], rest[3:])
        levels.append(chunk + bytes((reduce(xor, chunk),)))
    return levels


class Card:
    """ISO 14443-3A activation for a card; subclasses answer the commands of an ACTIVE one."""

    sens_res = b"\x44\x00"
    sel_res = b"\x00"

    def __init__(self, *, uid: bytes, answer_limit: int | None = None) -> None:
        self.uid = uid
        self.answer_limit = answer_limit
        self.levels = cascade(uid)
        self.state = CardState.IDLE
        self.level = 0
        self.commands = 0  # frames answered (or not) while ACTIVE
        self.activations = 0

    def frame(self, data: bytes) -> bytes | None:
        if self.state is CardState.SILENT:
            return None
        if data in WAKE:
            self.state, self.level = CardState.READY, 0
            return self.sens_res
        if self.state is CardState.READY:
            return self._anticollision(data)
        if self.state is CardState.ACTIVE:
            self.commands += 1
            if self.answer_limit is not None and self.commands > self.answer_limit:
                self.state = CardState.SILENT
                return None
            return self.respond(data)
        return None  # IDLE: only a wake-up is answered

    def _anticollision(self, data: bytes) -> bytes | None:
        sdd = self.levels[self.level]
        sel_cmd = SEL_CMDS[self.level]
        if data == bytes((sel_cmd, 0x20)):
            return sdd
        if data == bytes((sel_cmd, 0x70)) + sdd:
            if self.level + 1 < len(self.levels):
                self.level += 1
                return bytes((self.sel_res[0] | 0x04,))
            self.state = CardState.ACTIVE
            self.activations += 1
            self.power_on()
            return self.sel_res
        self.state = CardState.IDLE
        return None

    def field_off(self) -> None:
        if self.state is not CardState.SILENT:
            self.state = CardState.IDLE

    def power_on(self) -> None:
        """Reset what a card forgets without power (nothing, for a plain memory tag)."""

    def respond(self, command: bytes) -> bytes | None:
        raise NotImplementedError


class Type2Sticker(Card):
    """An NFC Forum Type 2 tag holding ``ndef`` (the message's octets)."""

    def __init__(self, *, uid: bytes, ndef: bytes = b"", **kw: Any) -> None:
        super().__init__(uid=uid, **kw)
        assert uid[0] != 0x04, "an NXP UID makes nfcpy probe NTAG commands"
        tlv = b"\x03" + (
            bytes((len(ndef),)) if len(ndef) < 255 else b"\xff" + len(ndef).to_bytes(2, "big")
        )
        data = tlv + ndef + b"\xfe" if ndef else b"\x03\x00\xfe"
        size = max(48, -(-len(data) // 8) * 8)
        data = data.ljust(size, b"\x00")
        header = uid[:7].ljust(7, b"\x00")
        self.memory = bytearray(
            header[:3]
            + bytes((0x88 ^ header[0] ^ header[1] ^ header[2],))
            + header[3:7]
            + bytes((header[3] ^ header[4] ^ header[5] ^ header[6],))
            + b"\x48\x00\x00"  # internal, lock 0, lock 1: unlocked
            + bytes((0xE1, 0x10, size // 8, 0x00))  # CC: magic, v1.0, data size / 8, rw
            + data
        )

    def respond(self, command: bytes) -> bytes | None:
        if len(command) == 2 and command[0] == 0x30:  # READ: 16 bytes, wrapping round
            start = command[1] * 4
            if start >= len(self.memory):
                return self._nak()
            block = (self.memory + self.memory)[start : start + 16]
            return bytes(block)
        if len(command) == 6 and command[0] == 0xA2:  # WRITE one page
            start = command[1] * 4
            if start < 16 or start + 4 > len(self.memory):
                return self._nak()
            self.memory[start : start + 4] = command[2:6]
            return b"\x0a"  # ACK
        return None  # unsupported: a Type 2 tag goes mute

    def _nak(self) -> bytes:
        self.state = CardState.IDLE  # nfcpy senses the tag anew after a NAK
        return b"\x00"


class Type4Phone(Card):
    """A phone emulating a Type 4A tag (HCE) with the NDEF application holding ``ndef``."""

    sens_res = b"\x04\x00"
    sel_res = b"\x20"  # ISO 14443-4 compliant

    def __init__(self, *, uid: bytes, ndef: bytes, **kw: Any) -> None:
        super().__init__(uid=uid, **kw)
        self.files = {
            b"\xe1\x03": bytes.fromhex("000F20")
            + (240).to_bytes(2, "big")  # CCLEN, v2.0, MLe
            # MLc, then the NDEF file control TLV: E104h, max size, read free, write denied
            + (240).to_bytes(2, "big")
            + bytes.fromhex("0406E104")
            + (2 + len(ndef)).to_bytes(2, "big")
            + b"\x00\xff",
            b"\xe1\x04": len(ndef).to_bytes(2, "big") + ndef,
        }
        self.power_on()

    def power_on(self) -> None:
        self.selected: bytes | None = None
        self.app_selected = False
        self.block = 0
        self.last_block: bytes | None = None  # the last I-block sent, for a reader that missed it

    def respond(self, command: bytes) -> bytes | None:
        if command[:1] == b"\xe0":  # RATS -> ATS: TL, T0 (TA TB TC, FSCI 8), TA, TB (FWI 10), TC
            return bytes.fromhex("057880A002")
        pcb = command[0]
        if pcb & 0xE2 == 0x02:  # I-block (no CID, no NAD, no chaining from this reader)
            self.block = pcb & 1
            self.last_block = bytes((0x02 | self.block,)) + self.apdu(command[1:])
            return self.last_block
        if pcb & 0xF6 == 0xB2:  # R(NAK)
            if pcb & 1 == self.block and self.last_block is not None:
                return self.last_block
            return bytes((0xA2 | self.block,))
        if pcb & 0xF7 == 0xC2:  # S(DESELECT)
            self.state = CardState.IDLE
            return bytes((0xC2,))
        return None

    def apdu(self, apdu: bytes) -> bytes:
        if len(apdu) < 4:
            return SW_UNSUPPORTED
        ins, p1, p2 = apdu[1], apdu[2], apdu[3]
        body = apdu[5 : 5 + apdu[4]] if len(apdu) > 5 else b""
        if ins == 0xA4 and p1 == 0x04:  # SELECT by name
            self.app_selected = body == NDEF_AID
            return SW_OK if self.app_selected else SW_NOT_FOUND
        if ins == 0xA4 and p1 == 0x00 and self.app_selected and body in self.files:
            self.selected = body
            return SW_OK
        if ins == 0xA4:
            return SW_NOT_FOUND
        if ins == 0xB0 and self.selected is not None:  # READ BINARY
            offset = (p1 << 8) | p2
            length = apdu[4] if len(apdu) > 4 and apdu[4] else 256
            return self.files[self.selected][offset : offset + length] + SW_OK
        return SW_UNSUPPORTED


# By the rigs' names; each is called with uid=, ndef= and answer_limit=.
CARDS: dict[str, Callable[..., Card]] = {"card": Type2Sticker, "phone": Type4Phone}
