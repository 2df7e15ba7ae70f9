"""Turn printed ESC/POS bytes back into QR images and decode them with zxing-cpp.

Written independently of ``edge_agent/printing/preview.py``: the tests must not trust the code
under test to read its own output.
"""

from __future__ import annotations

import qrcode
import zxingcpp
from PIL import Image, ImageOps

GS = b"\x1d"


def native_qr_payloads(data: bytes) -> list[bytes]:
    """Payloads stored with GS ( k pL pH 49 80 48 <data> (QR: store the data in the symbol)."""
    out: list[bytes] = []
    start = 0
    while (at := data.find(GS + b"(k", start)) != -1:
        size = data[at + 3] | data[at + 4] << 8
        body = data[at + 5 : at + 5 + size]
        if body[:3] == b"1P0":
            out.append(bytes(body[3:]))
        start = at + 5 + size
    return out


def raster_images(data: bytes) -> list[Image.Image]:
    """Images sent with GS v 0 m xL xH yL yH <raster>, as Pillow images (black on white)."""
    out: list[Image.Image] = []
    start = 0
    while (at := data.find(GS + b"v0", start)) != -1:
        xb = data[at + 4] | data[at + 5] << 8
        rows = data[at + 6] | data[at + 7] << 8
        raw = data[at + 8 : at + 8 + xb * rows]
        assert len(raw) == xb * rows, "truncated raster"
        # Raster: 1 = black dot. Pillow mode "1": 1 = white. Hence the inversion.
        img = ImageOps.invert(Image.frombytes("1", (xb * 8, rows), raw).convert("L"))
        out.append(img)
        start = at + 8 + xb * rows
    return out


def decode(img: Image.Image) -> list[str]:
    """Every QR code zxing-cpp finds in ``img``, as text."""
    framed = ImageOps.expand(img.convert("L"), border=16, fill=255)
    return [
        r.text for r in zxingcpp.read_barcodes(framed) if r.format == zxingcpp.BarcodeFormat.QRCode
    ]


def qr_texts(data: bytes) -> list[str]:
    """Decode every QR in a printed stream: raster images directly, native symbols by drawing
    the stored payload as the printer would (any QR encoder gives a symbol that decodes)."""
    texts: list[str] = []
    for img in raster_images(data):
        texts.extend(decode(img))
    for payload in native_qr_payloads(data):
        qr = qrcode.QRCode(box_size=4, border=4)
        qr.add_data(payload)
        qr.make(fit=True)
        texts.extend(decode(qr.make_image().get_image()))
    return texts
