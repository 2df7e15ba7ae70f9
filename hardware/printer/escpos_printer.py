"""The real receipt printer: python-escpos over raw TCP (port 9100), USB, serial or a file.

Each call opens a fresh python-escpos object and closes it afterwards. python-escpos objects are
not safe to reuse after a failed open (a later write hits a bare ``AssertionError``), and a new
connection per coupon costs well under a millisecond on a LAN.

A job is: DLE EOT 1-4 (status before) -> the coupon bytes -> DLE EOT 1-4 (status after), on one
connection. The after-job answers arrive only once the printer has read the whole coupon, so
they also confirm delivery. Printers execute real-time commands even inside image data, so a
bitmap that happens to contain ``10 04 0n`` provokes answers of its own: they are counted
(``stray_status_answers``) and skipped. USB and serial are read the same way; a file cannot be
read, so its status is ``UNKNOWN_STATUS``.

Foreign exceptions are mapped here, at the boundary, to ``edge_agent.printing.printer_port``'s
``DeviceError`` tree:

    escpos DeviceNotFoundError (refused, no route, connect timeout, no USB device, bad path)
                                          -> DeviceNotFoundError
    RuntimeError from escpos's Usb (pyusb not installed), pyusb's NoBackendError (no libusb)
                                          -> DeviceNotFoundError
    ConnectionResetError, BrokenPipeError, ConnectionAbortedError, peer closed while reading
                                          -> ConnectionLostError
    TimeoutError (stopped reading, or no status answer)
                                          -> DeviceTimeoutError
    any other OSError (pyserial's and pyusb's errors are OSErrors too)
                                          -> ConnectionLostError
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Literal

from escpos import printer as escpos_printer
from escpos.exceptions import DeviceNotFoundError as EscposDeviceNotFoundError

from config.printer import PrinterConfig
from edge_agent.printing.printer_port import (
    STATUS_QUERY,
    UNKNOWN_STATUS,
    ConnectionLostError,
    DeviceError,
    DeviceNotFoundError,
    DeviceTimeoutError,
    JobReport,
    PrinterStatus,
    decode_status,
    stray_status_answers,
)

Kind = Literal["network", "usb", "serial", "file"]


@dataclass(slots=True)
class _Progress:
    sent: bool = False  # any coupon byte handed to the transport: part may be on paper
    opened: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class EscposPrinter:
    """A ``ReceiptPrinter`` driving python-escpos. Blocking; use it from one worker thread."""

    kind: Kind
    profile: str  # python-escpos profile name (already resolved; see profiles.py)
    host: str = "127.0.0.1"
    port: int = 9100
    timeout_s: float = 3.0
    usb_vendor_id: int = 0x04B8
    usb_product_id: int = 0x0202
    usb_in_ep: int = 0x82
    usb_out_ep: int = 0x01
    serial_device: str = "/dev/ttyUSB0"
    serial_baudrate: int = 19200
    file_path: str = "var/receipt.prn"
    query_status: bool = True

    @classmethod
    def from_config(cls, cfg: PrinterConfig) -> EscposPrinter:
        if cfg.kind == "simulated":
            raise ValueError("printer.kind 'simulated' is the twin, not this driver")
        return cls(
            kind=cfg.kind,
            profile=cfg.paper().name,
            host=cfg.host,
            port=cfg.port,
            timeout_s=cfg.timeout_s,
            usb_vendor_id=cfg.usb_vendor_id,
            usb_product_id=cfg.usb_product_id,
            usb_in_ep=cfg.usb_in_ep,
            usb_out_ep=cfg.usb_out_ep,
            serial_device=cfg.serial_device,
            serial_baudrate=cfg.serial_baudrate,
            file_path=cfg.file_path,
            query_status=cfg.query_status,
        )

    @property
    def description(self) -> str:
        where = {
            "network": f"{self.host}:{self.port}",
            "usb": f"{self.usb_vendor_id:04x}:{self.usb_product_id:04x}",
            "serial": f"{self.serial_device}@{self.serial_baudrate}",
            "file": self.file_path,
        }[self.kind]
        return f"{self.kind} {where} ({self.profile})"

    @property
    def readable(self) -> bool:
        return self.query_status and self.kind != "file"

    # -- the port ----------------------------------------------------------------------------

    def status(self) -> PrinterStatus:
        if not self.readable:
            return UNKNOWN_STATUS
        progress = _Progress()
        with self._boundary(progress):
            device = self._open(progress)
            try:
                return self._query(device, strays=0)
            finally:
                self._close(device)

    def print_job(self, data: bytes) -> JobReport:
        progress = _Progress()
        with self._boundary(progress):
            device = self._open(progress)
            try:
                before = self._query(device, strays=0) if self.readable else UNKNOWN_STATUS
                before.check()
                progress.sent = True  # from here on, any failure may leave part on paper
                device._raw(data)
                after = UNKNOWN_STATUS
                if self.readable:
                    after = self._query(device, strays=stray_status_answers(data))
                    after.check(may_have_printed=True)
                return JobReport(before=before, after=after, bytes_sent=len(data))
            finally:
                self._close(device)

    # -- python-escpos -----------------------------------------------------------------------

    def _new_device(self) -> Any:
        if self.kind == "network":
            # Never python-escpos's default 60 s: a dead printer must not stall the queue.
            return escpos_printer.Network(
                self.host, self.port, timeout=self.timeout_s, profile=self.profile
            )
        if self.kind == "usb":
            if not escpos_printer.Usb.is_usable():
                # Checked first: an escpos Usb object made without pyusb raises even when
                # garbage-collected (its close() needs pyusb).
                raise DeviceNotFoundError("USB printing needs pyusb, which is not installed")
            return escpos_printer.Usb(
                self.usb_vendor_id,
                self.usb_product_id,
                timeout=int(self.timeout_s * 1000),  # pyusb: milliseconds
                in_ep=self.usb_in_ep,
                out_ep=self.usb_out_ep,
                profile=self.profile,
            )
        if self.kind == "serial":
            return escpos_printer.Serial(
                self.serial_device,
                baudrate=self.serial_baudrate,
                timeout=self.timeout_s,
                profile=self.profile,
            )
        return escpos_printer.File(self.file_path, profile=self.profile)

    def _open(self, progress: _Progress) -> Any:
        device = self._new_device()
        device.open()
        progress.opened = True
        if self.kind == "serial":
            device.device.write_timeout = self.timeout_s  # pyserial writes block forever else
        if self.kind == "network":
            # The 12-byte status query after the coupon would otherwise wait for the ACK of the
            # coupon's last segment (Nagle + delayed ACK: ~40 ms a job).
            device.device.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return device

    @staticmethod
    def _close(device: Any) -> None:
        with suppress(OSError, EscposDeviceNotFoundError, RuntimeError, AssertionError):
            device.close()

    def _query(self, device: Any, *, strays: int) -> PrinterStatus:
        """Send DLE EOT 1..4 and read the answers (after ``strays`` answers to skip)."""
        device._raw(STATUS_QUERY)
        answer = self._read_exact(device, strays + 4)
        return decode_status(answer[strays:])

    def _read_exact(self, device: Any, count: int) -> bytes:
        buf = b""
        while len(buf) < count:
            if self.kind == "serial":
                chunk = bytes(device.device.read(count - len(buf)))  # returns early only on timeout
            else:
                chunk = bytes(device._read())
            if not chunk:
                if self.kind == "network":
                    raise ConnectionLostError("printer closed the connection while answering")
                raise DeviceTimeoutError(f"no status answer within {self.timeout_s} s")
            buf += chunk
        return buf

    @contextmanager
    def _boundary(self, progress: _Progress) -> Iterator[None]:
        where = self.description
        try:
            yield
        except DeviceError:
            raise
        except EscposDeviceNotFoundError as exc:
            raise DeviceNotFoundError(f"{where}: {exc}".replace("\n", " ")) from exc
        except RuntimeError as exc:  # escpos's Usb when pyusb is missing
            raise DeviceNotFoundError(f"{where}: {exc}") from exc
        except ValueError as exc:
            # pyusb's NoBackendError (no libusb on the box) is a ValueError; others are bugs.
            if type(exc).__name__ != "NoBackendError":
                raise
            raise DeviceNotFoundError(f"{where}: no USB backend (install libusb-1.0)") from exc
        except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError) as exc:
            raise ConnectionLostError(
                f"{where}: connection lost ({exc})", may_have_printed=progress.sent
            ) from exc
        except TimeoutError as exc:
            raise DeviceTimeoutError(
                f"{where}: no progress within {self.timeout_s} s", may_have_printed=progress.sent
            ) from exc
        except OSError as exc:
            error = ConnectionLostError if progress.opened else DeviceNotFoundError
            raise error(f"{where}: {exc}", may_have_printed=progress.sent) from exc
