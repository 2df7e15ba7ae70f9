"""The RF field of an emulated reader: cards from ``card_emulators.py`` on nfcpy's udp driver, in
a process of their own.

Theory of operation
-------------------
nfcpy's udp driver (``nfc/clf/udp.py``) carries each frame as one datagram, ``b"106A <hex>"``,
from the reader's socket to ``udp:HOST:PORT``; the card answers to the sender. The reader's
deadlines are short: 30 ms for the ATS after RATS, 5 ms (two retries) for a Type 2 READ. A card
answering from threads of the test process shares its GIL with the reader's thread, the event
loop and the garbage collector, so on a loaded machine it answered late: a missed ATS means a
failed activation, and a late READ answer stays queued and is taken as the next READ's answer.
So the cards run here, in a child process with its own GIL, a single thread that sleeps in
``select`` and only ever parses a frame and answers it. The test process steers it through a
pipe (``CardField``): put a card in the field, take it away, read its counters.

The field's socket stays bound for the process's life, so no frame is lost while a card is
rebound, and an empty field simply answers nothing (the reader's poll times out, as with no
card). The udp driver waits 1 s for a SENS_RES on each poll; a card put down during that wait
answers the reader's outstanding SENS_REQ at once, as a card entering a real reader's field
answers its next poll a few milliseconds later; otherwise every tap would cost half a second
of waiting for the next poll. Only a SENS_REQ under ``PENDING_S`` old, with no RFOFF (the
reader muting) since, is answered that way.

When several frames are queued (the card was late), only the last one is answered: the reader
sent the later ones because it stopped waiting for the earlier answers, and an answer it no
longer waits for would be read as the answer to its next command. The card still sees every
frame, so its state follows the reader's.

Control lines (JSON, one per line, each answered with one line): ``present`` (kind, uid and
ndef in hex, answer_limit), ``remove``, ``stats``, ``reset``. ``entered_at`` is the
``time.monotonic()`` (one clock for all processes) of the first command after activation.
"""

from __future__ import annotations

import json
import selectors
import socket
import subprocess
import sys
import threading
import time
from binascii import hexlify, unhexlify
from pathlib import Path
from typing import IO, Any

from tests.nfc.card_emulators import CARDS, WAKE, Card, CardState

PENDING_S = 0.8  # under nfcpy udp's 1 s SENS_RES wait, with room for the reader to get it
REPO = Path(__file__).resolve().parents[2]


def _bind_numeric() -> socket.socket:
    """A socket on a free port that nfcpy's udp driver can open: it reads the port back with
    ``getnameinfo`` without NI_NUMERICSERV, so a port named in /etc/services (60179 "fido",
    60177, 57000) becomes a name it fails to int(). The old in-process rig met 60179 once."""
    named: list[socket.socket] = []  # held until the end, so the kernel offers other ports
    while True:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        if socket.getnameinfo(("127.0.0.1", port), socket.NI_NUMERICHOST)[1].isdigit():
            for other in named:
                other.close()
            return sock
        named.append(sock)


class _Field:
    """The child's side: one socket, at most one card, steered by ``control`` lines."""

    def __init__(self) -> None:
        self.sock = _bind_numeric()
        self.sock.setblocking(False)
        self.card: Card | None = None
        self.entered_at = 0.0
        self.pending: tuple[float, bytes, Any] | None = None  # (when, SENS_REQ, reader)

    def datagrams(self) -> None:
        batch: list[tuple[bytes, Any]] = []
        while True:
            try:
                batch.append(self.sock.recvfrom(1024))
            except BlockingIOError:
                break
        for i, (payload, addr) in enumerate(batch):
            answer = self._frame(payload, addr)
            if answer is not None and i == len(batch) - 1:
                self.sock.sendto(answer, addr)

    def _frame(self, payload: bytes, addr: Any) -> bytes | None:
        if payload.startswith(b"RFOFF"):
            self.pending = None
            if self.card is not None:
                self.card.field_off()
            return None
        brty, _, data_hex = payload.partition(b" ")
        data = unhexlify(data_hex)
        if self.card is None:
            if data in WAKE:
                self.pending = (time.monotonic(), data, addr)
            return None
        answer = self._answer(data)
        return None if answer is None else brty + b" " + hexlify(answer)

    def _answer(self, data: bytes) -> bytes | None:
        assert self.card is not None
        was_active = self.card.state is CardState.ACTIVE
        answer = self.card.frame(data)
        if was_active and not self.entered_at:
            self.entered_at = time.monotonic()
        return answer

    def control(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request["op"]
        if op == "present":
            self.card = CARDS[request["kind"]](
                uid=bytes.fromhex(request["uid"]),
                ndef=bytes.fromhex(request["ndef"]),
                answer_limit=request.get("answer_limit"),
            )
            self.entered_at = 0.0
            self._answer_pending()
        stats = self.stats()
        if op in ("remove", "reset"):
            self.card = None
        if op == "reset":
            self.pending = None
        return stats

    def _answer_pending(self) -> None:
        if self.pending is None:
            return
        when, data, addr = self.pending
        self.pending = None
        if time.monotonic() - when < PENDING_S:
            answer = self._answer(data)
            if answer is not None:
                self.sock.sendto(b"106A " + hexlify(answer), addr)

    def stats(self) -> dict[str, Any]:
        card = self.card
        return {
            "port": self.sock.getsockname()[1],
            "state": None if card is None else card.state.value,
            "commands": 0 if card is None else card.commands,
            "activations": 0 if card is None else card.activations,
            "entered_at": self.entered_at,
        }


def serve(control_in: IO[str], control_out: IO[str]) -> None:
    field = _Field()
    control_out.write(json.dumps(field.stats()) + "\n")
    control_out.flush()
    selector = selectors.DefaultSelector()
    selector.register(field.sock, selectors.EVENT_READ, "udp")
    selector.register(control_in, selectors.EVENT_READ, "control")
    while True:
        for key, _ in selector.select():
            if key.data == "udp":
                field.datagrams()
                continue
            line = control_in.readline()
            if not line:  # the test process is gone
                return
            control_out.write(json.dumps(field.control(json.loads(line))) + "\n")
            control_out.flush()


class CardField:
    """The test process's handle on a field process (see the module docstring)."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.nfc.card_field"],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._lock = threading.Lock()  # one request and its answer at a time
        self.port = int(self._read()["port"])
        self.path = f"udp:127.0.0.1:{self.port}"

    def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"card field exited with {self._process.wait()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def _call(self, **request: Any) -> dict[str, Any]:
        assert self._process.stdin is not None
        with self._lock:
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
            return self._read()

    def present(
        self, kind: str, *, uid: bytes, ndef: bytes = b"", answer_limit: int | None = None
    ) -> None:
        """Put a ``kind`` ("card": Type 2, "phone": Type 4A) in the field, now."""
        self._call(
            op="present", kind=kind, uid=uid.hex(), ndef=ndef.hex(), answer_limit=answer_limit
        )

    def remove(self) -> dict[str, Any]:
        """Take the card away; its last counters."""
        return self._call(op="remove")

    def stats(self) -> dict[str, Any]:
        return self._call(op="stats")

    def reset(self) -> None:
        self._call(op="reset")

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()


if __name__ == "__main__":
    serve(sys.stdin, sys.stdout)
