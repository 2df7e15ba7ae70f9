"""The port the agent prints through, the printer's status, and the typed printer failures.

A printer is a byte sink with a status: ``print_job(data)`` sends one whole rendered coupon (the
exact ESC/POS bytes of ``layout.render``) on a fresh connection, querying status with DLE EOT
before and, where the transport can be read, after it. The real driver
(``hardware/printer/escpos_printer.py``) and the simulated twin
(``hardware/printer/sim_printer.py``) both implement it and pass one contract test suite.

Status bytes (ESC/POS ``DLE EOT n``, real-time status transmission; every answer byte has bit 1
and bit 4 set, bits 0 and 7 clear):

    n=1 printer status   bit 3: offline
    n=2 offline cause    bit 2: cover open; bit 5: stopped by paper end; bit 6: error
    n=3 error cause      bit 3: autocutter error; bit 5: unrecoverable; bit 6: auto-recoverable
    n=4 paper sensor     bits 2+3: roll near end; bits 5+6: roll end (paper out)

Failures (``DeviceError``; refusals of a *code* are values elsewhere, but a broken printer raises):

    DeviceError                     the printer cannot take this job now; retry later
    ├── DeviceNotFoundError         nothing at the address / no such device (refused, unplugged)
    ├── DeviceTimeoutError          it stopped answering or reading within the timeout
    ├── ConnectionLostError         reset / broken pipe mid-job
    └── PrinterStatusError          it answered, and the answer is "cannot print"
        ├── CoverOpenError
        ├── PaperOutError
        ├── PrinterFaultError       cutter jam, unrecoverable or auto-recoverable error
        └── PrinterOfflineError     offline for another reason

``may_have_printed`` says whether any coupon byte had been sent when it failed: if so, part of the
coupon may be on paper, and the retry is printed with a REPRINT mark.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

DLE_EOT = b"\x10\x04"
STATUS_QUERY = b"".join(DLE_EOT + bytes((n,)) for n in (1, 2, 3, 4))  # the 4 queries, in order
_FIXED_MASK = 0x93  # bits 0, 1, 4, 7
_FIXED_BITS = 0x12  # bit 1 and bit 4 set, bits 0 and 7 clear


class DeviceError(Exception):
    """The printer cannot take the job now."""

    reason = "device_error"  # stable code, stored in the queue and shown to the POS

    def __init__(self, message: str, *, may_have_printed: bool = False) -> None:
        super().__init__(message)
        self.may_have_printed = may_have_printed


class DeviceNotFoundError(DeviceError):
    reason = "not_found"


class DeviceTimeoutError(DeviceError):
    reason = "timeout"


class ConnectionLostError(DeviceError):
    reason = "connection_lost"


class PrinterStatusError(DeviceError):
    reason = "status"


class CoverOpenError(PrinterStatusError):
    reason = "cover_open"


class PaperOutError(PrinterStatusError):
    reason = "paper_out"


class PrinterFaultError(PrinterStatusError):
    reason = "printer_fault"


class PrinterOfflineError(PrinterStatusError):
    reason = "offline"


@dataclass(frozen=True, slots=True, kw_only=True)
class PrinterStatus:
    online: bool = True
    cover_open: bool = False
    paper_out: bool = False
    paper_near_end: bool = False
    cutter_error: bool = False
    unrecoverable_error: bool = False
    recoverable_error: bool = False
    known: bool = True  # False: the transport cannot be read (file target, status queries off)

    @property
    def ready(self) -> bool:
        return self.problem() is None

    def problem(self) -> PrinterStatusError | None:
        """The failure this status means, most actionable first (cover, then paper)."""
        if self.cover_open:
            return CoverOpenError("printer cover is open")
        if self.paper_out:
            return PaperOutError("printer is out of paper")
        if self.cutter_error or self.unrecoverable_error or self.recoverable_error:
            what = [
                name
                for name, flag in (
                    ("autocutter error", self.cutter_error),
                    ("unrecoverable error", self.unrecoverable_error),
                    ("auto-recoverable error", self.recoverable_error),
                )
                if flag
            ]
            return PrinterFaultError("printer reports " + ", ".join(what))
        if not self.online:
            return PrinterOfflineError("printer is offline")
        return None

    def check(self, *, may_have_printed: bool = False) -> None:
        """Raise the ``PrinterStatusError`` this status means, if any."""
        problem = self.problem()
        if problem is not None:
            problem.may_have_printed = may_have_printed
            raise problem


UNKNOWN_STATUS = PrinterStatus(known=False)


class StatusFormatError(ValueError):
    """Bytes that are not a DLE EOT answer (wrong fixed bits or length)."""


def decode_status(answer: bytes) -> PrinterStatus:
    """Decode the four answer bytes of ``STATUS_QUERY`` (n = 1, 2, 3, 4, in that order)."""
    if len(answer) != 4:
        raise StatusFormatError(f"expected 4 status bytes, got {len(answer)}")
    for byte in answer:
        if byte & _FIXED_MASK != _FIXED_BITS:
            raise StatusFormatError(f"not a DLE EOT status byte: 0x{byte:02x}")
    printer, offline, error, paper = answer
    return PrinterStatus(
        online=not printer & 0x08,
        cover_open=bool(offline & 0x04),
        # Either the paper sensor (n=4) or the offline cause (n=2 bit 5) can report paper end.
        paper_out=(paper & 0x60) == 0x60 or bool(offline & 0x20),
        paper_near_end=(paper & 0x0C) == 0x0C,
        cutter_error=bool(error & 0x08),
        unrecoverable_error=bool(error & 0x20),
        recoverable_error=bool(error & 0x40),
    )


def stray_status_answers(data: bytes) -> int:
    """How many DLE EOT answers ``data`` itself will provoke.

    A printer executes real-time commands even inside raster image data (the ESC/POS manuals warn
    of it), so a bitmap that happens to contain ``10 04 0n`` makes the printer answer. Counting
    them lets the driver skip those answers and read the real after-job status.
    """
    count = 0
    start = 0
    while (found := data.find(DLE_EOT, start)) != -1:
        if found + 2 < len(data) and 1 <= data[found + 2] <= 4:
            count += 1
        start = found + 1
    return count


@dataclass(frozen=True, slots=True, kw_only=True)
class JobReport:
    """What happened to one job that printed."""

    before: PrinterStatus
    after: PrinterStatus
    bytes_sent: int

    @property
    def paper_near_end(self) -> bool:
        return self.before.paper_near_end or self.after.paper_near_end


class ReceiptPrinter(Protocol):
    """A receipt printer. Blocking: call it from the print worker's thread, never the loop."""

    @property
    def description(self) -> str:
        """Where the printer is, for logs ("network 10.0.0.7:9100")."""
        ...

    def status(self) -> PrinterStatus:
        """Query the printer now (its own short connection). Raises ``DeviceError`` if it
        cannot be reached; ``UNKNOWN_STATUS`` if the transport cannot be read."""
        ...

    def print_job(self, data: bytes) -> JobReport:
        """Status, then ``data``, then status again, on one fresh connection.

        Raises a ``PrinterStatusError`` before sending anything if the printer is not ready, and
        ``DeviceError`` (``may_have_printed`` set once any of ``data`` was sent) on failure.
        """
        ...
