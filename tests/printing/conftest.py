"""The loopback TCP printer, shared with tests/printer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hardware.printer.tcp_sink import PrinterSink


@pytest.fixture
def sink() -> Iterator[PrinterSink]:
    s = PrinterSink()
    yield s
    s.close()
