"""Layout: golden-ish structure of the printed bytes, profile mapping, QR sizing, preview."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import zxingcpp
from escpos.capabilities import get_profile
from PIL import Image

from config.printer import PrinterConfig, TemplateLine
from edge_agent.printing.document import sample_document
from edge_agent.printing.layout import Layout, LayoutError
from edge_agent.printing.preview import PreviewError, interpret, write_png
from edge_agent.printing.profiles import ALIASES, KNOWN, resolve_profile
from tests.printer.escpos_decode import native_qr_payloads, qr_texts, raster_images

DOC = sample_document()
C80 = PrinterConfig(profile="TM-T88V", paper_width_mm=80)
C58 = PrinterConfig(profile="POS-5890", paper_width_mm=58)


@pytest.mark.parametrize("cfg", [C80, C58], ids=["80mm", "58mm"])
def test_coupon_structure(cfg: PrinterConfig) -> None:
    data = Layout(cfg).render(DOC)
    assert data.startswith(b"\x1b@")  # initialise first
    order = [
        data.index(b"STORESIDE MARKET"),
        data.index(DOC.offer_text.encode()),
        data.index(b"\x1d(k" if cfg.use_native_qr() else b"\x1dv0"),
        data.index(b"SS-22K7-HQ2PM"),
        data.index(b"Valid until 2025-07-14"),
        data.index(b"Combines with tier discount"),
        data.index(b"Valid 14 days"),
    ]
    assert order == sorted(order)
    assert b"REPRINT" not in data
    assert b"REPRINT" in Layout(cfg).render(DOC.as_reprint())
    assert qr_texts(data) == [DOC.qr_payload]
    # Every text line fits the paper's columns (the layout wraps words itself).
    columns = cfg.paper().columns
    plain = [ln for ln in data.split(b"\n") if ln and all(0x20 <= b < 0x7F for b in ln)]
    assert any(ln.endswith(b" store sales") or ln == b"store sales" for ln in plain)  # at a word
    assert all(len(ln) <= columns for ln in plain)


def test_native_only_where_the_profile_has_it() -> None:
    assert native_qr_payloads(Layout(C80).render(DOC)) == [DOC.qr_payload.encode()]
    assert native_qr_payloads(Layout(C58).render(DOC)) == []
    assert len(raster_images(Layout(C58).render(DOC))) == 1
    no = PrinterConfig(profile="TM-T88V", native_qr="no")
    assert native_qr_payloads(Layout(no).render(DOC)) == []


def test_oversized_qr_is_sized_down_not_an_error() -> None:
    big = PrinterConfig(profile="POS-5890", paper_width_mm=58, qr_module_dots=16)
    data = Layout(big).render(DOC)
    (img,) = raster_images(data)
    assert img.width <= 384
    assert qr_texts(data) == [DOC.qr_payload]
    native = Layout(PrinterConfig(profile="TM-T88V", qr_module_dots=16))
    placement = native.qr_placement(DOC.qr_payload)
    assert (placement.modules + 2) * placement.module_dots <= 512


def test_a_payload_that_cannot_fit_is_a_layout_error() -> None:
    with pytest.raises(LayoutError):
        Layout(C58).render(replace(DOC, qr_payload="X" * 2900))


def test_profiles_agree_with_python_escpos() -> None:
    for name, p in KNOWN.items():
        data = get_profile(name).profile_data
        assert data["media"]["width"]["pixels"] == p.width_px
        assert data["fonts"]["0"]["columns"] == p.columns
        assert data["features"]["qrCode"] == p.native_qr
        assert data["features"]["paperFullCut"] == p.cutter
    for alias, target in ALIASES.items():
        assert target in KNOWN
        with pytest.raises(KeyError):
            get_profile(alias)  # still unknown to python-escpos: the alias is needed


def test_unknown_models_map_to_a_known_profile() -> None:
    assert resolve_profile("TM-T88VI", paper_mm=80).name == "TM-T88V"
    assert resolve_profile("TM-m30", paper_mm=80).name == "TM-T20II"
    assert resolve_profile("Acme-58", paper_mm=58).name == "POS-5890"
    with pytest.raises(ValueError, match="58 mm"):
        resolve_profile("POS-5890", paper_mm=80)


def test_template_lines_come_from_config() -> None:
    cfg = PrinterConfig(
        template=(
            TemplateLine(text="{reprint}"),
            TemplateLine(text="Thanks from {header}", align="left"),
            TemplateLine(text="{qr}"),
            TemplateLine(text="Code {code} until {expiry}", size="double"),
        ),
        date_format="%d/%m/%Y",
    )
    data = Layout(cfg).render(DOC)
    assert data.count(b"Thanks from ") == len(DOC.header_lines)
    assert b"Code SS-22K7-HQ2PM\nuntil 14/07/2025\n" in data  # wrapped to 21 double columns
    assert DOC.offer_text.encode() not in data


def test_preview_draws_a_scannable_coupon(tmp_path: Path) -> None:
    for cfg in (C80, C58):
        out = write_png(Layout(cfg).render(DOC), cfg.paper(), tmp_path / "c.png")
        img = Image.open(out)
        assert img.width == cfg.paper().width_px + 32
        assert img.height > 600
        found = [r.text for r in zxingcpp.read_barcodes(img)]
        assert found == [DOC.qr_payload]


def test_preview_refuses_what_it_does_not_understand() -> None:
    with pytest.raises(PreviewError, match="offset 2"):
        interpret(b"\x1b@\x1b\x99\x00", C80.paper())
    with pytest.raises(PreviewError):
        interpret(b"\x1b@\x1dv0\x00\x10\x00\x10\x00", C80.paper())  # truncated raster
