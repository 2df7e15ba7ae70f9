"""One contract, two implementations: the python-escpos driver (over a real TCP socket to the
loopback printer) and the simulated twin must behave the same, so the twin cannot drift."""

from __future__ import annotations

import time

import pytest

from config.printer import PrinterConfig
from edge_agent.printing.document import sample_document
from edge_agent.printing.layout import Layout
from edge_agent.printing.printer_port import (
    ConnectionLostError,
    CoverOpenError,
    DeviceNotFoundError,
    DeviceTimeoutError,
    PaperOutError,
    PrinterOfflineError,
)
from tests.printer.conftest import TIMEOUT_S, Harness

COUPON = Layout(PrinterConfig(profile="TM-T88V", paper_width_mm=80)).render(sample_document())


def test_prints_the_exact_bytes_with_status_before_and_after(harness: Harness) -> None:
    report = harness.printer.print_job(COUPON)
    assert harness.printed() == [COUPON]
    assert report.bytes_sent == len(COUPON)
    assert report.before.ready and report.before.known
    assert report.after.ready and report.after.known


def test_status_reports_paper_near_end_without_refusing(harness: Harness) -> None:
    harness.set(paper_near_end=True)
    status = harness.printer.status()
    assert status.paper_near_end and status.ready
    report = harness.printer.print_job(COUPON)
    assert report.paper_near_end
    assert harness.printed() == [COUPON]


@pytest.mark.parametrize(
    ("flag", "error"),
    [("paper_out", PaperOutError), ("cover_open", CoverOpenError)],
)
def test_not_ready_refuses_before_sending_anything(
    harness: Harness, flag: str, error: type[Exception]
) -> None:
    harness.set(**{flag: True})
    assert not harness.printer.status().ready
    with pytest.raises(error) as caught:
        harness.printer.print_job(COUPON)
    assert caught.value.may_have_printed is False  # type: ignore[attr-defined]
    assert harness.printed() == []


def test_offline_is_its_own_error(harness: Harness) -> None:
    harness.set(online=False)
    with pytest.raises(PrinterOfflineError):
        harness.printer.print_job(COUPON)


def test_refill_paper_then_prints(harness: Harness) -> None:
    harness.set(paper_out=True)
    with pytest.raises(PaperOutError):
        harness.printer.print_job(COUPON)
    harness.set(paper_out=False)
    harness.printer.print_job(COUPON)
    assert harness.printed() == [COUPON]


def test_nothing_listening_is_device_not_found_quickly(harness: Harness) -> None:
    harness.unreachable()
    started = time.monotonic()
    with pytest.raises(DeviceNotFoundError) as caught:
        harness.printer.print_job(COUPON)
    assert caught.value.may_have_printed is False
    with pytest.raises(DeviceNotFoundError):
        harness.printer.status()
    assert time.monotonic() - started < 2 * TIMEOUT_S
    harness.reachable()
    harness.printer.print_job(COUPON)  # a fresh connection: never a reused failed object
    assert harness.printed() == [COUPON]


def test_printer_that_stops_answering_times_out(harness: Harness) -> None:
    harness.stall()
    started = time.monotonic()
    with pytest.raises(DeviceTimeoutError):
        harness.printer.print_job(COUPON)
    assert time.monotonic() - started < 3 * TIMEOUT_S + 0.5


def test_drop_mid_job_is_connection_lost_and_may_have_printed(harness: Harness) -> None:
    harness.drop_after(len(COUPON) // 2)
    with pytest.raises(ConnectionLostError) as caught:
        harness.printer.print_job(COUPON)
    assert caught.value.may_have_printed is True
    assert harness.printed() == []
    harness.drop_after(None)
    harness.printer.print_job(COUPON)
    assert harness.printed() == [COUPON]


def test_paper_running_out_during_the_job_may_have_printed(harness: Harness) -> None:
    harness.paper_runs_out_during_job()
    with pytest.raises(PaperOutError) as caught:
        harness.printer.print_job(COUPON)
    assert caught.value.may_have_printed is True
    assert harness.printer.status().paper_out


def test_status_answers_provoked_by_the_data_itself_are_skipped(harness: Harness) -> None:
    # Raster data can contain DLE EOT n by chance; the printer answers those too.
    data = b"\x1b@" + b"\x10\x04\x01\x10\x04\x04" * 3 + b"ok\n"
    report = harness.printer.print_job(data)
    assert report.after.ready
    assert harness.printed() == [data]
