"""The coupon template turned into ESC/POS commands on a python-escpos printer object.

``Layout.render(doc)`` drives a python-escpos ``Dummy`` (the library's own byte collector) with
the profile of the configured printer and returns the exact bytes a printer will receive; the
print worker sends those bytes unchanged, and ``preview.py`` draws them. Rendering once and
sending bytes keeps the preview honest: what you see is what the printer got.

The QR is a native ``GS ( k`` symbol where the profile supports it (the printer draws it: few
bytes, crisp), else a ``GS v 0`` raster image. Its module size comes from config and is reduced
until it fits the paper: python-escpos raises ``ImageWidthError`` for an image wider than the
profile, and nothing checks a native symbol's width, so we measure that one ourselves.
"""

from __future__ import annotations

import functools
import textwrap
from dataclasses import dataclass
from typing import Any

import qrcode  # type: ignore[import-untyped]
from escpos.exceptions import ImageWidthError
from escpos.printer import Dummy
from qrcode.exceptions import DataOverflowError  # type: ignore[import-untyped]
from qrcode.util import MODE_8BIT_BYTE, QRData  # type: ignore[import-untyped]

from config.printer import PrinterConfig, TemplateLine, placeholders
from edge_agent.printing.document import CouponDocument
from edge_agent.printing.profiles import PaperProfile

_ESCPOS_EC = {"L": 0, "M": 1, "Q": 2, "H": 3}  # python-escpos QR_ECLEVEL_* values
_QRCODE_EC = {
    "L": qrcode.constants.ERROR_CORRECT_L,
    "M": qrcode.constants.ERROR_CORRECT_M,
    "Q": qrcode.constants.ERROR_CORRECT_Q,
    "H": qrcode.constants.ERROR_CORRECT_H,
}
_SIZE_FLAGS = {
    "normal": {"normal_textsize": True},
    "tall": {"double_height": True},
    "wide": {"double_width": True},
    "double": {"double_width": True, "double_height": True},
}
REPRINT_MARK = "REPRINT"


class LayoutError(ValueError):
    """The coupon cannot be laid out on this paper (e.g. a QR payload too long to fit at all)."""


@dataclass(frozen=True, slots=True)
class QrPlacement:
    native: bool
    module_dots: int
    modules: int  # symbol width in modules, without quiet zone


def qr_modules(payload: str, ec: str) -> int:
    """Width in modules of the widest symbol an encoder could choose for ``payload``.

    Measured in byte mode: a printer's encoder may not switch to the denser alphanumeric mode.
    In byte mode the version depends only on the length, so the answer is cached by length
    (choosing a version is cheap; laying out a whole symbol would cost milliseconds).
    """
    return _modules_for_length(len(payload.encode("utf-8")), ec)


@functools.lru_cache(maxsize=256)
def _modules_for_length(length: int, ec: str) -> int:
    qr = qrcode.QRCode(error_correction=_QRCODE_EC[ec], box_size=1, border=0)
    qr.add_data(QRData(b"\0" * length, mode=MODE_8BIT_BYTE))
    try:
        version = int(qr.best_fit())
    except (ValueError, DataOverflowError):
        raise LayoutError(f"a {length}-byte payload exceeds the largest QR symbol") from None
    return version * 4 + 17  # ISO/IEC 18004: version v is 4v + 17 modules wide


class Layout:
    """Renders ``CouponDocument``s for one printer config. Immutable; safe to share."""

    def __init__(self, cfg: PrinterConfig) -> None:
        self.cfg = cfg
        self.paper: PaperProfile = cfg.paper()
        self.native_qr = cfg.use_native_qr()

    def _printer(self) -> Any:
        return Dummy(profile=self.paper.name)

    def render(self, doc: CouponDocument) -> bytes:
        """The exact ESC/POS bytes of ``doc``. Raises ``LayoutError`` if it cannot fit."""
        p = self._printer()
        p.hw("INIT")  # ESC @: a known state whatever the previous job left behind
        for line in self.cfg.template:
            if line.text == "{qr}":
                self._qr(p, doc.qr_payload)
            else:
                self._text(p, line, doc)
        p.set_with_default()
        if self.cfg.cut and self.paper.cutter:
            p.cut()  # feeds past the cutter, then GS V
        else:
            p.print_and_feed(4)  # no cutter: feed the coupon out to the tear bar
        return bytes(p.output)

    def _values(self, doc: CouponDocument) -> dict[str, str]:
        return {
            "offer": doc.offer_text,
            "code": doc.display_code,
            "expiry": doc.expires_on.strftime(self.cfg.date_format),
            "terms": doc.terms,
            "reminder": doc.reminder,
            "reprint": REPRINT_MARK if doc.reprint else "",
        }

    def _text(self, p: Any, line: TemplateLine, doc: CouponDocument) -> None:
        names = placeholders(line.text)
        values = self._values(doc)
        if "header" in names:
            texts = [line.text.format(header=h, **values) for h in doc.header_lines]
        elif names and not any(values[n] for n in names):
            return  # e.g. the REPRINT line of a first print, an empty reminder
        else:
            texts = [line.text.format(**values)]
        wide = line.size in ("wide", "double")
        columns = self.paper.columns // (2 if wide else 1)
        p.set(align=line.align, bold=line.bold, **_SIZE_FLAGS[line.size])
        for text in texts:
            # Wrap at words ourselves: the printer would break mid-word at the column limit.
            for part in textwrap.wrap(text, columns) or [""]:
                p.textln(part)

    def qr_placement(self, payload: str) -> QrPlacement:
        ec = self.cfg.qr_error_correction
        modules = qr_modules(payload, ec)
        # One module of quiet zone each side must fit too (python-escpos draws border=1).
        fit = self.paper.width_px // (modules + 2)
        if fit < 1:
            raise LayoutError(f"QR of {modules} modules is wider than {self.paper.width_px} dots")
        dots = min(self.cfg.qr_module_dots, fit)
        return QrPlacement(native=self.native_qr, module_dots=dots, modules=modules)

    def _qr(self, p: Any, payload: str) -> None:
        placement = self.qr_placement(payload)
        ec = _ESCPOS_EC[self.cfg.qr_error_correction]
        if placement.native:
            p.set(align="center")
            p.qr(payload, ec=ec, size=placement.module_dots, native=True)
            p.ln()
            return
        # Raster: python-escpos is the authority on what fits its profile. Render into a scratch
        # printer so a too-wide attempt leaves no half-written bytes behind, and step down.
        for dots in range(placement.module_dots, 0, -1):
            scratch = self._printer()
            try:
                scratch.qr(payload, ec=ec, size=dots, native=False, center=True)
            except ImageWidthError:
                continue
            p._raw(scratch.output)
            return
        raise LayoutError(f"QR for a {len(payload)}-character payload does not fit the paper")
