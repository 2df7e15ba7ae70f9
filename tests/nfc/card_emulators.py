"""Cards on nfcpy's UDP transport: a Type 2 sticker and a Type 4A phone (HCE), for the tests.

Each card is a thread with its own ``nfc.ContactlessFrontend("udp:127.0.0.1:PORT")`` in listen
mode: nfcpy's udp driver does the NFC-A anticollision (SENS, SDD, SEL) and hands over the first
command; this module answers the rest. ``present()`` puts the card in the field (it returns once
the card's UDP port is bound, since a poll sent before is silently lost), ``remove()`` takes it
away (it stops answering, so the reader's presence check fails). ``answer_limit`` makes the card
go silent after that many commands: a tag pulled away mid-read.

Type 2 (NFC Forum T2T 1.0): READ (30h page) answers 16 bytes from page ``page``, WRITE (A2h)
stores 4 bytes and ACKs (Ah). The UID's first byte is not 04h (NXP), so nfcpy does not probe
NTAG commands. Memory: pages 0-2 UID/BCC/lock, page 3 the capability container, then the NDEF
TLV (03h), then the terminator TLV (FEh).

Type 4A (ISO 14443-4, NFC Forum T4T 3.0): RATS (E0h) is answered with an ATS (FSCI 8, FWI 10);
then I-blocks carry APDUs: SELECT AID D2760000850101, SELECT E103h (capability container) and
E104h (NDEF file), READ BINARY; R(NAK) presence checks get R(ACK). The UID is random, as a
phone's.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

import nfc
import nfc.clf

log = logging.getLogger(__name__)
NDEF_AID = bytes.fromhex("D2760000850101")
SW_OK = b"\x90\x00"
SW_NOT_FOUND = b"\x6a\x82"
SW_UNSUPPORTED = b"\x6d\x00"


def port_bound(port: int) -> bool:
    """Whether a UDP socket is bound to ``port`` on this host (``/proc/net/udp``)."""
    needle = f":{port:04X} "
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        if os.path.exists(name):
            with open(name) as table:
                if any(line.split()[1].endswith(needle.strip()) for line in list(table)[1:]):
                    return True
    return False


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Card:
    sens_res = b"\x44\x00"
    sel_res = b"\x00"

    def __init__(self, *, port: int, uid: bytes, answer_limit: int | None = None) -> None:
        self.port = port
        self.uid = uid
        self.answer_limit = answer_limit
        self.commands = 0
        self.activations = 0
        self._removed = threading.Event()
        self._thread: threading.Thread | None = None
        self.entered_at = 0.0  # time.monotonic() of the first reader command after present()

    def respond(self, command: bytes) -> bytes | None:
        raise NotImplementedError

    def present(self, timeout: float = 5.0) -> None:
        self._removed.clear()
        self.commands = 0
        self.entered_at = 0.0
        self._thread = threading.Thread(target=self._serve, name="card", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not port_bound(self.port):
            if time.monotonic() > deadline:
                raise TimeoutError(f"card port {self.port} never bound")
            time.sleep(0.002)

    def remove(self) -> None:
        self._removed.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _serve(self) -> None:
        clf = nfc.ContactlessFrontend(f"udp:127.0.0.1:{self.port}")
        try:
            target = nfc.clf.LocalTarget("106A")
            target.sens_res = bytearray(self.sens_res)
            target.sdd_res = bytearray(self.uid)
            target.sel_res = bytearray(self.sel_res)
            while not self._removed.is_set():
                activated = clf.listen(target, 0.25)
                if activated is None:
                    continue
                self.activations += 1
                self.entered_at = self.entered_at or time.monotonic()
                command = bytes(activated.tt2_cmd or activated.tt4_cmd or b"")
                if not self._session(clf, command):
                    self._removed.wait()  # pulled away mid-read: silent until taken back
                    return
                # The reader sensed again (a failed activation): back to listening.
        finally:
            clf.close()

    def _session(self, clf: Any, command: bytes | None) -> bool:
        """Answer commands until removed (True), sensed anew (True) or pulled away (False)."""
        response: bytes | None = None
        while not self._removed.is_set():
            if command in (b"\x26", b"\x52"):  # SENS_REQ / ALL_REQ: a new activation
                log.info("card: reader sensed again mid-session")
                return True
            if command is not None:
                self.commands += 1
                if self.answer_limit is not None and self.commands > self.answer_limit:
                    return False
                response = self.respond(command)
            try:
                received = clf.exchange(None if response is None else bytearray(response), 0.05)
                command = None if received is None else bytes(received)
            except nfc.clf.TimeoutError:
                command = None
            except nfc.clf.CommunicationError:
                return True
            response = None
        return True


class Type2Sticker(_Card):
    """An NFC Forum Type 2 tag holding ``ndef`` (the message's octets)."""

    def __init__(self, *, port: int, uid: bytes, ndef: bytes = b"", **kw: Any) -> None:
        super().__init__(port=port, uid=uid, **kw)
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
                return b"\x00"  # NAK
            block = (self.memory + self.memory)[start : start + 16]
            return bytes(block)
        if len(command) == 6 and command[0] == 0xA2:  # WRITE one page
            start = command[1] * 4
            if start < 16 or start + 4 > len(self.memory):
                return b"\x00"
            self.memory[start : start + 4] = command[2:6]
            return b"\x0a"  # ACK
        return None  # unsupported: a Type 2 tag goes mute


class Type4Phone(_Card):
    """A phone emulating a Type 4A tag (HCE) with the NDEF application holding ``ndef``."""

    sens_res = b"\x04\x00"
    sel_res = b"\x20"  # ISO 14443-4 compliant

    def __init__(self, *, port: int, uid: bytes, ndef: bytes, **kw: Any) -> None:
        super().__init__(port=port, uid=uid, **kw)
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
        self.selected: bytes | None = None
        self.app_selected = False
        self.block = 0

    def respond(self, command: bytes) -> bytes | None:
        if command[:1] == b"\xe0":  # RATS -> ATS: TL, T0 (TA TB TC, FSCI 8), TA, TB (FWI 10), TC
            return bytes.fromhex("0578 80A0 02".replace(" ", ""))
        pcb = command[0]
        if pcb & 0xE2 == 0x02:  # I-block (no CID, no NAD, no chaining from this reader)
            self.block = pcb & 1
            return bytes((0x02 | self.block,)) + self.apdu(command[1:])
        if pcb & 0xF6 == 0xB2:  # R(NAK): presence check -> R(ACK) of our last block
            return bytes((0xA2 | self.block,))
        if pcb & 0xF7 == 0xC2:  # S(DESELECT)
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
