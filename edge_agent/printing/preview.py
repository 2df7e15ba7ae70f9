"""Draw an ESC/POS byte stream as the paper it would print: the preview of a coupon.

``interpret(data, paper)`` reads the exact bytes ``layout.render`` produced (the same bytes the
printer is sent) and draws them: text in Font A cells (12 x 24 dots) with alignment, emphasis,
underline, inversion and character size; a native QR symbol (``GS ( k``: the stored payload is
encoded again at the stored module size and error-correction level); a raster image
(``GS v 0``: the bitmap itself); feeds and the cut. A command it does not know raises
``PreviewError`` with its offset rather than being skipped, so a preview never silently differs
from the paper. Glyph shapes are Pillow's default font, not the printer's ROM font.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, replace
from pathlib import Path

import qrcode  # type: ignore[import-untyped]
from PIL import Image, ImageDraw, ImageFont, ImageOps

from edge_agent.printing.profiles import PaperProfile

ESC, GS, DLE, LF = 0x1B, 0x1D, 0x10, 0x0A
CELL_W, CELL_H = 12, 24  # Font A
FONT_B_W, FONT_B_H = 9, 17
LINE_GAP = 6  # default line spacing (about 1/6 inch) minus the cell height
_QR_EC = {48: "L", 49: "M", 50: "Q", 51: "H"}
_EC_CONST = {
    "L": qrcode.constants.ERROR_CORRECT_L,
    "M": qrcode.constants.ERROR_CORRECT_M,
    "Q": qrcode.constants.ERROR_CORRECT_Q,
    "H": qrcode.constants.ERROR_CORRECT_H,
}
# Commands that only set state irrelevant to the picture, with their parameter byte count.
_ESC_IGNORED = {ord("{"): 1, ord("V"): 1, ord("c"): 2, ord("p"): 3, ord("r"): 1, ord("R"): 1}
_GS_IGNORED = {ord("b"): 1, ord("|"): 1, ord("H"): 1, ord("f"): 1, ord("h"): 1, ord("w"): 1}


class PreviewError(ValueError):
    """Bytes the previewer does not understand (offset included)."""


@dataclass(frozen=True, slots=True)
class _Style:
    align: str = "left"
    bold: bool = False
    underline: bool = False
    invert: bool = False
    font_b: bool = False
    wide: int = 1
    tall: int = 1


def _encoding(paper: PaperProfile, table: int) -> str:
    from escpos.capabilities import get_profile  # noqa: PLC0415 - heavy import, only here

    name = str(get_profile(paper.name).codePages.get(str(table), "CP437"))
    for candidate in (name.lower(), name.lower().replace("_", "").replace("-", "_")):
        try:
            return codecs.lookup(candidate).name
        except LookupError:
            continue
    return "cp437"


class _Paper:
    def __init__(self, width: int) -> None:
        self.width = width
        self.rows: list[Image.Image] = []
        self.line: list[tuple[str, _Style]] = []
        self.font = ImageFont.load_default(size=36)  # drawn at 2x the 12 x 24 cell
        self._glyphs: dict[tuple[str, _Style], Image.Image] = {}

    def _glyph(self, ch: str, style: _Style) -> Image.Image:
        key = (ch, replace(style, align="left"))
        got = self._glyphs.get(key)
        if got is not None:
            return got
        w, h = (FONT_B_W, FONT_B_H) if style.font_b else (CELL_W, CELL_H)
        cell = Image.new("L", (w * 2, h * 2), 255)  # drawn at 2x, then scaled: smoother
        draw = ImageDraw.Draw(cell)
        for dx in (0, 2) if style.bold else (0,):
            draw.text((w + dx, h), ch, font=self.font, fill=0, anchor="mm")
        if style.underline:
            draw.rectangle((0, h * 2 - 3, w * 2, h * 2 - 1), fill=0)
        glyph = cell.resize((w * style.wide, h * style.tall))
        if style.invert:
            glyph = ImageOps.invert(glyph)
        self._glyphs[key] = glyph
        return glyph

    def newline(self, style: _Style) -> None:
        if not self.line:
            self.rows.append(Image.new("L", (self.width, CELL_H * style.tall + LINE_GAP), 255))
            return
        glyphs = [self._glyph(ch, st) for ch, st in self.line]
        used = sum(g.width for g in glyphs)
        row = Image.new("L", (self.width, max(g.height for g in glyphs) + LINE_GAP), 255)
        align = self.line[0][1].align
        x = {"left": 0, "center": (self.width - used) // 2, "right": self.width - used}[align]
        for g in glyphs:
            row.paste(g, (x, row.height - LINE_GAP - g.height))
            x += g.width
        self.rows.append(row)
        self.line = []

    def char(self, ch: str, style: _Style) -> None:
        w = (FONT_B_W if style.font_b else CELL_W) * style.wide
        used = sum((FONT_B_W if s.font_b else CELL_W) * s.wide for _, s in self.line)
        if used + w > self.width:
            self.newline(style)  # the printer wraps at the right margin
        self.line.append((ch, style))

    def image(self, img: Image.Image, align: str) -> None:
        if self.line:
            self.newline(_Style())
        img = img.convert("L")
        row = Image.new("L", (self.width, img.height), 255)
        x = {"left": 0, "center": (self.width - img.width) // 2, "right": self.width - img.width}
        row.paste(img, (max(0, x[align]), 0))
        self.rows.append(row)

    def feed(self, dots: int) -> None:
        if dots > 0:
            self.rows.append(Image.new("L", (self.width, dots), 255))

    def cut(self) -> None:
        row = Image.new("L", (self.width, 16), 255)
        draw = ImageDraw.Draw(row)
        for x in range(0, self.width, 12):
            draw.line((x, 8, x + 6, 8), fill=0)
        self.rows.append(row)

    def picture(self) -> Image.Image:
        height = sum(r.height for r in self.rows) + 32
        out = Image.new("L", (self.width + 32, height), 200)
        paper = Image.new("L", (self.width, height - 32), 255)
        y = 0
        for r in self.rows:
            paper.paste(r, (0, y))
            y += r.height
        out.paste(paper, (16, 16))
        return out


def _u16(data: bytes, at: int) -> int:
    return data[at] | data[at + 1] << 8


class _Interpreter:
    """Walks the stream once; each handler returns the offset after its command."""

    def __init__(self, data: bytes, paper: PaperProfile) -> None:
        self.data = data
        self.paper = paper
        self.sheet = _Paper(paper.width_px)
        self.style = _Style()
        self.encoding = _encoding(paper, 0)
        self.qr_dots, self.qr_ec, self.qr_data = 3, "L", b""

    def run(self) -> Image.Image:
        data, i = self.data, 0
        try:
            while i < len(data):
                b = data[i]
                if b == LF:
                    self.sheet.newline(self.style)
                    i += 1
                elif b == 0x0D:
                    i += 1
                elif b == DLE and data[i + 1] == 0x04:  # DLE EOT n: status query, no ink
                    i += 3
                elif b == ESC:
                    i = self._esc(i)
                elif b == GS:
                    i = self._gs(i)
                elif b < 0x20:
                    raise PreviewError(f"unknown control byte 0x{b:02x} at offset {i}")
                else:
                    self.sheet.char(bytes((b,)).decode(self.encoding, errors="replace"), self.style)
                    i += 1
        except IndexError:
            raise PreviewError(f"stream ends inside a command at offset {i}") from None
        if self.sheet.line:
            self.sheet.newline(self.style)
        return self.sheet.picture()

    def _esc(self, i: int) -> int:
        data, style = self.data, self.style
        cmd = data[i + 1]
        if cmd == ord("@"):
            self.style = _Style()
            self.encoding = _encoding(self.paper, 0)
            return i + 2
        if cmd == ord("2"):
            return i + 2  # default line spacing: the preview keeps its own
        arg = data[i + 2]
        if cmd == ord("!"):
            self.style = replace(
                style,
                font_b=bool(arg & 0x01),
                bold=bool(arg & 0x08),
                tall=2 if arg & 0x10 else 1,
                wide=2 if arg & 0x20 else 1,
                underline=bool(arg & 0x80),
            )
        elif cmd == ord("E"):
            self.style = replace(style, bold=bool(arg & 1))
        elif cmd == ord("-"):
            self.style = replace(style, underline=arg not in (0, 48))
        elif cmd == ord("a"):
            self.style = replace(style, align=("left", "center", "right")[arg % 48 % 3])
        elif cmd == ord("M"):
            self.style = replace(style, font_b=arg in (1, 49))
        elif cmd == ord("t"):
            self.encoding = _encoding(self.paper, arg)
        elif cmd == ord("d"):
            self.sheet.newline(style)
            self.sheet.feed((CELL_H + LINE_GAP) * max(0, arg - 1))
        elif cmd == ord("J"):
            self.sheet.newline(style)
            self.sheet.feed(arg)
        elif cmd == ord("3"):
            pass  # line spacing: the preview keeps its own
        elif cmd in _ESC_IGNORED:
            return i + 2 + _ESC_IGNORED[cmd]
        else:
            raise PreviewError(f"unknown command ESC 0x{cmd:02x} at offset {i}")
        return i + 3

    def _gs(self, i: int) -> int:
        data = self.data
        cmd = data[i + 1]
        if cmd == ord("!"):
            arg = data[i + 2]
            self.style = replace(self.style, wide=(arg >> 4 & 7) + 1, tall=(arg & 7) + 1)
            return i + 3
        if cmd == ord("B"):
            self.style = replace(self.style, invert=bool(data[i + 2] & 1))
            return i + 3
        if cmd == ord("V"):
            m = data[i + 2]
            if self.sheet.line:
                self.sheet.newline(self.style)
            feed = m in (65, 66, 97, 98, 103, 104)  # forms with a feed amount n
            if feed:
                self.sheet.feed(data[i + 3])
            self.sheet.cut()
            return i + (4 if feed else 3)
        if cmd == ord("v") and data[i + 2] == ord("0"):
            return self._raster(i)
        if cmd == ord("(") and data[i + 2] == ord("k"):
            return self._qr(i)
        if cmd in _GS_IGNORED:
            return i + 2 + _GS_IGNORED[cmd]
        raise PreviewError(f"unknown command GS 0x{cmd:02x} at offset {i}")

    def _raster(self, i: int) -> int:
        """GS v 0 m xL xH yL yH d1...dk: a raster bit image, 1 bit per dot, MSB first."""
        data = self.data
        mode, xb, rows = data[i + 3], _u16(data, i + 4), _u16(data, i + 6)
        start = i + 8
        raw = data[start : start + xb * rows]
        if len(raw) != xb * rows:
            raise PreviewError(f"truncated raster image at offset {i}")
        # Raster bit 1 = a black dot; Pillow's mode "1" bit 1 = white.
        img = ImageOps.invert(Image.frombytes("1", (xb * 8, rows), raw).convert("L"))
        sx, sy = (2 if mode & 1 else 1), (2 if mode & 2 else 1)
        if (sx, sy) != (1, 1):
            img = img.resize((img.width * sx, img.height * sy))
        self.sheet.image(img, self.style.align)
        return start + xb * rows

    def _qr(self, i: int) -> int:
        """GS ( k pL pH cn fn ...: cn 49 is QR; fn 67 size, 69 EC level, 80 store, 81 print."""
        data = self.data
        size = _u16(data, i + 3)
        body = data[i + 5 : i + 5 + size]
        if len(body) != size or body[0] != 49:
            raise PreviewError(f"unsupported 2D code command at offset {i}")
        fn = body[1]
        if fn == 67:
            self.qr_dots = body[2]
        elif fn == 69:
            self.qr_ec = _QR_EC.get(body[2], "L")
        elif fn == 80:
            self.qr_data = bytes(body[3:])
        elif fn == 81:
            qr = qrcode.QRCode(
                error_correction=_EC_CONST[self.qr_ec], box_size=self.qr_dots, border=1
            )
            qr.add_data(self.qr_data)
            qr.make(fit=True)
            self.sheet.image(qr.make_image().get_image(), self.style.align)
        return i + 5 + size


def interpret(data: bytes, paper: PaperProfile) -> Image.Image:
    """Draw ``data`` (an ESC/POS stream) as printed on ``paper``."""
    return _Interpreter(data, paper).run()


def write_png(data: bytes, paper: PaperProfile, out: Path) -> Path:
    """Draw ``data`` and save it as a PNG at ``out``."""
    interpret(data, paper).save(out, format="PNG")
    return out
