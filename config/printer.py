"""The receipt printer section: where the printer is, its paper, the coupon template, the queue.

Template lines are printed top to bottom. A line's ``text`` may use these placeholders:
``{header}`` (one printed line per store header line), ``{offer}``, ``{code}`` (the
human-readable code), ``{expiry}`` (formatted with ``date_format``), ``{terms}``, ``{reminder}``
and ``{reprint}`` (the REPRINT mark; the line is skipped on a first print). A line whose text is
exactly ``{qr}`` is the QR code. A line whose placeholders all expand to nothing is skipped.
"""

from __future__ import annotations

import string
from typing import Annotated, Literal

from pydantic import Field, model_validator

from config.base import Section
from edge_agent.printing.profiles import PaperProfile, resolve_profile

PLACEHOLDERS = frozenset({"header", "offer", "code", "expiry", "terms", "reminder", "reprint"})
REQUIRED = ("qr", "code", "expiry", "reprint")  # a coupon without these is not a coupon


def placeholders(text: str) -> list[str]:
    """The placeholder names in ``text`` (raises ``ValueError`` on a malformed brace)."""
    return [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]


class TemplateLine(Section):
    text: Annotated[
        str,
        Field(max_length=200, description="Text with {placeholders}; exactly '{qr}' is the QR."),
    ] = ""
    align: Annotated[
        Literal["left", "center", "right"], Field(description="Horizontal alignment.")
    ] = "center"
    bold: Annotated[bool, Field(description="Emphasised (bold) text.")] = False
    size: Annotated[
        Literal["normal", "tall", "wide", "double"],
        Field(
            description="Character size: tall = double height, wide = double width, double = both."
        ),
    ] = "normal"

    @model_validator(mode="after")
    def _known_placeholders(self) -> TemplateLine:
        try:
            names = placeholders(self.text)
        except ValueError as exc:
            raise ValueError(f"template text {self.text!r}: {exc}") from None
        if "qr" in names and self.text != "{qr}":
            raise ValueError("'{qr}' must be alone on its template line")
        unknown = [n for n in names if n not in PLACEHOLDERS | {"qr"}]
        if unknown:
            raise ValueError(f"unknown placeholders {unknown}; known: {sorted(PLACEHOLDERS)}")
        return self


DEFAULT_TEMPLATE: tuple[TemplateLine, ...] = (
    TemplateLine(text="*** {reprint} ***", bold=True, size="wide"),
    TemplateLine(text="{header}", bold=True),
    TemplateLine(text=""),
    TemplateLine(text="{offer}", bold=True, size="tall"),
    TemplateLine(text="{qr}"),
    TemplateLine(text="{code}", bold=True, size="wide"),
    TemplateLine(text="Valid until {expiry}"),
    TemplateLine(text="{terms}"),
    TemplateLine(text="{reminder}"),
)


