"""Printer profiles: what the layout must know about a model's paper, and unknown models mapped.

Pure data, no escpos import (config validation uses it and must stay cheap to import). The figures
are python-escpos 3.1's capabilities database (``escpos/capabilities.json``); a test checks they
still agree with it. Models missing from that database (e.g. ``TM-T88VI``, ``TM-m30``) raise
``KeyError`` inside python-escpos, so each is mapped here to the known profile with the same
print width and features.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class PaperProfile:
    name: str  # the python-escpos profile name the bytes are rendered for
    paper_mm: int  # nominal roll width: 58 or 80
    width_px: int  # printable dots per line
    columns: int  # Font A characters per line
    native_qr: bool  # understands GS ( k (QR symbol) itself
    cutter: bool  # has an autocutter (POS-5890 has none: python-escpos then emits no cut)


KNOWN: dict[str, PaperProfile] = {
    p.name: p
    for p in (
        PaperProfile(
            name="POS-5890", paper_mm=58, width_px=384, columns=32, native_qr=False, cutter=False
        ),
        PaperProfile(
            name="TM-T88V", paper_mm=80, width_px=512, columns=42, native_qr=True, cutter=True
        ),
        PaperProfile(
            name="TM-T20II", paper_mm=80, width_px=576, columns=48, native_qr=True, cutter=True
        ),
    )
}

# Real models absent from python-escpos's database -> the known profile printing the same way.
# TM-T88VI/VII print 512 dots like the TM-T88V; the TM-m30 family and TM-T82 print 576 like the
# TM-T20II; generic 58 mm printers behave like the POS-5890.
ALIASES: dict[str, str] = {
    "TM-T88VI": "TM-T88V",
    "TM-T88VII": "TM-T88V",
    "TM-m30": "TM-T20II",
    "TM-m30II": "TM-T20II",
    "TM-m30III": "TM-T20II",
    "TM-T82": "TM-T20II",
    "TM-T20III": "TM-T20II",
    "POS-58": "POS-5890",
}

DEFAULT_FOR_WIDTH = {58: "POS-5890", 80: "TM-T88V"}


def resolve_profile(model: str, *, paper_mm: int) -> PaperProfile:
    """The profile to render for ``model`` on ``paper_mm`` paper.

    A known model or alias wins; anything else gets the default profile of its paper width, so an
    unknown model still prints (conservatively) instead of failing deep inside python-escpos.
    Raises ``ValueError`` if a known model's paper contradicts ``paper_mm`` (a config mistake).
    """
    name = ALIASES.get(model, model)
    profile = KNOWN.get(name)
    if profile is None:
        if paper_mm not in DEFAULT_FOR_WIDTH:
            raise ValueError(f"paper width must be 58 or 80 mm, not {paper_mm}")
        return KNOWN[DEFAULT_FOR_WIDTH[paper_mm]]
    if profile.paper_mm != paper_mm:
        raise ValueError(
            f"printer model {model!r} uses {profile.paper_mm} mm paper, not {paper_mm} mm"
        )
    return profile
