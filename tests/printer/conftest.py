"""Fixtures: the loopback TCP printer, and one harness per ReceiptPrinter implementation so the
contract suite runs the same tests against the real driver and the simulated twin."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import pytest

from edge_agent.printing.printer_port import STATUS_QUERY, ReceiptPrinter
from hardware.printer.escpos_printer import EscposPrinter
from hardware.printer.sim_printer import SimulatedPrinter
from hardware.printer.tcp_sink import PrinterSink

TIMEOUT_S = 0.4  # short: failure tests wait this long at most


@pytest.fixture
def sink() -> Iterator[PrinterSink]:
    s = PrinterSink()
    yield s
    s.close()


class Harness(Protocol):
    printer: ReceiptPrinter

    def set(self, **flags: bool) -> None: ...
    def unreachable(self) -> None: ...
    def reachable(self) -> None: ...
    def stall(self) -> None: ...
    def drop_after(self, n: int | None) -> None: ...
    def paper_runs_out_during_job(self) -> None: ...
    def printed(self) -> list[bytes]: ...


class EscposHarness:
    def __init__(self, sink: PrinterSink, profile: str = "TM-T88V") -> None:
        self.sink = sink
        self.printer = EscposPrinter(
            kind="network", profile=profile, port=sink.port, timeout_s=TIMEOUT_S
        )

    def set(self, **flags: bool) -> None:
        for name, value in flags.items():
            setattr(self.sink.state, name, value)

    def unreachable(self) -> None:
        self.sink.down()

    def reachable(self) -> None:
        self.sink.up()

    def stall(self) -> None:
        self.sink.state.stop_reading = True

    def drop_after(self, n: int | None) -> None:
        self.sink.state.drop_after = None if n is None else len(STATUS_QUERY) + n

    def paper_runs_out_during_job(self) -> None:
        self.sink.state.paper_out_from_set = 1  # the after-job query set of each connection

    def printed(self) -> list[bytes]:
        """Coupon bytes of each complete job: the stream between the two status query sets."""
        self.sink.settle()
        with self.sink.lock:
            streams = list(self.sink.state.connections)
        q = STATUS_QUERY
        return [
            s[len(q) : -len(q)]
            for s in streams
            if len(s) > 2 * len(q) and s.startswith(q) and s.endswith(q)
        ]


class TwinHarness:
    def __init__(self) -> None:
        self.twin = SimulatedPrinter()
        self.printer = self.twin

    def set(self, **flags: bool) -> None:
        for name, value in flags.items():
            setattr(self.twin, name, value)

    def unreachable(self) -> None:
        self.twin.reachable = False

    def reachable(self) -> None:
        self.twin.reachable = True

    def stall(self) -> None:
        self.twin.stalled = True

    def drop_after(self, n: int | None) -> None:
        self.twin.drop_after = n

    def paper_runs_out_during_job(self) -> None:
        self.twin.paper_runs_out_during_job = True

    def printed(self) -> list[bytes]:
        return list(self.twin.printed)


@pytest.fixture(params=["escpos-network", "simulated"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    if request.param == "simulated":
        yield TwinHarness()
        return
    s = PrinterSink()
    try:
        yield EscposHarness(s)
    finally:
        s.close()
