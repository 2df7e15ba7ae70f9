"""The simulated receipt printer: the twin of ``escpos_printer.py`` for the demo and tests.

It keeps the printer's state as flags a test or the demo flips (offline, paper out, cover open,
unreachable, stalled, dropping the connection after N bytes, paper running out during a job),
answers status the way a printer does (the four DLE EOT bytes, decoded by the same
``decode_status`` the real driver uses) and keeps what it printed. The contract suite in
``tests/printer/`` runs the same tests against this twin and against the real driver talking to a
TCP printer on loopback, so the two cannot drift.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from edge_agent.printing.printer_port import (
    ConnectionLostError,
    DeviceNotFoundError,
    DeviceTimeoutError,
    JobReport,
    PrinterStatus,
    decode_status,
)


def status_bytes(
    *,
    online: bool = True,
    cover_open: bool = False,
    paper_out: bool = False,
    paper_near_end: bool = False,
    cutter_error: bool = False,
) -> bytes:
    """The answers to DLE EOT 1, 2, 3, 4 of a printer in this state (ESC/POS bit layout)."""
    offline = not online or cover_open or paper_out or cutter_error
    n1 = 0x12 | (0x08 if offline else 0)
    n2 = 0x12 | (0x04 if cover_open else 0) | (0x20 if paper_out else 0)
    n2 |= 0x40 if cutter_error else 0
    n3 = 0x12 | (0x08 if cutter_error else 0)
    n4 = 0x12 | (0x60 if paper_out else 0) | (0x0C if paper_near_end else 0)
    return bytes((n1, n2, n3, n4))


@dataclass(kw_only=True)
class SimulatedPrinter:
    """A ``ReceiptPrinter`` in memory. Flip the flags to make it fail like a real one."""

    name: str = "simulated"
    reachable: bool = True
    online: bool = True
    cover_open: bool = False
    paper_out: bool = False
    paper_near_end: bool = False
    cutter_error: bool = False
    stalled: bool = False  # accepts the connection, then neither reads nor answers
    drop_after: int | None = None  # the connection drops after this many coupon bytes
    paper_runs_out_during_job: bool = False
    printed: list[bytes] = field(default_factory=list)  # whole jobs, in order
    partial: list[bytes] = field(default_factory=list)  # what got out before a drop
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def description(self) -> str:
        return f"simulated printer {self.name!r}"

    def _status(self) -> PrinterStatus:
        return decode_status(
            status_bytes(
                online=self.online,
                cover_open=self.cover_open,
                paper_out=self.paper_out,
                paper_near_end=self.paper_near_end,
                cutter_error=self.cutter_error,
            )
        )

    def _reach(self) -> None:
        if not self.reachable:
            raise DeviceNotFoundError(f"{self.description}: unreachable")
        if self.stalled:
            raise DeviceTimeoutError(f"{self.description}: stopped answering")

    def status(self) -> PrinterStatus:
        with self._lock:
            self._reach()
            return self._status()

    def print_job(self, data: bytes) -> JobReport:
        with self._lock:
            self._reach()
            before = self._status()
            before.check()
            if self.drop_after is not None:
                self.partial.append(bytes(data[: self.drop_after]))
                raise ConnectionLostError(
                    f"{self.description}: connection dropped after {self.drop_after} bytes",
                    may_have_printed=True,
                )
            if self.paper_runs_out_during_job:
                self.paper_runs_out_during_job = False
                self.paper_out = True
                self.partial.append(bytes(data))
            else:
                self.printed.append(bytes(data))
            after = self._status()
            after.check(may_have_printed=True)
            return JobReport(before=before, after=after, bytes_sent=len(data))
