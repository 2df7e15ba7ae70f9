"""The real driver's bytes, as a loopback TCP printer receives them, scan back to the payload."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.printer import PrinterConfig
from edge_agent.printing.document import sample_document
from edge_agent.printing.layout import Layout
from edge_agent.printing.printer_port import UNKNOWN_STATUS, DeviceNotFoundError
from hardware.printer.escpos_printer import EscposPrinter
from hardware.printer.tcp_sink import PrinterSink
from tests.printer.conftest import EscposHarness
from tests.printer.escpos_decode import native_qr_payloads, qr_texts, raster_images

DOC = sample_document()


def _print(sink: PrinterSink, cfg: PrinterConfig) -> bytes:
    harness = EscposHarness(sink, profile=cfg.paper().name)
    harness.printer.print_job(Layout(cfg).render(DOC))
    (printed,) = harness.printed()
    return printed


def test_58mm_raster_qr_scans_back_to_the_payload(sink: PrinterSink) -> None:
    printed = _print(sink, PrinterConfig(profile="POS-5890", paper_width_mm=58))
    assert native_qr_payloads(printed) == []
    (img,) = raster_images(printed)
    assert img.width <= 384
    assert qr_texts(printed) == [DOC.qr_payload]
    assert b"\x1dV" not in printed  # the POS-5890 has no cutter


def test_80mm_native_qr_carries_the_payload(sink: PrinterSink) -> None:
    printed = _print(sink, PrinterConfig(profile="TM-T88V", paper_width_mm=80))
    assert raster_images(printed) == []
    assert native_qr_payloads(printed) == [DOC.qr_payload.encode()]
    assert qr_texts(printed) == [DOC.qr_payload]
    assert printed.endswith(b"\x1dV\x00")  # full cut


def test_unknown_model_on_80mm_prints_raster_when_native_is_off(sink: PrinterSink) -> None:
    cfg = PrinterConfig(profile="TM-m30", paper_width_mm=80, native_qr="no", qr_module_dots=16)
    printed = _print(sink, cfg)
    (img,) = raster_images(printed)
    assert img.width <= 576  # the oversized module request was sized down to fit
    assert qr_texts(printed) == [DOC.qr_payload]


def test_from_config_uses_short_timeout_and_resolved_profile() -> None:
    cfg = PrinterConfig(kind="network", profile="TM-T88VI", host="127.0.0.1", port=9)
    printer = EscposPrinter.from_config(cfg)
    assert printer.profile == "TM-T88V"
    assert printer.timeout_s == 3.0
    with pytest.raises(ValueError, match="twin"):
        EscposPrinter.from_config(PrinterConfig(kind="simulated"))


def test_file_target_writes_the_bytes_and_has_no_status(tmp_path: Path) -> None:
    out = tmp_path / "receipt.prn"
    printer = EscposPrinter(kind="file", profile="TM-T88V", file_path=str(out))
    data = Layout(PrinterConfig()).render(DOC)
    report = printer.print_job(data)
    assert out.read_bytes() == data
    assert report.before == UNKNOWN_STATUS and report.after == UNKNOWN_STATUS
    missing = EscposPrinter(kind="file", profile="TM-T88V", file_path=str(tmp_path / "no/x"))
    with pytest.raises(DeviceNotFoundError):
        missing.print_job(data)


def test_missing_serial_device_is_not_found(tmp_path: Path) -> None:
    printer = EscposPrinter(
        kind="serial", profile="TM-T88V", serial_device=str(tmp_path / "ttyUSB9"), timeout_s=0.2
    )
    with pytest.raises(DeviceNotFoundError):
        printer.print_job(b"\x1b@")


def test_usb_without_a_device_is_not_found() -> None:
    # Whatever this box has (no pyusb, no libusb, or no printer plugged in): DeviceNotFoundError.
    printer = EscposPrinter(kind="usb", profile="TM-T88V", timeout_s=0.2)
    with pytest.raises(DeviceNotFoundError):
        printer.print_job(b"\x1b@")