class PrinterConfig(Section):
    kind: Annotated[
        Literal["network", "usb", "serial", "file", "simulated"],
        Field(description="How the printer is reached; 'simulated' is the built-in twin."),
    ] = "simulated"
    host: Annotated[
        str, Field(min_length=1, max_length=253, description="Network printer's address.")
    ] = "127.0.0.1"
    port: Annotated[
        int, Field(ge=1, le=65_535, description="Network printer's raw TCP port (JetDirect).")
    ] = 9100
    timeout_s: Annotated[
        float,
        Field(
            gt=0,
            le=30,
            description="Connect/read/write timeout per operation; short, never python-escpos's "
            "60 s default, so a dead printer does not stall the queue.",
        ),
    ] = 3.0
    usb_vendor_id: Annotated[
        int, Field(ge=0, le=0xFFFF, description="USB vendor id (0x04b8 is Epson).")
    ] = 0x04B8
    usb_product_id: Annotated[
        int, Field(ge=0, le=0xFFFF, description="USB product id (0x0202 is a TM-T88V).")
    ] = 0x0202
    usb_in_ep: Annotated[int, Field(ge=0, le=0xFF, description="USB IN endpoint.")] = 0x82
    usb_out_ep: Annotated[int, Field(ge=0, le=0xFF, description="USB OUT endpoint.")] = 0x01
    serial_device: Annotated[
        str, Field(min_length=1, max_length=200, description="Serial device path.")
    ] = "/dev/ttyUSB0"
    serial_baudrate: Annotated[
        Literal[9600, 19200, 38400, 57600, 115200], Field(description="Serial line speed.")
    ] = 19200
    file_path: Annotated[
        str,
        Field(
            min_length=1,
            max_length=500,
            description="File or device node the 'file' kind writes (e.g. /dev/usb/lp0); "
            "rewritten per job.",
        ),
    ] = "var/receipt.prn"
    profile: Annotated[
        str,
        Field(
            min_length=1,
            max_length=64,
            description="Printer model (python-escpos profile: POS-5890, TM-T88V, TM-T20II; "
            "TM-T88VI, TM-m30... are mapped to a known one; others get the paper's default).",
        ),
    ] = "TM-T88V"
    paper_width_mm: Annotated[Literal[58, 80], Field(description="Paper roll width in mm.")] = 80
    native_qr: Annotated[
        Literal["yes", "no", "auto"],
        Field(
            description="Print the QR with the printer's own QR command (GS ( k); 'auto' uses "
            "it where the profile supports it, else sends a raster image."
        ),
    ] = "auto"
    qr_module_dots: Annotated[
        int,
        Field(
            ge=1,
            le=16,
            description="Dots per QR module; sized down automatically if the QR would not "
            "fit the paper.",
        ),
    ] = 6
    qr_error_correction: Annotated[
        Literal["L", "M", "Q", "H"], Field(description="QR error-correction level.")
    ] = "M"
    date_format: Annotated[
        str, Field(min_length=2, max_length=40, description="strftime format of {expiry}.")
    ] = "%Y-%m-%d"
    cut: Annotated[
        bool, Field(description="Feed and cut after the coupon (when the printer has a cutter).")
    ] = True
    query_status: Annotated[
        bool,
        Field(
            description="Ask the printer its status (DLE EOT) before and after each job; turn off "
            "only for a model that never answers.",
        ),
    ] = True
    header_lines: Annotated[
        tuple[Annotated[str, Field(max_length=48)], ...],
        Field(max_length=6, description="Store header printed at the top of each coupon."),
    ] = ("Storeside",)
    reminder: Annotated[
        str,
        Field(max_length=120, description="Short reminder line printed under the terms."),
    ] = "Bring this receipt on your next visit."
    template: Annotated[
        tuple[TemplateLine, ...],
        Field(min_length=1, max_length=40, description="The coupon's lines, top to bottom."),
    ] = DEFAULT_TEMPLATE
    retry_base_s: Annotated[
        float, Field(gt=0, le=600, description="First retry delay of a failed print job.")
    ] = 2.0
    retry_cap_s: Annotated[
        float,
        Field(gt=0, le=3600, description="Longest retry delay (the delay doubles per attempt)."),
    ] = 60.0
    give_up_after_s: Annotated[
        int,
        Field(
            ge=60,
            le=7 * 86_400,
            description="Stop retrying a job this long after it was queued (the customer has "
            "left; the coupon stays issued and can be reprinted on demand).",
        ),
    ] = 900
    lease_s: Annotated[
        float,
        Field(
            gt=0,
            le=600,
            description="How long a claimed job may stay unconfirmed before it is printed "
            "again (as a reprint).",
        ),
    ] = 60.0

    @model_validator(mode="after")
    def _consistent(self) -> PrinterConfig:
        self.paper()  # raises ValueError for a model whose paper contradicts paper_width_mm
        seen = [name for line in self.template for name in placeholders(line.text)]
        missing = [name for name in REQUIRED if name not in seen]
        if missing:
            raise ValueError(f"template lacks required placeholders {missing}")
        if seen.count("qr") > 1:
            raise ValueError("template prints the QR more than once")
        if self.native_qr == "yes" and not self.paper().native_qr:
            raise ValueError(f"profile {self.paper().name} has no native QR; use 'auto' or 'no'")
        if self.retry_cap_s < self.retry_base_s:
            raise ValueError("retry_cap_s must be >= retry_base_s")
        return self

    def paper(self) -> PaperProfile:
        return resolve_profile(self.profile, paper_mm=self.paper_width_mm)

    def use_native_qr(self) -> bool:
        return self.native_qr == "yes" or (self.native_qr == "auto" and self.paper().native_qr)
