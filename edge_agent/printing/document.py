"""The receipt coupon as a document: everything printed, nothing about how it is printed.

The issuing path builds one per coupon and the print queue stores it as JSON, so a job printed
after a restart (or reprinted days later) shows exactly what was issued. ``to_json`` and
``from_json`` round-trip exactly; unknown or missing fields are refused, since a queue row that
does not parse must fail loudly rather than print a half coupon.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from datetime import date
from typing import Any

FORMAT = 1  # bump when a field changes meaning; queued rows carry the version they were made with


class DocumentError(ValueError):
    """A stored document that cannot be read back."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CouponDocument:
    header_lines: tuple[str, ...]  # store name, address...: printed at the top
    offer_text: str  # e.g. "15% off your next visit"
    qr_payload: str  # the signed token the QR carries (the signing path produces it)
    display_code: str  # human-readable code for typing at a till, e.g. "SS-22K7-HQ2PM"
    expires_on: date  # last day the coupon is valid (store-local date)
    terms: str  # stacking terms, e.g. "Combines with tier discount, not with store sales"
    reminder: str = ""  # short nudge, e.g. "Valid 14 days - see you soon!"
    reprint: bool = False  # printed as a visible REPRINT mark

    def __post_init__(self) -> None:
        if not self.qr_payload:
            raise DocumentError("qr_payload must not be empty")
        if not self.display_code:
            raise DocumentError("display_code must not be empty")

    def as_reprint(self) -> CouponDocument:
        return replace(self, reprint=True)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "header_lines": list(self.header_lines),
            "offer_text": self.offer_text,
            "qr_payload": self.qr_payload,
            "display_code": self.display_code,
            "expires_on": self.expires_on.isoformat(),
            "terms": self.terms,
            "reminder": self.reminder,
            "reprint": self.reprint,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CouponDocument:
        body = dict(data)
        if body.pop("format", None) != FORMAT:
            raise DocumentError(f"unsupported document format (want {FORMAT})")
        names = {f.name for f in fields(cls)}
        if set(body) - names:
            raise DocumentError(f"unknown document fields: {sorted(set(body) - names)}")
        try:
            header = body["header_lines"]
            if not isinstance(header, list) or not all(isinstance(h, str) for h in header):
                raise DocumentError("header_lines must be a list of strings")
            text = {k: body.get(k, "") for k in ("offer_text", "terms", "reminder")}
            for key in ("qr_payload", "display_code", *text):
                value = body.get(key, "")
                if not isinstance(value, str):
                    raise DocumentError(f"{key} must be a string")
            if not isinstance(body.get("reprint", False), bool):
                raise DocumentError("reprint must be true or false")
            return cls(
                header_lines=tuple(header),
                offer_text=str(body["offer_text"]),
                qr_payload=str(body["qr_payload"]),
                display_code=str(body["display_code"]),
                expires_on=date.fromisoformat(str(body["expires_on"])),
                terms=str(body["terms"]),
                reminder=str(body.get("reminder", "")),
                reprint=bool(body.get("reprint", False)),
            )
        except KeyError as exc:
            raise DocumentError(f"missing document field {exc.args[0]!r}") from None
        except ValueError as exc:
            if isinstance(exc, DocumentError):
                raise
            raise DocumentError(str(exc)) from None

    @classmethod
    def from_json(cls, text: str) -> CouponDocument:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DocumentError(f"document is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise DocumentError("document must be a JSON object")
        return cls.from_dict(data)


def sample_document(*, reprint: bool = False) -> CouponDocument:
    """A representative coupon for previews and benchmarks (a made-up token, not a signed one)."""
    return CouponDocument(
        header_lines=("STORESIDE MARKET", "12 High Street, Springfield", "Store 001 - Till 3"),
        offer_text="15% off your next visit",
        qr_payload="SS1:" + "NCJZ8Q7KM2.V$4R*:9%AB3DXF-+/ PLW6EHT0G1SYU5IOZN" * 3,
        display_code="SS-22K7-HQ2PM",
        expires_on=date(2025, 7, 14),
        terms="Combines with tier discount, not with store sales",
        reminder="Valid 14 days - we look forward to seeing you!",
        reprint=reprint,
    )
